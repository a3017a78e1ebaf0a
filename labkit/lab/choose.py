"""Choosing a plugin model (notebook 08): the trade-off table and a decision helper.

:data:`MODELS` holds what does not change from machine to machine (isolation, languages,
platforms, coupling, hot reload, deployment) and names the bench figures that price each
model: its call and start-up timed in the model's own host language, and the call from
Python for comparison. :func:`tradeoffs` adds the costs measured by
:func:`labkit.lab.bench.run`. :func:`advise` turns a learner's constraints and the measured
figures into a recommended model and the reason, with the numbers it used;
:class:`ModelAdvisor` is the same as an ipywidgets control.

A model *fits* when its calls take at most ``budget`` of one core: ``calls_per_second`` *
its measured cost per call <= ``budget`` (one second per second is one core). A cost is the
time a call takes on the caller's clock. In-process, that is CPU time of the calling thread.
For an RPC it is the round trip, during which the calling thread waits: the work of both
processes and the kernel, and the wake-ups in between; it may use less CPU than that, but the
thread that waits can do nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .figures import CPU_BUDGET, Figure, Measure, human, percent, rate

C_SO = "C shared object (dlopen)"
GO_PLUGIN = "Go plugin (plugin.Open)"
WASM = "WebAssembly (wasmtime)"
RPC = "RPC plugins (go-plugin)"
COMPILED_IN = "Compiled in (registry)"

#: The models of the lab: the figures that price each (``call`` and ``start`` in the host's
#: own language, ``python call`` from Python), then the facts notebooks 02 to 09 showed.
MODELS: dict[str, dict[str, str]] = {
    C_SO: {
        "call": Figure.C_DLSYM, "start": Figure.C_DLOPEN, "python call": Figure.PY_CFFI,
        "a crash does": "kills the host", "languages": "anything with a C ABI",
        "platforms": "every OS, one build per OS and CPU",
        "coupling": "the C ABI: struct layouts and symbol versions must match",
        "hot reload": "yes, with care (notebook 03)", "deployment": "a .so beside the host",
    },
    GO_PLUGIN: {
        "call": Figure.GO_PLUGIN, "start": Figure.GO_OPEN, "python call": Figure.PY_GO_CSHARED,
        "a crash does": "kills the host", "languages": "Go only",
        "platforms": "Linux, FreeBSD, macOS",
        "coupling": "same Go release, flags and package sources as the host",
        "hot reload": "no: never unloaded", "deployment": "a .so built with the host's toolchain",
    },
    WASM: {
        "call": Figure.C_WASM_RAW, "start": Figure.C_WASM_START, "python call": Figure.PY_WASM,
        "a crash does": "a trap the host catches", "languages": "anything that targets wasm32",
        "platforms": "one .wasm for every OS and CPU",
        "coupling": "the exports and the memory convention (Extism standardises it)",
        "hot reload": "yes: a new instance", "deployment": "a .wasm file",
    },
    RPC: {
        "call": Figure.GO_RPC_GO, "start": Figure.GO_RPC_START, "python call": Figure.PY_RPC_GO,
        "a crash does": "the plugin process dies; the host reports it",
        "languages": "anything with gRPC", "platforms": "anywhere a process can start",
        "coupling": "a versioned protocol, negotiated at the handshake",
        "hot reload": "yes: restart the process", "deployment": "a program per plugin",
    },
    COMPILED_IN: {
        "call": Figure.GO_REGISTRY, "start": "", "python call": Figure.PY_FUNCTION,
        "a crash does": "kills the host", "languages": "the host's",
        "platforms": "the host's", "coupling": "none at run time: one build",
        "hot reload": "no: rebuild and redeploy", "deployment": "a new host binary",
    },
}
QUALITIES = ("a crash does", "languages", "platforms", "coupling", "hot reload", "deployment")

#: Which models keep a plugin from crashing the host, take plugins in other languages than
#: the host's, and can replace a plugin while the host runs.
ISOLATED = (RPC, WASM)
OTHER_LANGUAGES = (RPC, WASM, C_SO)
HOT_RELOAD = (C_SO, WASM, RPC)

#: Why a model suits a situation, said the way :func:`advise` says it.
_WHY = {
    RPC: "a plugin in its own process cannot crash the host or write to its memory, and can "
         "be written in any language with gRPC (it is no sandbox: it runs with the host "
         "user's rights)",
    WASM: "a wasm plugin cannot crash the host (a bad access traps) and reaches only what "
          "the host hands it; many languages compile to wasm32",
    C_SO: "trusted code, loaded in-process: any language that exports a C ABI (C, C++, "
          "Rust, Zig, Go c-shared), and a host can swap a shared object while it runs "
          "(notebook 03's hot swap)",
    COMPILED_IN: "trusted plugins in the host's language that change with the host's "
                 "releases: build them in, as the Kubernetes scheduler does",
}


def tradeoffs(results: Sequence[Measure] | None = None, budget: float = CPU_BUDGET) -> Any:
    """The trade-off table as a pandas DataFrame, one row per model.

    With bench ``results`` it starts with the measured costs, each beside what it measured
    (who calls whom, and whose clock): ``call`` and ``start`` in the model's own host
    language, ``calls/s in N% of a core`` (how many calls fit in ``budget`` of one core,
    the test :func:`advise` applies), and ``Python-side call`` for comparison."""
    import pandas as pd

    measured = {m.name: m for m in results or []}
    fit = f"calls/s in {percent(budget)} of a core"
    rows = []
    for model, facts in MODELS.items():
        row: dict[str, Any] = {"model": model}
        if results is not None:
            call = measured.get(facts["call"])
            start = measured.get(facts["start"])
            python = measured.get(facts["python call"])
            row["call"] = _cost(call)
            row["call measured as"] = call.label if call else facts["call"]
            row[fit] = rate(budget / call.seconds) if call else "?"
            row["start"] = _cost(start) if facts["start"] else "none"
            row["start measured as"] = start.label if start else facts["start"] or "-"
            row["Python-side call"] = _cost(python)
            row["Python-side measured as"] = python.label if python else facts["python call"]
        row.update({q: facts[q] for q in QUALITIES})
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def _cost(measure: Measure | None) -> str:
    return "?" if measure is None else human(measure.seconds)


@dataclass(frozen=True)
class Fit:
    """One model at one call rate: its measured call and the share of one core it takes."""

    model: str
    figure: Measure
    calls_per_second: float
    budget: float

    @property
    def share(self) -> float:
        """Seconds per second the calls take on the caller's clock: 1.0 is one whole core."""
        return self.calls_per_second * self.figure.seconds

    @property
    def fits(self) -> bool:
        return self.share <= self.budget

    def __str__(self) -> str:
        return (f"{self.model} costs {human(self.figure.seconds)} a call "
                f"({self.figure.label}); at {_calls(self.calls_per_second)} calls/s that is "
                f"{_share(self.share, self.budget)}")


