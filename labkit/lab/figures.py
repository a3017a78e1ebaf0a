"""The bench's figures: what each one measures, and how a batch of timings becomes one.

A figure names who calls whom, and how (``"Go host → Go plugin (Lookup'd func)"``), and
says whose clock timed it (``timed_in``): a figure timed in Python prices a call *from
Python*, binding included, which is not what the same call costs in the plugin's own
language. :class:`Figure` holds every name the bench measures, in the order of its table;
:mod:`labkit.lab.choose` prices each plugin model with them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from ..errors import InputError

Kind = Literal["call", "start"]
#: A figure whose batches spread more than this (max - min over the median) is noisy.
NOISY = 0.5
#: The share of one core the plugin calls may take, unless told otherwise (notebook 08).
CPU_BUDGET = 0.10


class Figure(StrEnum):
    """Every figure of ``python -m labkit bench``: who calls whom (how)."""

    # per call, grouped by plugin model; each group starts with the host's own language
    C_DLSYM = "C host → C .so (dlsym'd pointer)"
    PY_CFFI = "Python → C .so (cffi)"
    PY_CTYPES = "Python → C .so (ctypes)"
    GO_PLUGIN = "Go host → Go plugin (Lookup'd func)"
    PY_GO_CSHARED = "Python → Go c-shared .so (cffi)"
    GO_COMPILED_IN = "Go → Go compiled in (direct call)"
    GO_REGISTRY = "Go → Go compiled in (registry's interface call)"
    PY_FUNCTION = "Python → Python function"
    C_WASM_RAW = "C host → wasm32 (C API, raw)"
    C_WASM = "C host → wasm32 (C API, checked)"
    WASM_INSIDE = "wasm32 → wasm32 inside the module"
    PY_WASM = "Python → wasm32 (wasmtime-py)"
    GO_RPC_GO = "Go host → Go plugin (go-plugin RPC)"
    GO_RPC_PY = "Go host → Python plugin (go-plugin RPC)"
    GO_RPC_PYVIDER = "Go host → pyvider-rpcplugin plugin (go-plugin RPC)"
    PY_RPC_GO = "Python host → Go plugin (RPC)"
    PY_RPC_PY = "Python host → Python plugin (RPC)"
    PY_RPC_PYVIDER = "Python host → pyvider-rpcplugin plugin (RPC)"
    GRPC_PLAIN = "Python → Python plain grpcio unary call"
    RPC_FLOOR = "Python ↔ Python socket ping-pong"
    # start-up
    C_DLOPEN = "C host: dlopen a C .so"
    PY_DLOPEN = "Python: dlopen a C .so (cffi)"
    GO_OPEN = "Go host: plugin.Open + Lookup"
    PY_GO_LOAD = "Python: Go c-shared .so, load + 1st call"
    C_WASM_START = "C host: new engine, compile + instantiate wasm"
    PY_WASM_START = "Python: new engine, compile + instantiate wasm"
    GO_RPC_START = "Go host: start a go-plugin process"
    GO_RPC_PY_START = "Go host: start a Python plugin process"
    GO_RPC_PYVIDER_START = "Go host: start a pyvider-rpcplugin plugin process"
    PY_RPC_GO_START = "Python host: start a Go plugin process"
    PY_RPC_PY_START = "Python host: start a Python plugin process"
    PY_RPC_PYVIDER_START = "Python host: start a pyvider-rpcplugin plugin process"


@dataclass(frozen=True)
class Measure:
    """One figure: ``seconds`` per operation, the median of ``repeats`` batches of
    ``number`` operations; ``spread`` is (max - min) / median of the batches; ``timed_in``
    names the language whose clock timed it."""

    name: str
    kind: Kind
    seconds: float
    spread: float
    repeats: int
    number: int
    timed_in: str = "Python"

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY

    @property
    def python_side(self) -> bool:
        """Timed by Python around a call from Python: the binding's cost is in it."""
        return self.timed_in == "Python"

    @property
    def label(self) -> str:
        """Who calls whom, and whose clock: ``"Go host → Go plugin (Lookup'd func), timed
        in Go"``."""
        return f"{self.name}, timed in {self.timed_in}"


def summarise(name: str, kind: Kind, samples: list[float], number: int,
              timed_in: str = "Python") -> Measure:
    """The figure of ``samples`` (seconds per operation, one per batch of ``number``)."""
    median = statistics.median(samples)
    spread = (max(samples) - min(samples)) / median if median > 0 else 0.0
    return Measure(str(name), kind, median, spread, len(samples), number, timed_in)


def per_call(calls: Mapping[str, tuple[Callable[[], Any], int]], rounds: int = 7,
             clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Seconds per call of each ``name: (call, number)``, the best of ``rounds`` batches of
    ``number`` calls. The batches are interleaved (a batch of each call, then again), so a
    burst of load on the machine falls on every call alike rather than on the one timed
    while it lasted; the best batch is the one least disturbed. This lessens the noise of
    a ratio between the results without removing it: each call keeps its own best batch."""
    if rounds < 1:
        raise InputError(f"rounds={rounds!r}: per_call times at least one batch of each call",
                         fix="pass rounds=1 or more (7 is the default)")
    best = {name: float("inf") for name in calls}
    for call, number in calls.values():
        warm_up(call, number)
    for _ in range(rounds):
        for name, (call, number) in calls.items():
            best[name] = min(best[name], batch(call, number, clock))
    return best


def warm_up(call: Callable[[], Any], number: int) -> None:
    """Call ``call`` up to 50 times, untimed, before its batches: caches and lazy set-up."""
    for _ in range(min(number, 50)):
        call()


def batch(call: Callable[[], Any], number: int,
          clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of one batch of ``number`` calls of ``call``."""
    start = clock()
    for _ in range(number):
        call()
    return (clock() - start) / number


def human(seconds: float) -> str:
    """A duration with three significant digits and its unit: ``487 ns``, ``1.5 ms``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def rate(per_second: float) -> str:
    """A rate with three significant digits and a suffix: ``870``, ``12.5k``, ``53M``."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.3g}{suffix}"
    return f"{per_second:.3g}"


def percent(fraction: float) -> str:
    """A fraction as a percentage, as exact as it was given: ``10%``, ``12.5%``."""
    return f"{fraction * 100:.6g}%"
