"""The steps of the Dockerfile repo2docker would build, read from ``--no-build`` output.

The portable run replays them in a Debian root filesystem, so each step gets exactly the
environment, user and folder the image build gives it (``env -i`` plus what the Dockerfile
set so far), and nothing of the machine that runs the replay.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: What a container starts with before the Dockerfile's first ENV (Docker's default PATH;
#: buildpack-deps sets nothing else).
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Step:
    """One RUN or COPY of the Dockerfile, with the state the build is in when it runs."""

    instruction: str  # "RUN" or "COPY"
    argument: str  # the shell command, or the COPY's source and destination
    user: str  # "root" or the notebook user's name
    workdir: str
    env: dict[str, str]  # what a RUN's shell sees: ENV so far, and the ARGs


@dataclass(frozen=True)
class Build:
    """Every RUN and COPY in order, and the environment of the finished image."""

    steps: list[Step]
    image_env: dict[str, str] = field(default_factory=dict)

    def step(self, pattern: str) -> Step:
        """The one RUN whose command matches ``pattern`` (a regular expression)."""
        found = [s for s in self.steps if s.instruction == "RUN" and re.search(pattern, s.argument)]
        if len(found) != 1:
            raise ValueError(f"{len(found)} RUN steps match {pattern!r}, expected one")
        return found[0]


def generate(repo: Path, user: str = "jovyan", uid: int = 1000) -> str:
    """The Dockerfile ``jupyter-repo2docker --no-build`` prints for ``repo``."""
    r2d = Path(sys.executable).parent / "jupyter-repo2docker"
    proc = subprocess.run(
        [str(r2d), "--no-build", "--user-id", str(uid), "--user-name", user, str(repo)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"repo2docker --no-build failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def parse(text: str, build_args: dict[str, str]) -> Build:
    """Read the instructions of ``text`` in order. ``build_args`` are the ``--build-arg``
    values repo2docker passes (``NB_USER``, ``NB_UID``)."""
    env = dict(BASE_ENV)
    args: dict[str, str] = {}
    user, workdir = "root", "/"
    steps: list[Step] = []
    for instruction, rest in _instructions(text):
        scope = {**args, **env}
        if instruction == "ENV":
            env.update(_pairs(rest, scope))
        elif instruction == "ARG":
            name, _, default = rest.partition("=")
            args[name] = build_args.get(name, expand(default, scope))
        elif instruction == "USER":
            user = expand(rest, scope)
        elif instruction == "WORKDIR":
            workdir = expand(rest, scope)
        elif instruction in ("RUN", "COPY"):
            steps.append(Step(instruction, rest, user, workdir, {**args, **env}))
    return Build(steps, env)


def expand(value: str, scope: dict[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` replaced as Docker does in ENV, ARG, USER and WORKDIR."""
    return _VARIABLE.sub(lambda m: scope.get(m[1] or m[2], ""), value)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) for each instruction: comments dropped, continuations joined."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue  # Docker drops comment lines inside a continuation too
        if line.endswith("\\"):
            current += line[:-1]
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        if word.isupper():
            found.append((word, rest.strip()))
        current = ""
    return found


def _pairs(rest: str, scope: dict[str, str]) -> dict[str, str]:
    """ENV's ``K=V K2=V2`` form (values may be quoted), or the old ``K V`` form."""
    words = shlex.split(rest)
    if words and "=" not in words[0]:
        return {words[0]: expand(" ".join(words[1:]), scope)}
    pairs: dict[str, str] = {}
    for word in words:
        name, _, value = word.partition("=")
        pairs[name] = expand(value, scope)  # Docker: every pair sees the values from before
    return pairs
