"""The trade-off table and the decision helper of notebook 08."""

from __future__ import annotations

import pytest

import labkit
from labkit import Figure
from labkit.choose import C_SO, COMPILED_IN, GO_PLUGIN, RPC, WASM

TYPICAL = {C_SO: 2.5e-9, GO_PLUGIN: 3e-9, WASM: 25e-9, RPC: 200e-6, COMPILED_IN: 2.5e-9}
TIMED_IN = {C_SO: "C", GO_PLUGIN: "Go", WASM: "C", RPC: "Go", COMPILED_IN: "Go"}


@pytest.mark.parametrize(("untrusted", "languages", "hot", "rate", "model"), [
    (True, True, False, 100, "RPC plugins (go-plugin)"),
    (True, False, False, 10_000_000, "WebAssembly (wasmtime)"),
    (False, True, False, 10_000_000, "WebAssembly (wasmtime)"),
    (False, True, False, 10, "RPC plugins (go-plugin)"),
    (False, False, True, 1_000, "C shared object (dlopen)"),
    (False, False, False, 1_000, "Compiled in (registry)"),
])
def test_advise_follows_the_constraints(
    untrusted: bool, languages: bool, hot: bool, rate: int, model: str,
) -> None:
    advice = labkit.advise(untrusted=untrusted, languages=languages, hot_reload=hot,
                           calls_per_second=rate)
    assert advice.model == model and advice.model in labkit.MODELS
    assert str(advice).startswith(f"{model}: ")


def test_every_model_is_priced_by_a_bench_figure() -> None:
    for facts in labkit.MODELS.values():
        assert facts["call"] in set(Figure) and facts["python call"] in set(Figure)
        assert facts["start"] in set(Figure) or facts["start"] == ""
        assert facts["python call"].startswith("Python")
        assert not facts["call"].startswith("Python"), "priced in the host's own language"


def test_the_table_labels_each_measured_cost_with_who_calls_whom() -> None:
    results = [labkit.Measure(labkit.MODELS[model]["call"], "call", seconds, 0.1, 5, 1000,
                              TIMED_IN[model]) for model, seconds in TYPICAL.items()]
    results += [labkit.Measure(Figure.C_DLOPEN, "start", 4e-5, 0.1, 15, 1, "C"),
                labkit.Measure(Figure.PY_CFFI, "call", 5e-7, 0.1, 5, 1000)]
    table = labkit.tradeoffs(results)
    row = table.loc[C_SO]
    assert (row["call"], row["call measured as"]) == (
        "2.5 ns", "C host → C .so (dlsym'd pointer), timed in C")
    assert row["calls/s in 10% of a core"] == "40M"
    assert (row["start"], row["start measured as"]) == (
        "40 µs", "C host: dlopen a C .so, timed in C")
    assert (row["Python-side call"], row["Python-side measured as"]) == (
        "500 ns", "Python → C .so (cffi), timed in Python")
    assert table.loc[GO_PLUGIN, "call measured as"] == (
        "Go host → Go plugin (Lookup'd func), timed in Go")
    assert table.loc[GO_PLUGIN, "start"] == "?"
    assert table.loc[COMPILED_IN, "start"] == "none"
    assert "call" not in labkit.tradeoffs().columns


def test_the_advisor_widget_prints_what_it_shows() -> None:
    advisor = labkit.ModelAdvisor()
    assert str(advisor).startswith("Compiled in (registry)")
    advisor._untrusted.value = True
    assert str(advisor).startswith("RPC plugins (go-plugin)")
    assert advisor._repr_mimebundle_()["text/plain"] == str(advisor)
    assert "RPC plugins (go-plugin)" in advisor._answer.value
