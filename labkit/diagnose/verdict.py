"""``python -m labkit explain FILE [--host HOST] [--require SYM] [--load]``: will this file
load, or run, here?

:func:`explain` answers without loading or running anything. It reads the file and the
libraries it would bring in, follows what glibc's loader does (see
:func:`labkit.diagnose.why.diagnose_load`: every dependency breadth first along each one's search
path, symbol versions, symbols, static TLS), and returns a :class:`Verdict`: one
:class:`~labkit.diagnose.why.Problem` per reason it will not, each with a fix, the one the
loader would name first in front. A shared object is checked for loading with dlopen, a
program (an executable or a PIE) for running: its interpreter and libraries must be there.
A program is checked for loading when asked (``load=True``, ``--load``) or when a host or a
required symbol says a host will load it: dlopen refuses programs, which the verdict says
either way. With a ``host``, the host program is the process that loads the file (its
exported symbols count, and so does its own static TLS); without one, this process is.
``require`` names symbols the host will look up in the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ElfError, InputError, ToolchainError
from ..inspect.binutils import demangle
from ..inspect.elf import ElfInfo, peek, read_elf, read_once
from ..inspect.foreign import format_of
from ..inspect.goinfo import GoInfo, go_info
from ..paths import existing_file, show
from .foreign import foreign_verdict
from .goplugin import go_note, go_problems
from .why import Context, Problem, diagnose_load, type_problems


@dataclass(frozen=True)
class Verdict:
    """What :func:`explain` found: ``ok`` when nothing stops the file."""

    path: Path
    action: str  # "load" for a shared object, "run" for a program
    problems: tuple[Problem, ...]
    checked: str  # what was checked, in words, when the file could be read
    notes: tuple[str, ...] = ()  # what to know that no check can catch

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            how = " as a program" if self.action == "run" else ""
            lines = [f"{show(self.path)}: will {self.action} here{how} ({self.checked})."]
        else:
            count = len(self.problems)
            lines = [f"{show(self.path)}: will not {self.action} here "
                     f"({count} problem{'s' if count > 1 else ''})."]
            lines += [f"- {problem.line()}" for problem in self.problems]
        lines += [f"Note: {note}." for note in self.notes]
        return "\n".join(lines)


def explain(
    path: str | os.PathLike[str],
    *,
    host: str | os.PathLike[str] | None = None,
    require: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    load: bool | None = None,
) -> Verdict:
    """Whether ``path`` will load (a shared object) or run (a program) on this machine.

    ``host`` is the program that will load it: its exported symbols count, and when host
    or file is Go, the Go runtime's rules for ``plugin.Open`` are checked too
    (:mod:`labkit.diagnose.goplugin`). ``require`` are symbols the host looks up with dlsym. ``env``
    is the environment whose LD_LIBRARY_PATH counts (this process's by default). ``load``
    chooses the question: True, will dlopen load it; False, will it run as a program; None
    (the default), loading for a shared object or when ``host`` or ``require`` is given,
    running for a program.
    Raises :class:`~labkit.errors.InputError` for a path that is missing, a directory or
    unreadable, and for a host that is not readable ELF; a file that is not ELF, or is
    truncated, gets a verdict saying so.
    """
    p = existing_file(path)
    with read_once(p, *([] if host is None else [host])):  # each read from disk once
        if _foreign(p):  # a DLL or a dylib: what it meets here and on its platform
            action, problems, checked, notes = foreign_verdict(p, require)
            if host is not None:
                notes += (f"--host {show(Path(host))} is not its platform's program: the "
                          "verdict is the file's own",)
            return Verdict(p, action, problems, checked, notes)
        return _explain(p, host, tuple(require), env, load)


def _foreign(p: Path) -> bool:
    """Whether ``p`` is a PE or Mach-O file (an ELF file is told by its memoised header)."""
    try:
        peek(p)
        return False
    except ElfError as exc:
        if exc.reason != "not-elf":
            return False
    with open(p, "rb") as f:
        return format_of(f.read(8)) is not None


def _explain(
    p: Path,
    host: str | os.PathLike[str] | None,
    required: tuple[str, ...],
    env: Mapping[str, str] | None,
    load: bool | None,
) -> Verdict:
    host_info = _host(host) if host is not None else None
    info = None
    with contextlib.suppress(ElfError):  # diagnose_load turns it into a problem
        info = read_elf(p)
    program = info is not None and info.type in ("executable", "pie executable")
    if load is None:
        load = not program or host is not None or bool(required)
    run = program and not load
    problems = diagnose_load(  # the file as read above, or its path to say why it is not ELF
        p if info is None else info,
        env=env, run=run, context=Context(host=host_info, require=required),
    )
    checked = _checked(info) if info is not None else ""
    notes: list[str] = []
    if run and info is not None and not problems:  # it runs; as a plugin it would not load
        notes += [_not_a_plugin(problem) for problem in type_problems(info)]
    if info is not None:
        go = _go_info(p)
        if go is not None:
            checked += f"; a Go {_go_kind(go)} built by {go.go_version}"
            if go.buildmode == "plugin":
                notes.append(go_note(go))
                if host is None:
                    notes.append("pass --host with the Go program that opens it to check "
                                 "the Go runtime's rules as well")
        if host is not None and not run:
            problems += _go_problems(p, go, host, host_info)
    return Verdict(p, "run" if run else "load", _with_cxx_names(problems), checked,
                   tuple(notes))


#: A mangled C++ name quoted in a problem: ``'_ZN3lab7missingEi'``.
_MANGLED = re.compile(r"'(_Z[\w.$]+)'")


def _with_cxx_names(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    """The problems, each mangled C++ name followed by its C++ spelling as ``c++filt`` says
    it: ``'_ZN3lab7missingEi' (lab::missing(int))``. Without c++filt the names stay as the
    loader spells them."""
    problems = tuple(problems)
    names = {name for problem in problems for name in _MANGLED.findall(problem.message)}
    try:
        plain = demangle(names)
    except ToolchainError:
        return problems

    def said(match: re.Match[str]) -> str:
        spelt = plain.get(match[1], match[1])
        return match[0] if spelt == match[1] else f"{match[0]} ({spelt})"

    def fix(problem: Problem) -> str:
        named = [plain.get(name, "") for name in _MANGLED.findall(problem.message)]
        if problem.kind == "undefined-symbol" and any("std::__cxx11::" in n for n in named):
            return problem.fix + _DUAL_ABI
        return problem.fix

    return tuple(dataclasses.replace(problem, message=_MANGLED.sub(said, problem.message),
                                     fix=fix(problem)) for problem in problems)


#: The fix's addition for a missing symbol whose C++ name holds ``std::__cxx11``.
_DUAL_ABI = ("; its name holds std::__cxx11, libstdc++'s C++11 ABI for std::string and "
             "std::list (the default of GCC 5 and later): a library built with "
             "-D_GLIBCXX_USE_CXX11_ABI=0 defines the same function under the old name, so "
             "build both sides with the same setting")


def _not_a_plugin(problem: Problem) -> str:
    """A program's note: why dlopen refuses it, which only matters to a host."""
    what = {"pie-executable": "a position-independent executable",
            "executable": "an executable linked at a fixed address"}.get(problem.kind, "")
    said = problem.message[problem.message.rfind("(dlopen says "):].strip("()")
    return (f"as a plugin it will not load: it is a program ({what}), and glibc's dlopen "
            f"refuses programs ({said}); --load checks it as a plugin")


def _go_problems(
    p: Path, go: GoInfo | None, host: str | os.PathLike[str], host_info: ElfInfo | None,
) -> list[Problem]:
    host_go = _go_info(host)
    if go is None:
        if host_go is None:
            return []
        return [Problem(
            "go-not-plugin",
            f"{show(p)} was not built by Go; the Go host can only open it with plugin.Open, "
            "which finds no plugin module data and dies with \"fatal error: runtime: no "
            "plugin module data\"",
            "build the plugin with `go build -buildmode=plugin`, or load a C library from "
            "Go with cgo",
        )]
    if go.buildmode != "plugin" and host_go is None:
        return []  # a Go c-shared library loaded by a C or Python host is fine
    return go_problems(go, host_go, host_info)


def _go_info(path: str | os.PathLike[str]) -> GoInfo | None:
    """The Go build information of ``path``, or None when Go did not build it (one read)."""
    try:
        return go_info(path)
    except ElfError:
        return None


def _go_kind(go: GoInfo) -> str:
    return {"plugin": "plugin", "c-shared": "c-shared library", "exe": "program",
            "pie": "program"}.get(go.buildmode, go.buildmode)


def _host(host: str | os.PathLike[str]) -> ElfInfo:
    try:
        return read_elf(host)
    except ElfError as exc:
        raise InputError(f"the host {show(host)!r} is not a program labkit can read: {exc.what}",
                         fix=f"{exc.fix}, or pass --host the program that will load the file",
                         path=Path(host)) from None


def _checked(info: ElfInfo) -> str:
    kind = "program" if info.type in ("executable", "pie executable") else info.type
    versions = sum(len(need.versions) for need in info.version_needs)
    undefined = sum(1 for s in info.undefined_symbols if s.binding != "WEAK")
    parts = [f"an ELF{info.elf_class} {info.machine} {kind}"]
    if info.interpreter:
        parts.append(f"interpreter {info.interpreter} found")
    parts.append(f"{_count(len(info.needed), 'needed library', 'needed libraries')} found")
    parts.append(f"{_count(versions, 'symbol version')} provided")
    parts.append(f"{_count(undefined, 'undefined symbol')} defined")
    return ", ".join(parts)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
