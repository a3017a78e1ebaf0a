"""The wasm samples of ``plugins/wasm/``: one C file, built for wasm and natively to compare,
and an Extism plugin in Go (``plugins/wasm/extism/``, a module requiring extism/go-pdk)."""

from __future__ import annotations

import os

from ..build.c import Artifact, build_shared
from ..build.go import WASI, build_go
from ..paths import PLUGINS_WASM

#: The sample wasm plugin: add, shout (bytes in linear memory), and bugs: peek, poke, spin.
WASM_PLUGIN = PLUGINS_WASM / "transform.c"

#: The Extism plugin's Go module: transform, numbered (calls the host function next_number),
#: hog (allocates) and spin (never returns), in ``main.go``.
EXTISM_MODULE = PLUGINS_WASM / "extism"
EXTISM_SOURCE = EXTISM_MODULE / "main.go"


def build_wasm_sample(out_dir: str | os.PathLike[str] = "build/wasm") -> dict[str, Artifact]:
    """``plugins/wasm/transform.c`` built twice: ``"wasm"`` (zig cc, wasm32-freestanding) and
    ``"native"`` (cc, a shared object), to compare the two."""
    return {
        "wasm": build_shared(WASM_PLUGIN, "transform", target="wasm32-freestanding",
                             out_dir=out_dir),
        "native": build_shared(WASM_PLUGIN, "transform", out_dir=out_dir),
    }


def build_extism_sample(out_dir: str | os.PathLike[str] = "build/wasm") -> Artifact:
    """``plugins/wasm/extism`` built by the pinned Go toolchain into ``extism_plugin.wasm``:
    ``GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared``, a WASI reactor whose
    ``//go:wasmexport`` functions Extism calls (cached; the first build takes go-pdk from the
    Go module cache, where ``python -m labkit warm`` put it, or from the Go module proxy)."""
    return build_go(".", "extism_plugin", mode="c-shared", module=EXTISM_MODULE, target=WASI,
                    out_dir=out_dir)
