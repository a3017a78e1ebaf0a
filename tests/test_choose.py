"""The trade-off table and the decision helper of notebook 08, on made-up bench results
(the real ones are tests/test_bench.py's): the advice must follow from the figures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import labkit
from labkit import Figure
from labkit.lab.choose import C_SO, COMPILED_IN, GO_PLUGIN, ISOLATED, OTHER_LANGUAGES, RPC, WASM
from labkit.lab.figures import human

#: Per-call costs of the size this machine measures, in each model's own host language.
TYPICAL = {C_SO: 2.5e-9, GO_PLUGIN: 3e-9, WASM: 25e-9, RPC: 200e-6, COMPILED_IN: 2.5e-9}
TIMED_IN = {C_SO: "C", GO_PLUGIN: "Go", WASM: "C", RPC: "Go", COMPILED_IN: "Go"}


def fake(costs: dict[str, float]) -> list[labkit.Measure]:
    """Bench results holding each model's call figure at the given cost."""
    return [labkit.Measure(labkit.MODELS[model]["call"], "call", seconds, 0.1, 5, 1000,
                           TIMED_IN[model]) for model, seconds in costs.items()]


def ask(untrusted: bool, languages: bool, hot: bool, rate: float,
        costs: dict[str, float] = TYPICAL, budget: float = 0.1) -> labkit.Recommendation:
    return labkit.advise(untrusted=untrusted, languages=languages, hot_reload=hot,
                         calls_per_second=rate, results=fake(costs), budget=budget)


@pytest.mark.parametrize(("untrusted", "languages", "hot", "rate", "model"), [
    (True, True, False, 100, RPC),
    (True, False, False, 1_000_000, WASM),  # RPC would take 200 cores
    (True, False, False, 10_000_000, None),  # wasm: 25 ns x 10M/s = 25% of a core
    (False, True, False, 10, RPC),
    (False, True, False, 10_000_000, C_SO),  # 2.5 ns x 10M/s = 2.5%
    (False, False, True, 1_000, C_SO),
    (False, False, False, 1_000, COMPILED_IN),
    (False, False, False, 1_000_000_000, None),  # 2.5 ns x 1G/s = 2.5 cores
], ids=["untrusted-langs-100", "untrusted-1M", "untrusted-10M", "langs-10", "langs-10M",
        "hot-1k", "plain-1k", "plain-1G"])
def test_advise_follows_the_constraints_and_the_figures(
    untrusted: bool, languages: bool, hot: bool, rate: int, model: str | None,
) -> None:
    advice = ask(untrusted, languages, hot, rate)
    assert advice.model == model
    assert str(advice).startswith(f"{model or 'No model fits'}: ")
    assert f"{rate:,} calls/s" in advice.reason


def test_the_reason_quotes_the_numbers_it_used() -> None:
    advice = ask(True, False, False, 1_000_000)
    assert advice.reason.startswith("a wasm plugin cannot crash the host")
    assert ("It fits: WebAssembly (wasmtime) costs 25 ns a call (C host → wasm32 (C API, "
            "raw), timed in C); at 1,000,000 calls/s that is 2.5% of one core, within the "
            "budget of 10% of one core") in advice.reason
    assert ("preferred but over it: RPC plugins (go-plugin) costs 200 µs a call (Go host → Go "
            "plugin (go-plugin RPC), timed in Go); at 1,000,000 calls/s that is 200 cores"
            ) in advice.reason


def test_when_nothing_fits_it_says_so_with_the_numbers() -> None:
    advice = ask(True, False, False, 10_000_000)
    assert advice.model is None
    assert advice.reason.startswith("at 10,000,000 calls/s, a budget of 10% of one core "
                                    "allows 10 ns a call")
    assert "WebAssembly (wasmtime) costs 25 ns a call" in advice.reason
    assert "that is 25% of one core" in advice.reason
    assert "RPC plugins (go-plugin) costs 200 µs a call" in advice.reason
    assert advice.reason.endswith("Fix: batch the calls (many items per call), raise the "
                                  "budget, or relax a constraint")


def test_a_share_just_over_the_budget_is_never_printed_as_the_budget() -> None:
    over = ask(False, False, False, 1_000_000, {COMPILED_IN: 100.4e-9})
    assert over.model is None and "that is 10.04% of one core" in over.reason
    within = ask(False, False, False, 1_000_000, {COMPILED_IN: 99.9e-9}, budget=0.0999)
    assert within.model == COMPILED_IN
    assert "that is 9.99% of one core, within the budget of 9.99% of one core" in within.reason


