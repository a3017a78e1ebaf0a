"""``python -m labkit bench [rpc] [--json] [--quick] [--calls N]``: every plugin model of the
lab, measured the same way in one run, in its own host language and from Python; with ``rpc``,
go-plugin's protocol alone, each host with each plugin (:mod:`labkit.lab.benchrpc`).

Each figure says who calls whom, and whose clock timed it (:class:`~labkit.lab.figures.Figure`).

In the host's own language (:mod:`labkit.lab.benchhosts`, child processes): a C host calling a
function it found with dlsym; a Go host calling a function it looked up in a Go plugin, and
the same function compiled in; a C host calling a wasm function through wasmtime's C API
(checked and raw), and a call that stays inside the wasm module; go-plugin's Go host calling
its Go plugin. Start-up: dlopen from C, plugin.Open from Go, wasm compiled and instantiated
from C, a go-plugin process started from Go.

From Python, timed in Python: a plain Python call; cffi (ABI mode) and ctypes into a C
shared object; cffi into a Go ``-buildmode=c-shared`` library (in a fresh Python: a Go
runtime never starts in the process that runs the bench, a notebook's kernel); a wasm
function through wasmtime-py; RPC from labkit's Python host to a Python and to a Go plugin;
the raw Unix-socket ping-pong under any RPC. Start-up: labkit.load of a C shared object (its ELF
check, dlopen, dlclose); a Go c-shared library loaded by a fresh Python and called once (the
first call waits for the Go runtime to finish starting, which dlopen alone does not); wasm
compiled and instantiated by wasmtime-py; plugin processes started through their handshake.

Each figure is timeit-style: ``repeats`` batches of ``number`` operations, the median per
operation, and the spread ``(max - min) / median`` of the batches; a spread over 0.5 marks
the figure noisy (the machine was busy). Only ratios within one run mean much.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import cffi
import wasmtime

from ..build.c import Artifact
from ..errors import LabkitError
from ..inprocess.dlopen import load
from ..isolate import run as run_isolated
from ..paths import show
from ..rpc.client import PluginClient
from ..samples.go import build_go_samples
from ..samples.rpc import build_rpc_samples, python_plugin
from ..samples.wasm import build_wasm_sample
from . import benchrpc
from .benchhosts import Sizes, build_native_hosts, native_figures
from .benchrpc import RPC_FIGURES, pingpong
from .figures import (
    CPU_BUDGET,
    NOISY,
    Figure,
    Kind,
    Measure,
    batch,
    human,
    percent,
    rate,
    summarise,
    warm_up,
)

#: A Python-side figure and the same callee called from the host's own language.
BINDINGS = ((Figure.PY_CFFI, Figure.C_DLSYM), (Figure.PY_CTYPES, Figure.C_DLSYM),
            (Figure.PY_WASM, Figure.C_WASM), (Figure.PY_RPC_GO, Figure.GO_RPC_GO))
_REQUEST = {"host": "example.com"}
# Python calling Go runs in a fresh Python: a Go runtime, once started, never leaves its
# process, and must never start inside a notebook's kernel. dlopen of a c-shared library
# returns while the runtime is still starting on a thread of its own, and the first call
# waits for it, so a start-up is dlopen and a first call.
_GO_START = ("import ctypes, time\n"
             "t = time.perf_counter(); ctypes.CDLL({library!r}).Add(1, 2)\n"
             "print(time.perf_counter() - t)\n")
_GO_CALLS = """\
import json, time, cffi
ffi = cffi.FFI()
ffi.cdef("long Add(long, long);")
add = ffi.dlopen({library!r}).Add
operation = lambda: add(1, 2)
for _ in range(min({number}, 50)):
    operation()
per_op = []
for _ in range({repeats}):
    start = time.perf_counter()
    for _ in range({number}):
        operation()
    per_op.append((time.perf_counter() - start) / {number})
print(json.dumps(per_op))
"""


def timed(name: str, kind: Kind, operation: Callable[[], Any], number: int,
          repeats: int) -> Measure:
    """Run ``operation`` ``number`` times per batch, ``repeats`` batches, after a warm-up,
    with Python's clock: a Python-side figure."""
    warm_up(operation, number)
    return summarise(name, kind, [batch(operation, number) for _ in range(repeats)], number)


def run(quick: bool = False) -> list[Measure]:
    """Every figure, in one run, in the order of :class:`~labkit.lab.figures.Figure`. ``quick``
    keeps it under about 20 seconds once the builds are cached.

    The samples are copied from labkit's build cache into a temporary folder, removed at the
    end: a copy kept in the cache would only double the disk the Go binaries take. Every
    host in C or Go runs as a child process."""
    with tempfile.TemporaryDirectory(prefix="plugin-lab-bench-") as tmp:
        results = _run(Path(tmp), quick)
    order = list(Figure)
    return sorted(results, key=lambda m: order.index(Figure(m.name)))


