"""The bench's hosts in C and Go: each plugin model timed in its own host language.

Python's clock around a call into C, Go or wasm prices the call *from Python*, and most of
that is the binding (cffi, wasmtime-py), not the mechanism. These hosts are small programs
in the host language of each model, built from the lab's sources and run as child
processes (a Go runtime must never start inside a notebook's kernel):

- ``plugins/c/bench/host.c``: a C host; dlopen, dlsym, calls through a volatile pointer;
- ``plugins/wasm/bench_host.c``: a C host embedding wasmtime through its C API (the library
  wasmtime-py ships), calling ``plugins/wasm/bench.c`` built for wasm32;
- ``plugins/go/bench/``: a Go host calling ``Add`` from the Go plugin ``adder`` (plugin.Open,
  Lookup once) and the same function compiled in;
- ``plugins/go/goplugin/host -bench N -repeats R``: go-plugin's host calling go-plugin's
  plugin.

The protocol, one place for all of them: a host prints one line per figure,
``KEY NANOSECONDS`` (go-plugin's host: ``bench: N calls, NS ns per call`` and
``bench: start NS ns``), each timed with the host's monotonic clock. A ``call`` key gives
nanoseconds per call for one batch; a start key one start-up. :func:`native_figures`
turns them into :class:`~labkit.lab.figures.Measure` values.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wasmtime import _bindings, _ffi

from ..build.c import Artifact, build_executable, build_shared
from ..build.go import build_go
from ..errors import IsolationError, LabkitError
from ..isolate import Outcome, run_program
from ..paths import PLUGINS_C, PLUGINS_GO, PLUGINS_WASM, tidy
from ..samples.rpc import RpcSamples, run_go_rpc_host
from .figures import Figure, Measure, summarise

C_BENCH_HOST = PLUGINS_C / "bench" / "host.c"
WASM_BENCH_HOST = PLUGINS_WASM / "bench_host.c"
WASM_BENCH_MODULE = PLUGINS_WASM / "bench.c"
GO_BENCH_MODULE = PLUGINS_GO / "bench"
_TIMEOUT = 120.0
_RPC_REQUEST = {"host": "example.com"}
_WARM_UP = 50  # untimed calls before go-plugin's host times its batches, as warm_up() does


@dataclass(frozen=True)
class NativeHosts:
    """The built hosts and what they call."""

    c_host: Artifact
    wasm_host: Artifact
    wasm_module: Artifact
    go_host: Artifact
    go_plugin: Artifact


@dataclass(frozen=True)
class Sizes:
    """How many operations per batch, how many batches, how many start-ups."""

    calls: int  # native calls per batch (C, Go, inside wasm)
    wasm_calls: int  # calls from C into wasm per batch
    rpc_calls: int  # RPC calls per batch
    repeats: int
    starts: int


def build_native_hosts(out_dir: str | os.PathLike[str]) -> NativeHosts:
    """Build every host and the plugins only they use into ``out_dir`` (cached builds)."""
    out = Path(out_dir)
    return NativeHosts(
        c_host=build_executable(C_BENCH_HOST, "c-bench-host", out_dir=out, libs=["dl"]),
        wasm_host=build_executable(WASM_BENCH_HOST, "wasm-bench-host", out_dir=out,
                                   libs=["dl"]),
        wasm_module=build_shared(WASM_BENCH_MODULE, "bench", target="wasm32-freestanding",
                                 out_dir=out),
        go_host=build_go("host", "go-bench-host", module=GO_BENCH_MODULE, out_dir=out),
        go_plugin=build_go("adder", "adder", mode="plugin", module=GO_BENCH_MODULE,
                           out_dir=out),
    )


def native_figures(hosts: NativeHosts, c_library: Path, rpc: RpcSamples, sizes: Sizes,
                   work: Path) -> tuple[list[Measure], list[Measure]]:
    """Run every host; return the per-call figures and the start-up figures, each timed in
    the host's language. ``c_library`` is a C shared object exporting ``int add(int, int)``;
    ``work`` a folder for the fresh copies dlopen needs."""
    n, r = sizes.calls, sizes.repeats
    copies = []
    for i in range(sizes.starts * 5):  # a fresh file each time: the loader caches by path
        copy = work / f"{i}-{c_library.name}"
        shutil.copy2(c_library, copy)
        copies.append(copy)
    c = host_lines([hosts.c_host.path, c_library, "add", n, r, *copies])
    wasm = _wasm(hosts, sizes)
    go = host_lines([hosts.go_host.path, "-calls", n, "-repeats", r, hosts.go_plugin.path])
    for _ in range(sizes.starts - 1):  # plugin.Open once per process: more processes
        go["open"] += host_lines([hosts.go_host.path, "-calls", 1, "-repeats", 0,
                                  hosts.go_plugin.path])["open"]
    rpc_calls, rpc_starts = go_rpc(rpc, sizes.rpc_calls, sizes.repeats, sizes.starts)
    calls = [
        summarise(Figure.C_DLSYM, "call", c["call"], n, "C"),
        summarise(Figure.GO_PLUGIN, "call", go["plugin"], n, "Go"),
        summarise(Figure.GO_COMPILED_IN, "call", go["direct"], n, "Go"),
        summarise(Figure.GO_REGISTRY, "call", go["registry"], n, "Go"),
        summarise(Figure.C_WASM_RAW, "call", wasm["raw"], sizes.wasm_calls, "C"),
        summarise(Figure.C_WASM, "call", wasm["call"], sizes.wasm_calls, "C"),
        summarise(Figure.WASM_INSIDE, "call", wasm["inside"], n, "C"),
        summarise(Figure.GO_RPC_GO, "call", rpc_calls, sizes.rpc_calls, "Go"),
    ]
    starts = [
        summarise(Figure.C_DLOPEN, "start", c["open"], 1, "C"),
        summarise(Figure.GO_OPEN, "start", go["open"], 1, "Go"),
        summarise(Figure.C_WASM_START, "start", wasm["start"], 1, "C"),
        summarise(Figure.GO_RPC_START, "start", rpc_starts, 1, "Go"),
    ]
    return calls, starts


def _wasm(hosts: NativeHosts, sizes: Sizes) -> dict[str, list[float]]:
    """The wasmtime C host, after checking that it declares wasmtime's structures as
    wasmtime-py's bindings of the same library do."""
    library = Path(_ffi.filename)
    found = host_lines([hosts.wasm_host.path, library, hosts.wasm_module.path,
                        sizes.wasm_calls, sizes.repeats, sizes.calls, sizes.starts * 5],
                       layout=True)
    expected = [ctypes.sizeof(t) for t in (_bindings.wasmtime_extern_t,
                                           _bindings.wasmtime_val_t,
                                           _bindings.wasmtime_instance_t,
                                           _bindings.wasmtime_func_t)]
    if found["layout"] != [float(size) for size in expected]:
        raise LabkitError(
            f"plugins/wasm/bench_host.c declares wasmtime's C structures with sizes "
            f"{found['layout']}, but this wasmtime ({library.name}) uses {expected}: its C "
            "API changed", fix="update the declarations at the top of bench_host.c from the "
            "wasmtime.h of the release environment.yml pins")
    return found


