"""``python -m labkit bench [--json] [--quick]``: every plugin model of the lab, measured the
same way in one run.

Per call: a plain Python call; cffi (ABI mode) and ctypes into a C shared object; cffi into a
Go ``-buildmode=c-shared`` library; a WebAssembly function through wasmtime; RPC from the
Python host to a Python and to a Go plugin; and the raw Unix-socket ping-pong under any RPC.
Start-up: dlopen of a C shared object, loading a Go c-shared library (the Go runtime starts,
so each sample is a fresh process), compiling and instantiating a wasm module, and starting a
plugin process through its handshake.

Each figure is timeit-style: ``repeats`` batches of ``number`` operations, the median per
operation, and the spread ``(max - min) / median`` of the batches; a spread over 0.5 marks
the figure noisy (the machine was busy). Only ratios within one run mean much.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import wasmtime

from .gosamples import build_go_samples
from .load import load
from .rpc.bench import pingpong_floor
from .rpc.client import PluginClient
from .rpc.samples import build_rpc_samples, python_plugin
from .wasm import build_wasm_sample, load_wasm

Kind = Literal["call", "start"]
NOISY = 0.5
_REQUEST = {"host": "example.com"}
_GO_START = ("import ctypes, sys, time\n"
             "t = time.perf_counter(); ctypes.CDLL(sys.argv[1])\n"
             "print(time.perf_counter() - t)\n")


@dataclass(frozen=True)
class Measure:
    """One mechanism's figure: ``seconds`` per operation (median of the batches)."""

    name: str
    kind: Kind
    seconds: float
    spread: float
    repeats: int
    number: int

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY


def timed(name: str, kind: Kind, operation: Callable[[], Any], number: int,
          repeats: int) -> Measure:
    """Run ``operation`` ``number`` times per batch, ``repeats`` batches, after one warm-up."""
    for _ in range(min(number, 50)):
        operation()
    per_op = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            operation()
        per_op.append((time.perf_counter() - start) / number)
    return _measure(name, kind, per_op, number)


def _measure(name: str, kind: Kind, samples: list[float], number: int) -> Measure:
    median = statistics.median(samples)
    spread = (max(samples) - min(samples)) / median if median > 0 else 0.0
    return Measure(name, kind, median, spread, len(samples), number)


def run(quick: bool = False) -> list[Measure]:
    """Every measure, in one run. ``quick`` keeps it under about 20 seconds.

    The samples are copied from labkit's build cache into a temporary folder, removed at the
    end: a copy kept in the cache would only double the disk the Go binaries take (40 MB)."""
    with tempfile.TemporaryDirectory(prefix="plugin-lab-bench-") as tmp:
        return _run(Path(tmp), quick)


