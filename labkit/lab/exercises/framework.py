"""The shape of an exercise and of its feedback, and the hints given in steps.

An :class:`Exercise` has a question, two hints and a judge. The judge receives the learner's
answer (something built or run: a library, a program, a plugin script, a folder) and builds,
loads or runs it; it returns what it saw when the answer holds and raises :class:`RefusedError`
with what it saw when it does not. :func:`evaluate` turns that into :class:`Feedback`, never
into a traceback: a judge that fails on a wrong kind of answer says so in words.

Hints come in steps, per exercise and per process: the stub (``answer = ...``) and the first
wrong answer show the nudge; every wrong answer after that shows the pointer, the section or
API to read. Neither ever holds the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import InputError

#: A judge: returns what it saw when the answer holds, raises :class:`RefusedError` otherwise.
Judge = Callable[[Any], str]


class RefusedError(Exception):
    """A judge's verdict that the answer does not hold; the message says what it saw."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: its id (``"NN.K"``), the question in one sentence, its hints (a nudge,
    then a pointer to the section or API to read) and its judge."""

    id: str
    asks: str
    hints: tuple[str, str]
    judge: Judge


@dataclass(frozen=True)
class Feedback:
    """The judge's answer about one answer: passed or not, what it saw, and the hint of this
    step (``step`` of ``steps``; none when it passed)."""

    exercise: str
    passed: bool
    message: str
    hint: str = ""
    step: int = 0
    steps: int = 0

    def __str__(self) -> str:
        if self.passed:
            return f"✅ {self.exercise} passed: {self.message}"
        return (f"❌ {self.exercise} not yet: {self.message}\n"
                f"   Hint {self.step} of {self.steps}: {self.hint}")


_hints_shown: dict[str, int] = {}


def forget_hints() -> None:
    """Start every exercise's hints again from the nudge (a fresh kernel does the same)."""
    _hints_shown.clear()


def evaluate(exercises: Mapping[str, Exercise], exercise: str, answer: Any) -> Feedback:
    """Judge ``answer`` to ``exercise`` and return the :class:`Feedback` (printing nothing).
    A wrong answer moves the exercise's hints one step on."""
    if exercise not in exercises:
        raise InputError(f"no exercise {exercise!r}",
                         fix=f"use one the lab has: {', '.join(exercises)}")
    spec = exercises[exercise]
    if answer is Ellipsis:
        passed, message = False, (f"no answer yet. {spec.asks} Replace the ... with your "
                                  "answer and run the cell again.")
    else:
        try:
            passed, message = True, spec.judge(answer)
        except RefusedError as verdict:
            passed, message = False, str(verdict)
        except Exception as exc:  # a wrong kind of answer is feedback, not a traceback
            passed, message = False, (f"could not judge {kind(answer)}: "
                                      f"{type(exc).__name__}: {exc}")
    if passed:
        return Feedback(exercise, True, message)
    step = min(_hints_shown.get(exercise, 0), len(spec.hints) - 1)
    _hints_shown[exercise] = step + 1
    return Feedback(exercise, False, message, spec.hints[step], step + 1, len(spec.hints))


def kind(answer: Any) -> str:
    """How a judge names what it was given: ``the int 42``, ``a Library``."""
    if isinstance(answer, (str, bytes, int, float, bool)):
        shown = repr(answer)
        return f"the {type(answer).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}"
    name = type(answer).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"