def go_rpc(rpc: RpcSamples, calls: int, repeats: int, starts: int,
           plugin: Sequence[str | os.PathLike[str]] = ()) -> tuple[list[float], list[float]]:
    """go-plugin's host on ``plugin`` (default: go-plugin's Go plugin), timed in Go:
    ``repeats`` batches of ``calls`` calls (seconds per call, one per batch), then
    ``starts`` start-ups in all."""
    per_batch: list[float] = []
    started: list[float] = []
    for i in range(starts):
        outcome = run_go_rpc_host(rpc.host, plugin or [rpc.plugin], headers=_RPC_REQUEST,
                                  times=_WARM_UP,
                                  bench=calls if i == 0 else 1,
                                  repeats=repeats if i == 0 else 1, timeout=_TIMEOUT)
        _check(outcome, "plugins/go/goplugin/host")
        per_call = [int(ns) * 1e-9 for ns in
                    re.findall(r"^bench: \d+ calls, (\d+) ns per call$", outcome.stdout, re.M)]
        start = re.findall(r"^bench: start (\d+) ns$", outcome.stdout, re.M)
        if not start or not per_call:
            raise LabkitError(f"go-plugin's host printed no timing:\n{outcome.stdout[-2000:]}",
                              fix="rebuild plugins/go/goplugin/host: its -bench flag prints "
                              "'bench: N calls, NS ns per call' lines")
        if i == 0:
            per_batch = per_call
        started.append(int(start[0]) * 1e-9)
    return per_batch, started


def host_lines(argv: Sequence[object], *, layout: bool = False) -> defaultdict[str, list[float]]:
    """Run a host; its ``KEY NANOSECONDS`` lines by key, in seconds (``layout`` in bytes)."""
    outcome = run_program([os.fspath(a) if isinstance(a, Path) else str(a) for a in argv],
                          timeout=_TIMEOUT)
    _check(outcome, Path(str(argv[0])).name)
    found: defaultdict[str, list[float]] = defaultdict(list)
    for line in outcome.stdout.splitlines():
        key, *values = line.split()
        if key == "layout" and layout:
            found[key] = [float(v) for v in values]
        elif len(values) == 1:
            found[key].append(float(values[0]) * 1e-9)
    return found


def _check(outcome: Outcome, host: str) -> None:
    """Raise :class:`IsolationError` naming ``host`` if it did not finish normally."""
    if not outcome.ok:
        tail = "\n".join(tidy(outcome.stderr).strip().splitlines()[-8:])
        raise IsolationError(f"the bench host {host!r} failed: {outcome.summary()}."
                             + (f"\nLast lines of its stderr:\n{tail}" if tail else ""),
                             result=outcome)
