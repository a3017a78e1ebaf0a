"""What the judges share: reading an answer as a file or a folder, a private place to work,
and running code in a child process with its result sent back as JSON.

A judge never trusts an object the learner could make by hand: it takes what the learner
built (a file, a folder, a script), builds what else it needs itself in a temporary folder
(builds are cached, so that is quick), and loads or runs the learner's work in a child
process with a timeout, so a crash or a hang stays there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...build.c import Artifact
from ...inprocess.dlopen import Library
from ...inspect.elf import read_elf
from ...isolate import Outcome
from ...isolate import run as run_isolated
from ...paths import show, tidy
from .framework import RefusedError, kind

#: The line a snippet prints its result on, as JSON after this marker.
_RESULT = "@@result "


def built_file(answer: Any, what: str) -> Path:
    """The file ``answer`` stands for: an :class:`Artifact` (what labkit's builds return), a
    :class:`Library`, or the path of an existing file. Anything else is refused, saying it
    expected ``what``."""
    if isinstance(answer, (Artifact, Library)):
        path = Path(answer.path)
    elif isinstance(answer, (str, os.PathLike)) and not isinstance(answer, bool):
        path = Path(answer)
    else:
        raise RefusedError(f"expected {what}; got {kind(answer)}")
    if not path.is_file():
        raise RefusedError(f"expected {what}; got {kind(answer)}, which names no file")
    return path


def folder(answer: Any, what: str) -> Path:
    """The folder ``answer`` names (a ``str`` or a path), else refused."""
    if isinstance(answer, (str, os.PathLike)) and not isinstance(answer, bool):
        path = Path(answer)
        if path.is_dir():
            return path
        raise RefusedError(f"expected {what}; got {kind(answer)}, which names no folder")
    raise RefusedError(f"expected {what}; got {kind(answer)}")


@contextmanager
def workspace() -> Iterator[Path]:
    """A temporary folder for one judgement, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="labkit-judge-") as tmp:
        yield Path(tmp)


def copy_into(source: Path, folder: Path, name: str | None = None) -> Path:
    """Copy ``source`` into ``folder`` (as ``name``): the judge loads its own copy, so a file
    the kernel already has mapped, or rebuilds later, does not matter."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or source.name)
    shutil.copy2(source, target)
    return target


def snippet(
    code: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> tuple[Outcome, Any]:
    """Run Python ``code`` in a fresh interpreter (a child process, so a crash or a hang stays
    there). ``code`` may call ``result(value)`` to send a JSON value back; returns the outcome
    and that value (None if it never got there)."""
    prelude = ("import json as _json\n"
               f"def result(value):\n    print({_RESULT!r} + _json.dumps(value), flush=True)\n")
    outcome = run_isolated(prelude + code, timeout=timeout, env=env, cwd=cwd)
    value = None
    for line in outcome.stdout.splitlines():
        if line.startswith(_RESULT):
            value = json.loads(line[len(_RESULT):])
    return outcome, value


def said(outcome: Outcome, lines: int = 3) -> str:
    """How a child ended, in words, with the last lines it wrote on stderr."""
    tail = [line for line in tidy(outcome.stderr).strip().splitlines()
            if not line.startswith(_RESULT)][-lines:]
    if outcome.error is not None and outcome.returncode is not None:
        return f"{outcome.error['kind']}: {tidy(outcome.error['message'])}"
    text = outcome.summary()
    return text + (f"; its stderr ends: {' | '.join(tail)}" if tail else "")


def shown(path: Path) -> str:
    """A learner's path as the lab prints paths."""
    return show(path)


def require_exports(path: Path, names: Sequence[str], exported: Collection[str] | None = None,
                    why: str = "") -> None:
    """Refuse ``path`` unless it exports every one of ``names`` (its dynamic symbols, unless
    ``exported`` says otherwise); ``why`` ends the refusal."""
    exported = read_elf(path).exported if exported is None else exported
    missing = [name for name in names if name not in exported]
    if missing:
        raise RefusedError(f"{shown(path)} exports no {' and no '.join(missing)}{why}")
