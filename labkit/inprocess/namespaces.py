"""Two copies of one library in one process: which copy does a plugin's call reach?

:func:`call_beside` starts a fresh Python process that stands for a host linked with one
release of a library (it loads that library ``RTLD_GLOBAL``, which puts it in the process's
global scope as a linked library is), then loads a plugin that carries its own copy, with
dlopen's flags or with ``dlmopen`` into a new namespace, and calls the plugin's functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..isolate import Outcome
from ..isolate import run as run_isolated
from ..paths import existing_file, show
from .dlopen import RTLD

_SNIPPET = """
import json, labkit
host = labkit.load({host!r}, labkit.RTLD.NOW | labkit.RTLD.GLOBAL)
plugin = labkit.load({plugin!r}, {flags}, namespace={namespace!r})
answers = [(name, plugin.function(name, "int(void)")()) for name in {calls!r}]
host_says = [(name, host.function(name, "int(void)")()) for name in {host_calls!r}]
print(json.dumps([answers, host_says, plugin.namespace]))
"""


@dataclass(frozen=True)
class Beside:
    """What the plugin's functions returned, what the host's copy says afterwards, and the
    namespace the plugin was loaded in (0: the host's own)."""

    plugin: str
    how: str
    answers: tuple[tuple[str, int], ...]  # (function, what it returned), in call order
    host_says: tuple[tuple[str, int], ...]
    namespace: int | None
    outcome: Outcome = field(repr=False)

    def __str__(self) -> str:
        if not self.outcome.ok:
            return f"{self.plugin}, {self.how}: {self.outcome.summary()}"
        said = ", ".join(f"{name}() = {value}" for name, value in self.answers)
        host = ", ".join(f"{name}() = {value}" for name, value in self.host_says)
        return (f"{self.plugin}, {self.how}, namespace {self.namespace}:\n  the plugin: {said}"
                + (f"\n  then the host's copy: {host}" if host else ""))


def call_beside(
    host_library: str | os.PathLike[str],
    plugin: str | os.PathLike[str],
    calls: Sequence[str],
    *,
    flags: int = RTLD.NOW,
    namespace: str | None = None,
    host_calls: Sequence[str] = (),
) -> Beside:
    """In a fresh process with ``host_library`` loaded ``RTLD_GLOBAL``, load ``plugin`` with
    ``flags`` (``namespace="new"``: through dlmopen), call each of ``calls`` (``int
    name(void)``) in the plugin, then each of ``host_calls`` in the host's library."""
    host = existing_file(host_library, "host library")
    path = existing_file(plugin, "plugin")
    if not calls:
        raise InputError("call_beside needs at least one of the plugin's functions to call",
                         fix="pass calls=['plugin_release']")
    outcome = run_isolated(_SNIPPET.format(
        host=str(host.resolve()), plugin=str(path.resolve()), flags=int(flags),
        namespace=namespace, calls=list(calls), host_calls=list(host_calls)))
    how = RTLD.describe(flags) if namespace is None else "dlmopen(LM_ID_NEWLM, ...)"
    if outcome.ok:
        answers, host_says, lmid = json.loads(outcome.stdout.strip().splitlines()[-1])
        return Beside(show(path), how, tuple(map(tuple, answers)),
                      tuple(map(tuple, host_says)), lmid, outcome)
    return Beside(show(path), how, (), (), None, outcome)
