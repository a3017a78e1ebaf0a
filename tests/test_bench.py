"""``python -m labkit bench --quick --json``: checked for shape, labels and the ratios physics
fixes (with wide margins), never for absolute times."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import labkit
from labkit import Figure
from labkit.errors import IsolationError
from labkit.lab.benchhosts import C_BENCH_HOST, host_lines

CALLS = [Figure.C_DLSYM, Figure.PY_CFFI, Figure.PY_CTYPES, Figure.GO_PLUGIN,
         Figure.PY_GO_CSHARED, Figure.GO_COMPILED_IN, Figure.GO_REGISTRY, Figure.PY_FUNCTION,
         Figure.C_WASM_RAW, Figure.C_WASM, Figure.WASM_INSIDE, Figure.PY_WASM, Figure.GO_RPC_GO,
         Figure.PY_RPC_GO, Figure.PY_RPC_PY, Figure.RPC_FLOOR]
STARTS = [Figure.C_DLOPEN, Figure.PY_DLOPEN, Figure.GO_OPEN, Figure.PY_GO_LOAD,
          Figure.C_WASM_START, Figure.PY_WASM_START, Figure.GO_RPC_START,
          Figure.PY_RPC_GO_START, Figure.PY_RPC_PY_START]
Quick = tuple[list[dict[str, Any]], float, str]  # rows, seconds, stderr
#: Whose clock times each figure that is not timed in Python.
NATIVE = {Figure.C_DLSYM: "C", Figure.GO_PLUGIN: "Go", Figure.GO_COMPILED_IN: "Go",
          Figure.GO_REGISTRY: "Go",
          Figure.C_WASM_RAW: "C", Figure.C_WASM: "C", Figure.WASM_INSIDE: "C",
          Figure.GO_RPC_GO: "Go", Figure.C_DLOPEN: "C", Figure.GO_OPEN: "Go",
          Figure.C_WASM_START: "C", Figure.GO_RPC_START: "Go"}


#: ``python -m labkit bench --quick --json`` in a child, which then says on stderr whether a
#: Go library was ever mapped into it: the Go side must run in child processes only.
BENCH_THEN_MAPS = """\
import sys
from labkit.lab.cli import main
status = main(["bench", "--quick", "--json"])
maps = open("/proc/self/maps").read()
print("go mapped here:", "libshout.so" in maps or "adder.so" in maps, file=sys.stderr)
sys.exit(status)
"""


@pytest.fixture(scope="module")
def quick() -> Quick:
    """One quick run of the bench command: its rows, how long it took, its stderr. On a
    fresh machine the run first builds every host and plugin it times, Go's standard library
    for -buildmode=plugin included: 115 s measured on 2 cores beside the portable run, so the
    limit guards against a hang, not a slow first build."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", BENCH_THEN_MAPS], capture_output=True,
                          text=True, timeout=600, check=False)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), took, done.stderr


def test_the_quick_bench_measures_every_model_in_its_own_language(
    quick: Quick,
) -> None:
    rows = quick[0]
    assert [r["name"] for r in rows if r["kind"] == "call"] == CALLS
    assert [r["name"] for r in rows if r["kind"] == "start"] == STARTS
    for row in rows:
        assert row["seconds"] > 0 and row["spread"] >= 0 and row["repeats"] >= 3, row
        assert row["timed_in"] == NATIVE.get(row["name"], "Python"), row
        assert row["python_side"] == (row["timed_in"] == "Python")
        assert row["label"] == f"{row['name']}, timed in {row['timed_in']}"
        if row["python_side"]:
            assert str(row["name"]).startswith("Python"), "a Python-side figure says so"


