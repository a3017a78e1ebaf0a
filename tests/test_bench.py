"""``python -m labkit bench --quick --json``: checked for shape and sanity, never for times."""

from __future__ import annotations

import json

from tests.conftest import run_cli

CALLS = ["Python function call", "cffi (ABI mode) -> C .so", "ctypes -> C .so",
         "cffi -> Go c-shared", "wasmtime -> wasm32", "RPC -> Python plugin",
         "RPC -> Go plugin", "raw Unix-socket ping-pong (RPC floor)"]
STARTS = ["dlopen a C .so", "load a Go c-shared library (Go runtime start)",
          "compile and instantiate a wasm module", "start a Python plugin process + handshake",
          "start a Go plugin process + handshake"]


def test_the_quick_bench_measures_every_model_sanely() -> None:
    done = run_cli("bench", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert [n for n in rows if rows[n]["kind"] == "call"] == CALLS
    assert [n for n in rows if rows[n]["kind"] == "start"] == STARTS
    assert all(r["seconds"] > 0 and r["spread"] >= 0 and r["repeats"] >= 3 for r in rows.values())
    c_call = rows["cffi (ABI mode) -> C .so"]["seconds"]
    assert c_call < rows["RPC -> Python plugin"]["seconds"]
    assert c_call < rows["RPC -> Go plugin"]["seconds"]
    assert rows["raw Unix-socket ping-pong (RPC floor)"]["seconds"] < rows["RPC -> Go plugin"]["seconds"]


def test_the_table_has_both_sections_and_ratios() -> None:
    done = run_cli("bench", "--quick")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["per", "call", "median", "spread", "x", "Python", "call"]
    assert any(line.startswith("start-up") for line in lines)
    assert lines[1].startswith("Python function call") and " 1.0" in lines[1]