def _run(work: Path, quick: bool) -> list[Measure]:
    n_fast, n_rpc, repeats, starts = (2000, 100, 5, 3) if quick else (20000, 1000, 7, 7)
    wasm_side = build_wasm_sample(work / "wasm")
    go_lib = build_go_samples(work / "go", ["shout"])["shout"].path
    rpc = build_rpc_samples(work / "rpc")
    c_lib = wasm_side["native"].path
    results: list[Measure] = []

    def add(a: int, b: int) -> int:
        return a + b

    results.append(timed("Python function call", "call", lambda: add(1, 2), n_fast, repeats))
    c_add = load(c_lib).function("add", "int(int, int)")
    results.append(timed("cffi (ABI mode) -> C .so", "call", lambda: c_add(1, 2), n_fast, repeats))
    ct_add = ctypes.CDLL(str(c_lib)).add
    ct_add.argtypes, ct_add.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    results.append(timed("ctypes -> C .so", "call", lambda: ct_add(1, 2), n_fast, repeats))
    go_add = load(go_lib).function("Add", "long(long, long)")
    results.append(timed("cffi -> Go c-shared", "call", lambda: go_add(1, 2), n_fast, repeats))
    plugin = load_wasm(wasm_side["wasm"])
    wasm_add = plugin.exports["add"]
    assert isinstance(wasm_add, wasmtime.Func)
    results.append(timed("wasmtime -> wasm32", "call",
                         lambda: wasm_add(plugin.store, 1, 2), n_fast, repeats))
    for name, command in [("RPC -> Python plugin", python_plugin()),
                          ("RPC -> Go plugin", [str(rpc.plugin.path)])]:
        with PluginClient(command) as client:
            results.append(timed(name, "call", partial(client.transform, _REQUEST),
                                 n_rpc, max(3, repeats // 2)))
    floors = [pingpong_floor(n_rpc * 2).seconds for _ in range(max(3, repeats // 2))]
    results.append(_measure("raw Unix-socket ping-pong (RPC floor)", "call", floors, n_rpc * 2))
    results += _startups(c_lib, go_lib, wasm_side["wasm"].path, rpc.plugin.path, starts)
    return results


def _startups(c_lib: Path, go_lib: Path, wasm: Path, go_plugin: Path,
              starts: int) -> list[Measure]:
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for i in range(starts * 5):  # a fresh file each time: the loader caches by path
            copy = Path(tmp) / f"{i}-{c_lib.name}"
            shutil.copy2(c_lib, copy)
            copies.append(copy)
        times = []
        for copy in copies:
            start = time.perf_counter()
            load(copy).close()
            times.append(time.perf_counter() - start)
        found.append(_measure("dlopen a C .so", "start", times, 1))
    go = [float(subprocess.run([sys.executable, "-c", _GO_START, str(go_lib)], check=True,
                               capture_output=True, text=True, timeout=60).stdout)
          for _ in range(starts)]
    found.append(_measure("load a Go c-shared library (Go runtime start)", "start", go, 1))
    data = wasm.read_bytes()
    times = []
    for _ in range(starts * 5):
        start = time.perf_counter()
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        wasmtime.Instance(store, wasmtime.Module(engine, data), [])
        times.append(time.perf_counter() - start)
    found.append(_measure("compile and instantiate a wasm module", "start", times, 1))
    for name, command in [("start a Python plugin process + handshake", python_plugin()),
                          ("start a Go plugin process + handshake", [str(go_plugin)])]:
        times = []
        for _ in range(starts):
            client = PluginClient(command)
            start = time.perf_counter()
            client.start()
            times.append(time.perf_counter() - start)
            client.close()
        found.append(_measure(name, "start", times, 1))
    return found


def human(seconds: float) -> str:
    """A duration with three significant digits and its unit: ``487 ns``, ``1.5 ms``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(results: list[Measure]) -> str:
    """The measures as text: per call against a plain Python call, start-ups apart."""
    width = max(len(m.name) for m in results)
    base = next(m.seconds for m in results if m.kind == "call")
    lines = []
    for kind, title in (("call", "per call"), ("start", "start-up")):
        lines.append(f"{title:<{width}}  {'median':>10}  {'spread':>6}"
                     + (f"  {'x Python call':>13}" if kind == "call" else ""))
        for m in (m for m in results if m.kind == kind):
            ratio = f"  {m.seconds / base:>13.1f}" if kind == "call" else ""
            lines.append(f"{m.name:<{width}}  {human(m.seconds):>10}  {m.spread:>6.2f}{ratio}"
                         + ("  noisy" if m.noisy else ""))
        lines.append("")
    noisy = [m.name for m in results if m.noisy]
    if noisy:
        lines.append(f"warning: {len(noisy)} figure(s) spread over {NOISY:.0%} between batches "
                     "(the machine was busy); run again for steadier figures")
    return "\n".join(lines).rstrip()


def to_json(results: list[Measure]) -> str:
    return json.dumps([{**asdict(m), "noisy": m.noisy} for m in results], indent=2)


def chart(results: list[Measure]) -> Any:
    """A matplotlib figure: every measure as a bar, on a log scale of seconds."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 0.42 * len(results) + 1))
    names = [m.name for m in results][::-1]
    values = [m.seconds for m in results][::-1]
    colours = ["tab:blue" if m.kind == "call" else "tab:orange" for m in results][::-1]
    axes.barh(names, values, color=colours)
    axes.set_xscale("log")
    axes.set_xlabel("seconds (log scale): blue per call, orange start-up")
    figure.tight_layout()
    return figure


def main(as_json: bool, quick: bool) -> int:
    results = run(quick)
    print(to_json(results) if as_json else table(results))
    return 0