def test_the_ratios_physics_fixes_hold(quick: Quick) -> None:
    t = {r["name"]: r["seconds"] for r in quick[0]}
    # an in-process call in the host's own language against a round trip between processes
    assert 100 * t[Figure.GO_PLUGIN] < t[Figure.GO_RPC_GO]
    assert 100 * t[Figure.C_DLSYM] < t[Figure.GO_RPC_GO]
    # the same callee from C and from Python: the binding costs more than the call
    assert 10 * t[Figure.C_DLSYM] < t[Figure.PY_CFFI]
    assert 10 * t[Figure.C_DLSYM] < t[Figure.PY_CTYPES]
    assert 10 * t[Figure.C_WASM_RAW] < t[Figure.PY_WASM]
    # entering wasm costs more than a call that stays inside it; type checks cost more still
    assert t[Figure.WASM_INSIDE] < t[Figure.C_WASM_RAW] < t[Figure.C_WASM]
    # a Lookup'd func and a direct call are both one machine call: comparable
    assert t[Figure.GO_PLUGIN] < 10 * t[Figure.GO_COMPILED_IN]
    assert t[Figure.GO_COMPILED_IN] < 10 * t[Figure.GO_PLUGIN]
    # so is a registry's interface call: one indirect call, no dearer than a few direct ones
    assert t[Figure.GO_REGISTRY] < 10 * t[Figure.GO_COMPILED_IN]
    # go-plugin's host is no slower than labkit's Python host on the same plugin
    assert t[Figure.GO_RPC_GO] < 2 * t[Figure.PY_RPC_GO]
    assert t[Figure.RPC_FLOOR] < t[Figure.PY_RPC_GO]
    # starting a process costs more than mapping a library into this one
    assert 10 * t[Figure.C_DLOPEN] < t[Figure.GO_RPC_START]
    assert t[Figure.GO_OPEN] < t[Figure.GO_RPC_START]


def test_no_go_runtime_starts_in_the_bench_s_own_process(quick: Quick) -> None:
    assert "go mapped here: False" in quick[2]


def test_the_table_labels_every_figure_and_prices_python_s_side(
    quick: Quick,
) -> None:
    fields = ("name", "kind", "seconds", "spread", "repeats", "number", "timed_in")
    results = [labkit.Measure(*(r[f] for f in fields)) for r in quick[0]]
    lines = labkit.bench_table(results).splitlines()
    assert lines[0].split()[:7] == ["per", "call:", "who", "→", "whom", "timed", "in"]
    assert lines[0].endswith("calls/s in 10% of a core")
    assert lines[1].startswith(Figure.C_DLSYM) and lines[1].split()[7] == "C"
    assert any(line.startswith("start-up") for line in lines)
    python_cffi = next(line for line in lines if line.startswith(f"  {Figure.PY_CFFI} "))
    assert "is Python's side" in python_cffi and str(Figure.C_DLSYM) in python_cffi


def test_a_bench_host_that_fails_says_which_and_why(tmp_path: Path) -> None:
    host = labkit.build_executable(C_BENCH_HOST, "c-bench-host", out_dir=tmp_path, libs=["dl"])
    with pytest.raises(IsolationError, match=r"(?s)'c-bench-host' failed: the child exited "
                                             r"with status 1.*missing\.so"):
        host_lines([host.path, tmp_path / "missing.so", "add", 10, 1])


def test_per_call_interleaves_batches_and_keeps_each_call_s_best() -> None:
    """A burst of load while one call is timed must not decide a ratio: the batches take
    turns (a, b, a, b, ...), and each call keeps its least disturbed batch."""
    order: list[str] = []
    now = [0.0]
    # "a" takes 10 s a call in rounds 0 and 1 (a burst of load), then 1 s; "b" always 2 s
    cost = {"a": iter([0.0] * 2 + [10.0] * 4 + [1.0] * 8), "b": iter([0.0] * 2 + [2.0] * 12)}

    def call(name: str) -> None:
        order.append(name)
        now[0] += next(cost[name])

    result = labkit.per_call({"a": (lambda: call("a"), 2), "b": (lambda: call("b"), 2)},
                             rounds=3, clock=lambda: now[0])
    assert order == ["a"] * 2 + ["b"] * 2 + ["a", "a", "b", "b"] * 3
    assert result == {"a": 1.0, "b": 2.0}


def test_per_call_refuses_no_rounds_and_says_how_many() -> None:
    with pytest.raises(labkit.InputError, match=r"(?s)rounds=0: .*\nFix: pass rounds=1 or more"):
        labkit.per_call({"a": (lambda: None, 1)}, rounds=0)
