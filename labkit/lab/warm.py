"""``python -m labkit warm``: build once what a learner's first cells would wait for.

Binder's postBuild runs it so that, in the image, zig has its C libraries built for every
cross target, the Go build cache holds every variant notebooks 05 and 07 build (musl's
runtime included) and the Go host exercise 05.3's check builds, the older Go toolchain of
notebook 05, hashicorp/go-plugin with its modules (notebook 06) and the protoc plugins for Go
that ``make protos`` and its test build are in the Go module cache, the protobuf messages of
``plugins/proto`` are generated, the bench's hosts in C and Go (notebook 08) are built, and
extism/go-pdk is in the Go module cache with notebook 09's Extism plugin built from it and
compiled by wasmtime into its cache (``~/.cache/wasmtime``, where libextism looks by default):
nothing is fetched while notebooks or tests run.

``warm --for-image`` (what postBuild runs) then removes the older Go toolchain from the module
cache (about 300 MB): its one build, notebook 05's plugin, is in labkit's cache by then, and
nothing builds with it again unless a learner changes that plugin's source, when the go command
fetches the toolchain anew.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from ..build.c import ZIG_TARGETS, build_shared
from ..build.go import build_go, download_modules
from ..inprocess.extism import load_extism
from ..rpc.stubs import fetch_go_modules, generate
from ..samples.c import build_samples
from ..samples.go import GO_OTHER_TOOLCHAIN, GO_SAMPLES, build_go_samples
from ..samples.platforms import build_platform_samples
from ..samples.rpc import build_rpc_samples
from ..samples.wasm import EXTISM_MODULE, build_extism_sample, build_wasm_sample
from ..toolchain import go_env
from .benchhosts import build_native_hosts
from .exercises.go_plugins import judge_host

_C_PROBE = "#include <stdio.h>\nint warm(void) { return puts(\"warm\"); }\n"
_WASM_PROBE = "int warm(int x) { return 2 * x; }\n"  # wasm32-freestanding has no libc


def warm(log: bool = True, for_image: bool = False) -> None:
    """Build the C probe natively and for every zig target, the sample C plugins, every Go
    sample variant, the compile-time registry hosts, the Go host of exercise 05.3's check,
    the RPC messages, the go-plugin host and plugin, the modules of protoc's Go plugins
    (fetched, not built: only a test builds them), the WebAssembly sample, notebook 13's
    plugins for every platform with a Go DLL, the bench's hosts in C and Go, and the Extism
    plugin (go-pdk fetched, the plugin built and compiled)."""
    def say(message: str) -> None:
        if log:
            print(message, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for target in (None, *ZIG_TARGETS):
            start = time.monotonic()
            wasm = target is not None and target.startswith("wasm32")
            build_shared(_WASM_PROBE if wasm else _C_PROBE, "warm", target=target, out_dir=tmp)
            say(f"C for {target or 'this machine'}: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        build_samples(Path(tmp) / "plugins")
        say(f"the sample plugins of plugins/c: {time.monotonic() - start:.1f} s")
        for name in GO_SAMPLES:
            start = time.monotonic()
            build_go_samples(Path(tmp) / "go", [name])
            say(f"Go sample {name}: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        for host in ("stock", "custom"):
            build_go(f"registry/cmd/{host}", host, out_dir=Path(tmp) / "go")
        say(f"Go registry hosts: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        judge_host(Path(tmp))
        say(f"the Go host exercise 05.3's check builds: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        generate()
        build_rpc_samples(Path(tmp) / "rpc")
        fetch_go_modules()
        say(f"RPC messages, the go-plugin host and plugin, protoc's Go plugins (fetched): "
            f"{time.monotonic() - start:.1f} s")
        start = time.monotonic()
        build_wasm_sample(Path(tmp) / "wasm")
        say(f"the WebAssembly sample, wasm32 and native: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        build_platform_samples(Path(tmp) / "platforms")
        build_go("cshared", mode="c-shared", target="x86_64-windows-gnu", out_dir=Path(tmp) / "go")
        say(f"notebook 13's plugins for Linux, Windows and macOS, and a Go DLL: "
            f"{time.monotonic() - start:.1f} s")
        start = time.monotonic()
        build_native_hosts(Path(tmp) / "bench")
        say(f"the bench's hosts in C and Go (notebook 08): {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        download_modules(EXTISM_MODULE)
        plugin = load_extism(build_extism_sample(Path(tmp) / "wasm"),
                             host_functions={"next_number": lambda text: b"0"})
        plugin.call("numbered", b"warm")
        say(f"the Extism plugin (go-pdk fetched, built for wasip1, compiled by wasmtime): "
            f"{time.monotonic() - start:.1f} s")
    if for_image:
        freed = drop_toolchain(GO_OTHER_TOOLCHAIN)
        say(f"the Go toolchain {GO_OTHER_TOOLCHAIN}, whose build is cached now: "
            + (f"removed from the module cache, {freed / 2**20:.0f} MiB freed" if freed
               else "not in the module cache"))


def drop_toolchain(release: str) -> int:
    """Remove the Go toolchain ``release`` (as ``GOTOOLCHAIN`` fetched it) from the module
    cache, for this machine's system and architecture; returns the bytes freed (0 if it was
    not there). Files in the module cache are read-only, so each is made writable first."""
    values = go_env("GOMODCACHE", "GOHOSTOS", "GOHOSTARCH")
    name = f"v0.0.1-{release}.{values['GOHOSTOS']}-{values['GOHOSTARCH']}"
    cache = Path(values["GOMODCACHE"])
    found = [cache / f"golang.org/toolchain@{name}",
             *(cache / "cache/download/golang.org/toolchain/@v").glob(f"{name}.*")]
    freed = 0
    for path in found:
        for folder, _, files in os.walk(path):
            os.chmod(folder, 0o755)
            for file in files:
                freed += os.lstat(os.path.join(folder, file)).st_blocks * 512
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            freed += path.lstat().st_blocks * 512
            path.unlink()
    return freed