@dataclass(frozen=True)
class Recommendation:
    """What :func:`advise` recommends and why; ``model`` is None when no model fits.
    ``fits`` holds every model that meets the constraints, in order of preference, with
    the numbers the choice was made from."""

    model: str | None
    reason: str
    untrusted: bool
    languages: bool
    hot_reload: bool
    calls_per_second: float
    budget: float
    fits: tuple[Fit, ...]

    def __str__(self) -> str:
        return f"{self.model or 'No model fits'}: {self.reason}"


def advise(*, untrusted: bool, languages: bool, hot_reload: bool, calls_per_second: float,
           results: Sequence[Measure], budget: float = CPU_BUDGET) -> Recommendation:
    """A model for these constraints, priced by the measured ``results`` of
    :func:`labkit.run_bench`.

    Parameters:
        untrusted: plugins you do not trust to not crash the host (RPC or wasm only).
        languages: plugins in other languages than the host's.
        hot_reload: replacing plugins while the host runs.
        calls_per_second: how often the host calls a plugin.
        results: the bench's figures; each model is priced by its call timed in its own
            host language (``MODELS[model]["call"]``).
        budget: the fraction of one core the plugin calls may take (0.1: 10%).

    Among the models that meet the constraints, in order of preference, the first whose
    ``calls_per_second * cost per call <= budget`` is recommended; the reason quotes those
    numbers. If none fits, ``model`` is None and the reason gives every model's numbers.
    """
    if not 0 < budget <= 1:
        raise InputError(f"budget is a fraction of one core, not {budget!r}",
                         fix="pass a number above 0 and at most 1 (0.10 is a tenth of a core)")
    if calls_per_second < 0:
        raise InputError(f"calls_per_second cannot be negative: {calls_per_second!r}",
                         fix="pass how many calls a second the host makes, 0 or more")
    measured = {m.name: m for m in results}
    fits = []
    for model in _preferences(untrusted, languages, hot_reload):
        name = str(MODELS[model]["call"])
        if name not in measured:
            raise InputError(f"the results hold no figure {name!r} to price {model!r}",
                             fix="pass what labkit.run_bench() returned")
        fits.append(Fit(model, measured[name], calls_per_second, budget))
    chosen = next((f for f in fits if f.fits), None)
    if chosen is None:  # then calls_per_second > 0: no calls at all fit any budget
        reason = (f"at {_calls(calls_per_second)} calls/s, a budget of {_budget(budget)} "
                  f"allows {human(budget / calls_per_second)} a call, and every model that "
                  "meets the constraints is over it: "
                  + "; ".join(str(f) for f in fits)
                  + ". Fix: batch the calls (many items per call), raise the budget, or relax "
                  "a constraint")
    else:
        over = fits[:fits.index(chosen)]  # preferred, but over the budget
        reason = (f"{_WHY[chosen.model]}. It fits: {chosen}, within the budget of "
                  f"{_budget(budget)}")
        if over:
            reason += " (preferred but over it: " + "; ".join(str(f) for f in over) + ")"
    return Recommendation(None if chosen is None else chosen.model, reason, untrusted,
                          languages, hot_reload, calls_per_second, budget, tuple(fits))