def test_a_bigger_budget_lets_a_dearer_model_fit() -> None:
    assert ask(True, False, False, 10_000_000, budget=0.5).model == WASM


costs = st.floats(min_value=1e-10, max_value=1e-1, allow_nan=False)


@given(untrusted=st.booleans(), languages=st.booleans(), hot=st.booleans(),
       rate=st.one_of(st.integers(0, 10**10), st.floats(0, 1e10, allow_nan=False)),
       budget=st.floats(min_value=1e-3, max_value=1.0),
       table=st.fixed_dictionaries({model: costs for model in labkit.MODELS}))
def test_advise_never_recommends_a_model_over_the_budget(
    untrusted: bool, languages: bool, hot: bool, rate: float, budget: float,
    table: dict[str, float],
) -> None:
    advice = ask(untrusted, languages, hot, rate, table, budget)
    assert advice.fits, "at least one model meets any set of constraints"
    for fit in advice.fits:  # every model weighed meets the constraints
        assert not untrusted or fit.model in ISOLATED
        assert not languages or fit.model in OTHER_LANGUAGES
        assert not hot or labkit.MODELS[fit.model]["hot reload"].startswith("yes")
        assert fit.figure.seconds == table[fit.model]
    if advice.model is None:
        assert all(rate * table[f.model] > budget for f in advice.fits)
        assert all(human(table[f.model]) in advice.reason for f in advice.fits)
    else:
        assert rate * table[advice.model] <= budget
        assert human(table[advice.model]) in advice.reason
        chosen = [f.model for f in advice.fits].index(advice.model)
        assert all(rate * table[f.model] > budget for f in advice.fits[:chosen])


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"budget": 0}, "budget is a fraction of one core, not 0\nFix: pass a number above 0 and at most 1"),
    ({"budget": 1.5}, "not 1.5"),
    ({"calls_per_second": -1}, "calls_per_second cannot be negative: -1"),
    ({"results": []}, 'the results hold no figure .Go → Go compiled in .registry.s interface call.. to '
                      "price 'Compiled in .registry.'\nFix: pass what labkit.run_bench"),
])
def test_advise_refuses_what_it_cannot_price(kwargs: dict[str, object], says: str) -> None:
    arguments: dict[str, object] = {"untrusted": False, "languages": False, "hot_reload": False,
                                    "calls_per_second": 10, "results": fake(TYPICAL)}
    with pytest.raises(labkit.InputError, match=says):
        labkit.advise(**{**arguments, **kwargs})  # type: ignore[arg-type]


def test_every_model_is_priced_by_a_bench_figure() -> None:
    for facts in labkit.MODELS.values():
        assert facts["call"] in set(Figure) and facts["python call"] in set(Figure)
        assert facts["start"] in set(Figure) or facts["start"] == ""
        assert facts["python call"].startswith("Python")
        assert not facts["call"].startswith("Python"), "priced in the host's own language"


def test_the_table_labels_each_measured_cost_with_who_calls_whom() -> None:
    results = [*fake(TYPICAL),
               labkit.Measure(Figure.C_DLOPEN, "start", 4e-5, 0.1, 15, 1, "C"),
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
    advisor = labkit.ModelAdvisor(fake(TYPICAL))
    assert str(advisor) == str(ask(False, False, False, 1_000))
    assert str(advisor).startswith(f"{COMPILED_IN}: ")
    advisor._untrusted.value = True
    assert str(advisor).startswith(f"{WASM}: ")  # RPC: 200 µs x 1,000/s = 20% of a core
    assert "preferred but over it: RPC plugins (go-plugin) costs 200 µs" in str(advisor)
    advisor._rate.value = 10
    assert str(advisor).startswith(f"{RPC}: ")
    advisor._rate.value = 10_000_000
    assert str(advisor).startswith("No model fits: ")
    advisor._budget.value = 0.5
    assert str(advisor).startswith(f"{WASM}: ")
    assert advisor._repr_mimebundle_()["text/plain"] == str(advisor)
    assert "<b>WebAssembly (wasmtime)</b>" in advisor._answer.value
