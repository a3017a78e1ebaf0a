"""The trade-off table and the decision helper of notebook 08."""

from __future__ import annotations

import pytest

import labkit


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
    names = {"Python function call", "cffi (ABI mode) -> C .so", "cffi -> Go c-shared",
             "wasmtime -> wasm32", "RPC -> Go plugin", "dlopen a C .so",
             "load a Go c-shared library (Go runtime start)",
             "compile and instantiate a wasm module", "start a Go plugin process + handshake"}
    for facts in labkit.MODELS.values():
        assert facts["call"] in names and (facts["start"] in names or facts["start"] == "")


def test_the_table_shows_measured_costs_when_given_them() -> None:
    results = [labkit.Measure("cffi (ABI mode) -> C .so", "call", 5e-7, 0.1, 5, 1000),
               labkit.Measure("dlopen a C .so", "start", 2.5e-4, 0.1, 5, 1)]
    table = labkit.tradeoffs(results)
    assert table.loc["C shared object (dlopen)", "call"] == "500 ns"
    assert table.loc["C shared object (dlopen)", "start"] == "250 µs"
    assert table.loc["Go plugin (plugin.Open)", "call"] == "?"
    assert "call" not in labkit.tradeoffs().columns


def test_the_advisor_widget_prints_what_it_shows() -> None:
    advisor = labkit.ModelAdvisor()
    assert str(advisor).startswith("Compiled in (registry)")
    advisor._untrusted.value = True
    assert str(advisor).startswith("RPC plugins (go-plugin)")
    assert advisor._repr_mimebundle_()["text/plain"] == str(advisor)
    assert "RPC plugins (go-plugin)" in advisor._answer.value