def _preferences(untrusted: bool, languages: bool, hot_reload: bool) -> list[str]:
    """The models that meet the constraints, the most suitable first."""
    if untrusted:
        order = [RPC, WASM]
    elif languages:
        order = [RPC, WASM, C_SO]
    elif hot_reload:
        order = [C_SO, WASM, RPC]
    else:
        order = [COMPILED_IN]
    return [m for m in order
            if (not untrusted or m in ISOLATED) and (not languages or m in OTHER_LANGUAGES)
            and (not hot_reload or m in HOT_RELOAD)]


def _calls(per_second: float) -> str:
    return f"{per_second:,.0f}" if per_second >= 1 else f"{per_second:.3g}"


def _budget(budget: float) -> str:
    """The budget as given: ``10% of one core``, ``12.5% of one core``."""
    return "one whole core" if budget == 1 else f"{percent(budget)} of one core"


def _share(fraction: float, budget: float | None = None) -> str:
    """A share of one core: ``0.0003% of one core``, ``44% of one core``, ``4,410 cores``.
    Beside a ``budget``, with as many digits as it takes not to print the same as the
    budget when it is not (10.04% is over 10%, so it is not shown as "10%")."""
    if fraction == budget:
        return _budget(budget)
    if fraction == 0:
        return "nothing"
    if fraction >= 100:
        return f"{fraction:,.0f} cores"
    scale, unit = (100, "% of one core") if fraction < 1 else (1, " cores")
    digits = 2 if fraction < 1 else 3
    while (budget is not None and digits < 12
           and f"{fraction * scale:.{digits}g}" == f"{budget * scale:.{digits}g}"):
        digits += 1
    if fraction == 1:
        return "one whole core"
    return f"{fraction * scale:.{digits}g}{unit}"


class ModelAdvisor:
    """ipywidgets controls for :func:`advise` on the bench's ``results``; printing it
    prints the current advice."""

    RATES = (("10 calls/s", 10), ("1,000 calls/s", 1_000), ("100,000 calls/s", 100_000),
             ("10,000,000 calls/s", 10_000_000))
    BUDGETS = (("1% of a core", 0.01), ("10% of a core", 0.1), ("50% of a core", 0.5),
               ("a whole core", 1.0))

    def __init__(self, results: Sequence[Measure], budget: float = CPU_BUDGET) -> None:
        import ipywidgets as widgets

        self.results = list(results)
        budgets = dict((*self.BUDGETS, (f"{percent(budget)} of a core", budget)))
        self._untrusted = widgets.Checkbox(description="plugins I do not trust")
        self._languages = widgets.Checkbox(description="plugins in other languages")
        self._hot = widgets.Checkbox(description="replace plugins while running")
        self._rate = widgets.Dropdown(options=self.RATES, value=1_000, description="calls")
        self._budget = widgets.Dropdown(options=list(budgets.items()), value=budget,
                                        description="CPU budget")
        self._answer = widgets.HTML()
        for control in (self._untrusted, self._languages, self._hot, self._rate,
                        self._budget):
            control.observe(lambda _change: self._update(), names="value")
        self.widget = widgets.VBox([self._untrusted, self._languages, self._hot, self._rate,
                                    self._budget, self._answer])
        self._update()

    @property
    def advice(self) -> Recommendation:
        return advise(untrusted=self._untrusted.value, languages=self._languages.value,
                      hot_reload=self._hot.value, calls_per_second=self._rate.value,
                      results=self.results, budget=self._budget.value)

    def _update(self) -> None:
        import html

        advice = self.advice
        self._answer.value = (f"<b>{html.escape(advice.model or 'No model fits')}</b>: "
                              f"{html.escape(advice.reason)}")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The controls in a notebook; the advice as text for nbval, slides and printing."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = str(self)
        return bundle

    def __str__(self) -> str:
        return str(self.advice)
