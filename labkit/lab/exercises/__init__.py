"""Instant feedback on the notebooks' exercises: ``labkit.check("01.1", answer)``.

The answer to an exercise is something the learner built or ran: a library, a program, a
plugin script, a package folder, a loaded wasm plugin. Its judge builds, loads or runs it for
real (in a child process when it may crash or hang) and prints a pass, or what it saw and a
hint: a nudge first, then a pointer to the section or API to read, never the answer.
Solutions live in ``notebooks/solutions/``; CI runs them, so every judge is shown to accept
a right answer.

One module per notebook holds that notebook's exercises; :mod:`.framework` holds the shape of
an exercise and its feedback, :mod:`.judging` what the judges share.
"""

from __future__ import annotations

from typing import Any

from . import (
    abi_mismatches,
    choosing,
    compile_time,
    cxx,
    dlopen,
    go_plugin_depth,
    go_plugins,
    loader,
    platforms,
    plugin_host,
    rpc,
    shared_objects,
    wasm,
)
from .framework import Exercise, Feedback, RefusedError, forget_hints
from .framework import evaluate as _evaluate

#: Every exercise of the lab, by id, in the notebooks' order.
EXERCISES: dict[str, Exercise] = {
    exercise.id: exercise
    for module in (shared_objects, dlopen, plugin_host, abi_mismatches, go_plugins, rpc,
                   compile_time, choosing, wasm, loader, cxx, go_plugin_depth,
                   platforms)
    for exercise in module.EXERCISES
}


def evaluate(exercise: str, answer: Any) -> Feedback:
    """Judge ``answer`` to ``exercise`` (``"01.1"``) and return the :class:`Feedback`,
    printing nothing. A wrong answer moves the exercise's hints one step on."""
    return _evaluate(EXERCISES, exercise, answer)


def check(exercise: str, answer: Any) -> None:
    """Print the verdict on ``answer`` to ``exercise`` (``"01.1"``): passed, or what the judge
    saw and a hint (a nudge the first time, then a pointer to what to read)."""
    print(evaluate(exercise, answer))


__all__ = ["EXERCISES", "Exercise", "Feedback", "RefusedError", "check", "evaluate", "forget_hints"]
