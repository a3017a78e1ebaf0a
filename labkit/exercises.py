"""Instant feedback on the notebooks' exercises: ``labkit.check("01.1", answer)``.

Each exercise has a judge that looks at the learner's answer the way the lab looks at
anything: it reads the ELF file, loads the library in a child process, runs the program,
inspects the error. It prints a pass, or what is wrong and a hint. Solutions live in
``notebooks/solutions/``; CI runs them, so every judge is shown to accept a right answer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .abi import struct_layout
from .binutils import nm_dynamic
from .build import Artifact
from .constants import RTLD
from .elf import read_elf
from .errors import InputError, PluginError, WasmTrap
from .isolate import Outcome
from .isolate import run as run_isolated
from .load import Library, load_fresh

Verdict = tuple[bool, str]  # passed?, what the judge saw


@dataclass(frozen=True)
class Exercise:
    """One exercise: its id (``"NN.K"``), what it asks, a hint, and its judge."""

    id: str
    asks: str
    hint: str
    judge: Callable[[Any], Verdict]


@dataclass(frozen=True)
class Feedback:
    """The judge's answer about one answer."""

    exercise: str
    passed: bool
    message: str
    hint: str = ""

    def __str__(self) -> str:
        if self.passed:
            return f"✅ {self.exercise} passed: {self.message}"
        return f"❌ {self.exercise} not yet: {self.message}\n   Hint: {self.hint}"


def evaluate(exercise: str, answer: Any) -> Feedback:
    """Judge ``answer`` to ``exercise`` and return the :class:`Feedback` (printing nothing)."""
    if exercise not in EXERCISES:
        raise InputError(f"no exercise {exercise!r}; the lab has {', '.join(EXERCISES)}")
    spec = EXERCISES[exercise]
    if answer is Ellipsis:
        return Feedback(exercise, False, f"no answer yet. {spec.asks} Replace the ... with "
                        "your answer and run the cell again.", spec.hint)
    try:
        passed, message = spec.judge(answer)
    except Exception as exc:  # a wrong kind of answer is feedback, not a traceback
        passed, message = False, f"could not judge {_kind(answer)}: {type(exc).__name__}: {exc}"
    return Feedback(exercise, passed, message, "" if passed else spec.hint)


def check(exercise: str, answer: Any) -> None:
    """Print the verdict on ``answer`` to ``exercise`` (``"01.1"``): passed, or what is
    wrong and a hint."""
    print(evaluate(exercise, answer))


# -- judges -----------------------------------------------------------------------------------

def _path(answer: Any) -> Path:
    if isinstance(answer, (Artifact, Library)):
        return Path(answer.path)
    if isinstance(answer, (str, os.PathLike)):
        return Path(answer)
    raise TypeError(f"expected what labkit.build_shared returned, got {_kind(answer)}")


def _kind(answer: Any) -> str:
    return f"a {type(answer).__name__}"


def _call(path: Path, function: str, signature: str, *args: Any) -> Outcome:
    """Load a private copy of ``path`` in a child and call ``function``: a learner's library
    may crash, and the kernel must not."""
    return run_isolated(lambda: load_fresh(path).function(function, signature)(*args), timeout=30)


def _area_of_square(answer: Any) -> Verdict:
    path = _path(answer)
    exported = read_elf(path).exported
    if "area_of_square" not in exported:
        return False, f"{path.name} exports no area_of_square (it exports {sorted(exported)})"
    if "square" in exported:
        return False, "square is exported now; it should stay static, private to the file"
    outcome = _call(path, "area_of_square", "double(double)", 3.0)
    if not outcome.ok or outcome.value != 9.0:
        return False, f"area_of_square(3.0) gave {outcome.value!r} ({outcome.summary()})"
    return True, "area_of_square is exported, square is not, and area_of_square(3.0) = 9.0"


def _hidden_counter(answer: Any) -> Verdict:
    path = _path(answer)
    dynamic = [name for _, name in nm_dynamic(path, defined_only=True)]
    if "area_of_circle" not in dynamic:
        return False, f"{path.name} does not export area_of_circle: build the whole SHAPES"
    if "shapes_made" in dynamic:
        return False, "nm -D still lists shapes_made: it is still exported"
    return True, "nm -D lists area_of_circle but no shapes_made: it is hidden"


def _divide_by_zero(answer: Any) -> Verdict:
    signal = answer.signal if isinstance(answer, Outcome) else answer
    if signal == "SIGFPE":
        return True, "integer division by zero traps on x86_64, and the kernel sends SIGFPE"
    return False, f"the child ended with {signal!r}, not the signal of an integer division by 0"


def _lazy_global(answer: Any) -> Verdict:
    if not isinstance(answer, Library):
        return False, f"expected what labkit.load returned, got {_kind(answer)}"
    if not answer.flags & RTLD.GLOBAL or answer.flags & RTLD.NOW:
        return False, f"it was loaded with {RTLD.describe(answer.flags)}"
    return True, f"loaded with {RTLD.describe(answer.flags)}"


