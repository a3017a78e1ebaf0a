"""Choosing a plugin model (notebook 08): the trade-off table and a decision helper.

:data:`MODELS` holds what does not change from machine to machine (isolation, languages,
platforms, coupling, hot reload, deployment) and names the bench figures that price each
model: its call and start-up timed in the model's own host language, and the call from
Python for comparison. :func:`tradeoffs` adds the costs measured by
:func:`labkit.bench.run`. :func:`advise` turns a learner's constraints into a recommended
model and the reason; :class:`ModelAdvisor` is the same as an ipywidgets control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .figures import CPU_BUDGET, Figure, Measure, human, rate

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
        "call": Figure.GO_COMPILED_IN, "start": "", "python call": Figure.PY_FUNCTION,
        "a crash does": "kills the host", "languages": "the host's",
        "platforms": "the host's", "coupling": "none at run time: one build",
        "hot reload": "no: rebuild and redeploy", "deployment": "a new host binary",
    },
}
QUALITIES = ("a crash does", "languages", "platforms", "coupling", "hot reload", "deployment")


def tradeoffs(results: Sequence[Measure] | None = None, budget: float = CPU_BUDGET) -> Any:
    """The trade-off table as a pandas DataFrame, one row per model.

    With bench ``results`` it starts with the measured costs, each beside what it measured
    (who calls whom, and whose clock): ``call`` and ``start`` in the model's own host
    language, ``calls/s in N% of a core`` (how many calls fit in ``budget`` of one core),
    and ``Python-side call`` for comparison."""
    import pandas as pd

    measured = {m.name: m for m in results or []}
    fit = f"calls/s in {budget:.0%} of a core"
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
class Recommendation:
    """What :func:`advise` recommends, and why."""

    model: str
    reason: str
    untrusted: bool
    languages: bool
    hot_reload: bool
    calls_per_second: int

    def __str__(self) -> str:
        return f"{self.model}: {self.reason}"


def advise(*, untrusted: bool, languages: bool, hot_reload: bool,
           calls_per_second: int) -> Recommendation:
    """A model for these constraints: plugins you do not trust, plugins in other languages
    than the host's, replacing plugins while the host runs, and calls per second."""
    def recommend(model: str, reason: str) -> Recommendation:
        return Recommendation(model, reason, untrusted, languages, hot_reload, calls_per_second)

    fast = calls_per_second >= 100_000  # an RPC call costs 100 µs or more
    if untrusted and fast:
        return recommend(
            "WebAssembly (wasmtime)", "untrusted code at a high call rate: a trap cannot crash "
            "the host, and a call costs microseconds, not the hundreds of an RPC")
    if untrusted or (languages and not fast):
        return recommend(
            "RPC plugins (go-plugin)", "a plugin in its own process cannot crash the host and "
            "can be written in any language; at this call rate the RPC cost does not matter")
    if languages:
        return recommend(
            "WebAssembly (wasmtime)", "many languages compile to wasm32, and in-process calls "
            "keep up with this call rate")
    if hot_reload:
        return recommend(
            "C shared object (dlopen)", "trusted, same language, fast, and a host can swap a "
            "shared object while it runs (notebook 03's hot swap)")
    return recommend(
        "Compiled in (registry)", "trusted plugins in the host's language that change with "
        "the host's releases: build them in, as the Kubernetes scheduler does")


class ModelAdvisor:
    """ipywidgets controls for :func:`advise`; printing it prints the current advice."""

    RATES = (("10 calls/s", 10), ("1,000 calls/s", 1_000), ("100,000 calls/s", 100_000),
             ("10,000,000 calls/s", 10_000_000))

    def __init__(self) -> None:
        import ipywidgets as widgets

        self._untrusted = widgets.Checkbox(description="plugins I do not trust")
        self._languages = widgets.Checkbox(description="plugins in other languages")
        self._hot = widgets.Checkbox(description="replace plugins while running")
        self._rate = widgets.Dropdown(options=self.RATES, value=1_000, description="calls")
        self._answer = widgets.HTML()
        for control in (self._untrusted, self._languages, self._hot, self._rate):
            control.observe(lambda _change: self._update(), names="value")
        self.widget = widgets.VBox([self._untrusted, self._languages, self._hot, self._rate,
                                    self._answer])
        self._update()

    @property
    def advice(self) -> Recommendation:
        return advise(untrusted=self._untrusted.value, languages=self._languages.value,
                      hot_reload=self._hot.value, calls_per_second=self._rate.value)

    def _update(self) -> None:
        advice = self.advice
        self._answer.value = f"<b>{advice.model}</b>: {advice.reason}"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The controls in a notebook; the advice as text for nbval, slides and printing."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = str(self)
        return bundle

    def __str__(self) -> str:
        return str(self.advice)