def _run(work: Path, quick: bool) -> list[Measure]:
    n_fast, n_rpc, repeats, starts = (2000, 100, 5, 3) if quick else (20000, 1000, 7, 7)
    sizes = Sizes(calls=1_000_000 if quick else 10_000_000,
                  wasm_calls=100_000 if quick else 1_000_000,
                  rpc_calls=n_rpc, repeats=repeats, starts=starts)
    c_lib = build_wasm_sample(work / "wasm")["native"].path
    go_lib = build_go_samples(work / "go", ["shout"])["shout"].path
    rpc = build_rpc_samples(work / "rpc")
    hosts = build_native_hosts(work / "native")
    copies = work / "copies"
    copies.mkdir()
    calls, starts_native = native_figures(hosts, c_lib, rpc, sizes, copies)
    results = calls + starts_native
    results += _python_calls(c_lib, go_lib, hosts.wasm_module, rpc.plugin, n_fast, n_rpc,
                             repeats)
    results += _python_starts(c_lib, go_lib, hosts.wasm_module.path, rpc.plugin.path, starts,
                              copies)
    return results


def _python_calls(c_lib: Path, go_lib: Path, wasm: Artifact, go_plugin: Artifact,
                  n_fast: int, n_rpc: int, repeats: int) -> list[Measure]:
    def add(a: int, b: int) -> int:
        return a + b

    found = [timed(Figure.PY_FUNCTION, "call", lambda: add(1, 2), n_fast, repeats)]
    c_add = load(c_lib).function("add", "int(int, int)").raw  # cffi's own function pointer
    found.append(timed(Figure.PY_CFFI, "call", lambda: c_add(1, 2), n_fast, repeats))
    ct_add = ctypes.CDLL(str(c_lib)).add
    ct_add.argtypes, ct_add.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    found.append(timed(Figure.PY_CTYPES, "call", lambda: ct_add(1, 2), n_fast, repeats))
    go = _in_child(_GO_CALLS.format(library=str(go_lib), number=n_fast, repeats=repeats))
    found.append(summarise(Figure.PY_GO_CSHARED, "call", json.loads(go), n_fast))
    # wasmtime's defaults, as the C host has them: no fuel, no epochs (load_wasm's limits
    # would add their checks to every call)
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module.from_file(engine, str(wasm.path)), [])
    wasm_add = instance.exports(store)["add"]
    if not isinstance(wasm_add, wasmtime.Func):
        raise LabkitError(f"{show(wasm.path)!r} exports no function 'add'",
                          fix="rebuild plugins/wasm/bench.c: it must EXPORT(add)")
    found.append(timed(Figure.PY_WASM, "call", lambda: wasm_add(store, 1, 2), n_fast,
                       repeats))
    return found + _rpc_calls(go_plugin.path, n_rpc, max(3, repeats // 2))


def _rpc_calls(go_plugin: Path, number: int, repeats: int) -> list[Measure]:
    """labkit's Python host calling the Python and the Go plugin, and the socket floor."""
    found = []
    for name, command in [(Figure.PY_RPC_PY, python_plugin()),
                          (Figure.PY_RPC_GO, [str(go_plugin)])]:
        with PluginClient(command) as client:
            found.append(timed(name, "call", partial(client.transform, _REQUEST), number,
                               repeats))
    with pingpong() as ping:
        found.append(timed(Figure.RPC_FLOOR, "call", ping, number, repeats))
    return found


def _python_starts(c_lib: Path, go_lib: Path, wasm: Path, go_plugin: Path, starts: int,
                   work: Path) -> list[Measure]:
    found = []
    times = []
    ffi = cffi.FFI()  # dlopen through cffi, without labkit.load's checks of the file
    for i in range(starts * 5):  # a fresh file each time: the loader caches by path
        copy = work / f"py-{i}-{c_lib.name}"
        shutil.copy2(c_lib, copy)
        start = time.perf_counter()
        ffi.dlclose(ffi.dlopen(str(copy), ffi.RTLD_NOW))
        times.append(time.perf_counter() - start)
    found.append(summarise(Figure.PY_DLOPEN, "start", times, 1))
    go = [float(_in_child(_GO_START.format(library=str(go_lib)))) for _ in range(starts)]
    found.append(summarise(Figure.PY_GO_LOAD, "start", go, 1))
    data = wasm.read_bytes()
    times = []
    for _ in range(starts * 5):
        start = time.perf_counter()
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        wasmtime.Instance(store, wasmtime.Module(engine, data), [])
        times.append(time.perf_counter() - start)
    found.append(summarise(Figure.PY_WASM_START, "start", times, 1))
    for name, command in [(Figure.PY_RPC_PY_START, python_plugin()),
                          (Figure.PY_RPC_GO_START, [str(go_plugin)])]:
        times = []
        for _ in range(starts):
            client = PluginClient(command)
            start = time.perf_counter()
            client.start()
            times.append(time.perf_counter() - start)
            client.close()
        found.append(summarise(name, "start", times, 1))
    return found


def _in_child(snippet: str) -> str:
    """What a fresh Python printed running ``snippet``; IsolationError if it failed."""
    return run_isolated(snippet, timeout=120).check().stdout


def binding_shares(results: Sequence[Measure]) -> list[tuple[Measure, Measure, float]]:
    """For each Python-side figure whose callee the run also called from the host's own
    language (:data:`BINDINGS`): the two figures and the share of the Python figure that
    is Python's side (the binding, or for RPC the Python host's client), 0 when the Python
    figure is no larger."""
    by_name = {m.name: m for m in results}
    found = []
    for python, native in BINDINGS:
        if python in by_name and native in by_name:
            p, n = by_name[python], by_name[native]
            found.append((p, n, max(0.0, 1 - n.seconds / p.seconds)))
    return found


def table(results: Sequence[Measure], budget: float = CPU_BUDGET) -> str:
    """The figures as text: per call, with how many calls a second fit in ``budget`` of one
    core; start-ups apart; then how much of each Python-side figure is Python's side."""
    width = max(len(m.name) for m in results)
    fit = f"calls/s in {percent(budget)} of a core"
    lines = []
    for kind, title in (("call", "per call: who → whom"), ("start", "start-up")):
        if not any(m.kind == kind for m in results):
            continue
        lines.append(f"{title:<{width}}  {'timed in':<8}  {'median':>8}  {'spread':>6}"
                     + (f"  {fit}" if kind == "call" else ""))
        for m in (m for m in results if m.kind == kind):
            per_second = f"  {rate(budget / m.seconds):>{len(fit)}}" if kind == "call" else ""
            lines.append(f"{m.name:<{width}}  {m.timed_in:<8}  {human(m.seconds):>8}  "
                         f"{m.spread:>6.2f}{per_second}" + ("  noisy" if m.noisy else ""))
        lines.append("")
    shares = binding_shares(results)
    if shares:
        lines.append("Python's side of a Python-side figure (the same callee, called from "
                     "its host's own language):")
        for python, native, share in shares:
            said = (f"{share:.1%} is Python's side" if share > 0 else
                    "no slower than from its own language, so no Python side is measured")
            lines.append(f"  {python.name} {human(python.seconds)}: {said}; "
                         f"{native.name} {human(native.seconds)}")
        lines.append("")
    by_name = {m.name: m for m in results}
    floor = by_name.get(Figure.RPC_FLOOR)
    over = [by_name[f] for f in RPC_FIGURES[1:] if f in by_name]
    if floor is not None and over:
        lines.append(f"For scale, each RPC against the {floor.name} ({human(floor.seconds)}), "
                     "a floor only for the Python → Python row:")
        lines += [f"  {m.name}: {m.seconds / floor.seconds:.1f}x" for m in over]
        lines.append("")
    noisy = [m.name for m in results if m.noisy]
    if noisy:
        lines.append(f"warning: {len(noisy)} figure(s) spread over {NOISY:.0%} between batches "
                     "(the machine was busy); run again for steadier figures")
    return "\n".join(lines).rstrip()


def to_json(results: Sequence[Measure]) -> str:
    return json.dumps([{**asdict(m), "noisy": m.noisy, "python_side": m.python_side,
                        "label": m.label} for m in results], indent=2, ensure_ascii=False)


def chart(results: Sequence[Measure]) -> Any:
    """A matplotlib figure: every figure as a bar, on a log scale of seconds; dark bars are
    timed in the host's own language, pale ones in Python."""
    import matplotlib.pyplot as plt

    colours = {("call", False): "tab:blue", ("call", True): "lightsteelblue",
               ("start", False): "tab:orange", ("start", True): "navajowhite"}
    figure, axes = plt.subplots(figsize=(9, 0.42 * len(results) + 1))
    shown = list(results)[::-1]
    axes.barh([f"{m.name} [{m.timed_in}]" for m in shown], [m.seconds for m in shown],
              color=[colours[(m.kind, m.python_side)] for m in shown])
    axes.set_xscale("log")
    axes.set_xlabel("seconds (log scale): blue per call, orange start-up; pale: timed in Python")
    figure.tight_layout()
    return figure


def main(as_json: bool, quick: bool, rpc_calls: int | None = None) -> int:
    """The command: every figure, or with ``rpc_calls`` the RPC round trips alone
    (:mod:`labkit.lab.benchrpc`)."""
    if rpc_calls is None:
        results = run(quick)
        print(to_json(results) if as_json else table(results))
    else:
        results = benchrpc.run_rpc(rpc_calls)
        print(to_json(results) if as_json else benchrpc.table(results))
    return 0