def _equals(expected: object, right: str, wrong: str) -> Callable[[Any], Verdict]:
    """A judge for an answer that is one value: ``wrong`` is formatted with the answer."""
    def judge(answer: Any) -> Verdict:
        return (True, right) if answer == expected else (False, wrong.format(repr(answer)))

    return judge


def _size_check(answer: Any) -> Verdict:
    if not isinstance(answer, PluginError):
        return False, f"expected the labkit.PluginError the host raised, got {_kind(answer)}"
    if answer.check != "size":
        return False, f"the host refused it at check {answer.check!r}, not at 'size'"
    if answer.declared.get("size") != 8:
        return False, f"the plugin declared size {answer.declared.get('size')!r}, not 8"
    return True, "the host refused it at check 'size': it declared 8 bytes"


def _drifted_offset(answer: Any) -> Verdict:
    from .samples import build_samples

    with tempfile.TemporaryDirectory() as tmp:
        built = build_samples(Path(tmp) / "plugins")
        old, new = (struct_layout(built[pid].path, "lab_options") for pid in ("upper", "upper_v2"))
    offsets = {m.name: m.offset for m in new.members}
    was = {m.name: m.offset for m in old.members}["repeat"]
    if answer == offsets["repeat"]:
        return True, (f"upper_v2 keeps repeat at byte {offsets['repeat']}, the host reads it at "
                      f"byte {was}: it reads another member there")
    return False, f"{answer!r} is not the offset DWARF gives for repeat in upper_v2"


def _outcome(answer: Any) -> Outcome:
    if not isinstance(answer, Outcome):
        raise TypeError(f"expected what labkit.run_go_host returned, got {_kind(answer)}")
    return answer


def _host_loads(flag: str, *needles: str) -> Callable[[Any], Verdict]:
    """A judge for the Go host's outcome on a plugin built with ``flag`` like the host: it ran,
    and printed every one of ``needles`` (the plugin it opened, what it saw)."""
    def judge(answer: Any) -> Verdict:
        outcome = _outcome(answer)
        if outcome.ok and all(needle in outcome.stdout for needle in needles):
            return True, f"host and plugin both built with {flag}: it loads"
        return False, f"the host said: {(outcome.stdout + outcome.stderr).strip()[-300:]}"

    return judge


def _request_id(answer: Any) -> Verdict:
    if not isinstance(answer, Mapping):
        return False, f"expected the headers transform() returned, got {_kind(answer)}"
    if "x-request-id" not in answer:
        return False, f"no x-request-id among {sorted(answer)}"
    if answer.get("x-plugin-lang") != "python":
        return False, "x-plugin-lang is not 'python': did the answer come from your plugin?"
    return True, f"your plugin answered with x-request-id = {answer['x-request-id']!r}"


def _ignored_shutdown(answer: Any) -> Verdict:
    if isinstance(answer, str) and answer.startswith("ignored Shutdown"):
        return True, f"close() said: {answer}"
    return False, f"close() said {answer!r}"


def _registered_twice(answer: Any) -> Verdict:
    outcome = _outcome(answer)
    if outcome.returncode == 1 and 'a plugin named "trim" already exists' in outcome.stdout:
        return True, "the host refused to start: two plugins cannot share a name"
    return False, f"the host said: {outcome.stdout.strip()[-300:]} ({outcome.summary()})"


def _reverse(answer: Any) -> Verdict:
    if not isinstance(answer, Mapping):
        return False, f"expected what labkit.transformers() returned, got {_kind(answer)}"
    if "reverse" not in answer:
        return False, f"no entry point 'reverse' in the group; found {sorted(answer)}"
    return True, f"entry point 'reverse' found among {sorted(answer)}"


def _advice(answer: Any) -> Verdict:
    from .choose import Recommendation
    from .figures import percent

    if not isinstance(answer, Recommendation):
        return False, f"expected what labkit.advise returned, got {_kind(answer)}"
    asked = (answer.untrusted, answer.languages, answer.calls_per_second)
    if asked != (True, True, 100):
        return False, (f"that advice answers untrusted={asked[0]}, languages={asked[1]}, "
                       f"calls_per_second={asked[2]}: not the situation of the exercise")
    if answer.model is None:  # the judge's words stay the same from run to run: no timings
        return True, (f"no model fits {percent(answer.budget)} of a core at 100 calls/s on "
                      "this machine; print the advice for its numbers")
    return True, (f"{answer.model}: it meets those constraints and its calls fit "
                  f"{percent(answer.budget)} of a core at 100 calls/s; print the advice for "
                  "the numbers")


def _fuelled(answer: Any) -> Verdict:
    from .wasm import WasmPlugin, shout

    if not isinstance(answer, WasmPlugin):
        return False, f"expected what labkit.load_wasm returned, got {_kind(answer)}"
    if answer.fuel is None:
        return False, "it was loaded without fuel, so spin would never stop"
    try:
        said = shout(answer, "hello")
    except WasmTrap as trap:
        return False, f"{answer.fuel} fuel is too little for shout('hello'): {trap.reason}"
    try:
        answer.call("spin")
    except WasmTrap as trap:
        return True, f"shout gave {said!r} and spin was stopped: {trap.reason}"
    return False, "spin returned, which it never should"  # pragma: no cover


EXERCISES: dict[str, Exercise] = {e.id: e for e in [
    Exercise("01.1", "Build SHAPES with a new double area_of_square(double side) that calls "
             "square.", "add the function to SHAPES without 'static', then "
             "labkit.build_shared(new_source, 'shapes2').", _area_of_square),
    Exercise("01.2", "Build SHAPES with shapes_made hidden.",
             "put __attribute__((visibility(\"hidden\"))) before int shapes_made.",
             _hidden_counter),
    Exercise("02.1", "Divide by zero in a plugin, in a child process.",
             "run a callable that calls divide(1, 0) with labkit.run_isolated and give the "
             "Outcome (or its .signal).", _divide_by_zero),
    Exercise("02.2", "Load a library with RTLD.LAZY | RTLD.GLOBAL.",
             "labkit.load(path, RTLD.LAZY | RTLD.GLOBAL); give the Library.", _lazy_global),
    Exercise("03.1", "What does upper.transform('ABI') give with letter_case='lower' and "
             "repeat=3?", "host.load('upper', letter_case='lower', repeat=3).transform('ABI')",
             _equals("abiabiabi", "lower case, three times",
                     "{} is not what upper gives for 'ABI' in lower case three times")),
    Exercise("03.2", "Load a plugin whose descriptor says .size = 8.",
             "write the plugin with %%cplugin or labkit.build_shared into a folder of its own, "
             "then catch the labkit.PluginError that PluginHost(folder).load raises.",
             _size_check),
    Exercise("04.1", "At which byte offset does repeat sit in struct lab_options of upper_v2?",
             "labkit.struct_layout(upper_v2, 'lab_options').members: find repeat's offset.",
             _drifted_offset),
    Exercise("04.2", "Which problem kind does explain give for upper.c built for musl?",
             "labkit.explain(labkit.build_shared(Path(...), 'upper_musl', "
             "target='x86_64-linux-musl', cflags=[...])).problems[0].kind",
             _equals("musl", "a shared object has no interpreter of its own; it needs musl's "
                     "libc.so", "{} is not the kind explain gives for a musl shared object")),
    Exercise("05.1", "Run a host built with tags=['api_v2'] on greeter_v2.so.",
             "labkit.run_go_host(labkit.build_go('host', 'host_v2', tags=['api_v2']), "
             "go['greeter_v2'])",
             _host_loads("-tags api_v2", "greeter_v2.so: ok", "api release 1.1")),
    Exercise("05.2", "Run a host built with trimpath=True on greeter_trim.so.",
             "labkit.run_go_host(labkit.build_go('host', 'host_trim', trimpath=True), "
             "go['greeter_trim'])",
             _host_loads("-trimpath", "greeter_trim.so: ok", "Transform(")),
    Exercise("06.1", "Write a plugin that adds x-request-id and call it.",
             "copy plugins/python/transformer_plugin.py to build/, add the header in "
             "transform, start it with labkit.PluginClient(labkit.python_plugin(path)).",
             _request_id),
    Exercise("06.2", "Close faulty_plugin('ignore-shutdown') with grace=1.",
             "labkit.PluginClient(labkit.faulty_plugin('ignore-shutdown'), grace=1).start()"
             ".close()", _ignored_shutdown),
    Exercise("07.1", "Register a second plugin named trim and start the host.",
             "with %%goplugin NAME --mode exe, a main that calls framework.Main(os.Args[1:], "
             "framework.WithPlugin(\"trim\", ...)); run it with labkit.run_program.",
             _registered_twice),
    Exercise("07.2", "Install a plugin package with an entry point reverse.",
             "copy plugins/python/labplug_shout, add reverse to [project.entry-points."
             "\"pluginlab.transformers\"], labkit.install_plugin(copy), then "
             "labkit.transformers().", _reverse),
    Exercise("08.1", "Which model suits plugins you do not trust, written in other languages, "
             "called 100 times a second?", "labkit.advise(untrusted=True, languages=True, "
             "hot_reload=False, calls_per_second=100, results=results), with the results "
             "of labkit.run_bench", _advice),
    Exercise("09.1", "Load the wasm sample with enough fuel for shout('hello') but a limit "
             "that stops spin.", "labkit.load_wasm(built['wasm'], fuel=100_000)", _fuelled),
]}
