"""The loader's own account of a dlopen: ``LD_DEBUG`` read into tables.

:func:`trace_load` runs the lab's C host (``plugins/c/hosts/trace_host.c``) in a child with
``LD_DEBUG=libs,scopes,bindings,versions``: the host dlopens the plugin with the flags asked for
and may call one of its functions. glibc's loader writes what it does on stderr (``elf/dl-load.c``
for the searches, ``elf/dl-lookup.c`` for the bindings, ``elf/dl-open.c`` for the scopes,
``elf/dl-version.c`` for the version checks), and :class:`LoaderTrace` holds it as records:
which library was searched for where, which object each symbol was bound to and with which
version, which scopes each object looks symbols up in, and the order of the constructors.
The host marks the moment it calls dlopen, so the host's own start stays apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..build.c import build_executable
from ..errors import InputError
from ..isolate import Outcome, run_program
from ..paths import PLUGINS_C, existing_file, show

if TYPE_CHECKING:
    import pandas

TRACE_HOST = PLUGINS_C / "hosts" / "trace_host.c"
#: The flags :func:`trace_load` passes on to dlopen, by the names the host reads.
FLAGS = ("now", "lazy", "global", "local", "deepbind", "nodelete")
#: What LD_DEBUG is asked to say.
CATEGORIES = ("libs", "scopes", "bindings", "versions")
_MARK = "trace_host: dlopen"

_LINE = re.compile(r"^\s*(\d+):\t?(.*)$")
_FIND = re.compile(r"^find library=(\S+) \[\d+\]; searching$")
_SEARCH = re.compile(r"^ search path=(\S*)\s+\((.+)\)$")
_CACHE = re.compile(r"^ search cache=(\S+)$")
_TRYING = re.compile(r"^  trying file=(\S+)$")
_OBJECT = re.compile(r"^object=(.+?) \[\d+\]$")
_SCOPE = re.compile(r"^ scope (\d+): ?(.*)$")
_BINDING = re.compile(r"^binding file (.+?) \[\d+\] to (.+?) \[\d+\]: (\w+) symbol `([^']+)'"
                      r"(?: \[([^\]]+)\])?$")
_VERSION = re.compile(r"^checking for version `([^']+)' in file (.+?) \[\d+\] required by "
                      r"file (.+?) \[\d+\]$")
_INIT = re.compile(r"^calling init: (.+)$")
_GLOBAL = re.compile(r"^add (.+?) \[\d+\] to global scope$")


def _name_only(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _path(text: str) -> str:
    """A path as the loader wrote it, shown the lab's way (``./lib/x.so`` made tidy)."""
    if "/" not in text:
        return text  # a name such as linux-vdso.so.1
    return show(os.path.normpath(text))


@dataclass(frozen=True)
class Search:
    """One library the loader looked for: ``needed`` as a DT_NEEDED entry or dlopen's argument
    names it, each list of folders it searched and why (``RUNPATH from file plugin.so``,
    ``LD_LIBRARY_PATH``, ``ld.so.cache``, ``system search path``), and every file it tried."""

    needed: str
    searched: tuple[tuple[str, str], ...]
    tried: tuple[str, ...]
    found: str | None


@dataclass(frozen=True)
class Binding:
    """One symbol bound: the object that refers to it, the object that defines it, and the
    version the reference asked for, if any."""

    file: str
    to: str
    symbol: str
    version: str | None
    kind: str  # "normal", or "protected" for a protected symbol's own reference


@dataclass(frozen=True)
class VersionCheck:
    """A version ``required_by`` needs, checked in the object that must define it."""

    version: str
    file: str
    required_by: str


@dataclass(frozen=True)
class LoaderTrace:
    """What glibc's loader said while the host loaded ``plugin`` (after the host's dlopen
    mark), and how the child ended."""

    plugin: Path
    flags: tuple[str, ...]
    searches: tuple[Search, ...]
    bindings: tuple[Binding, ...]
    versions: tuple[VersionCheck, ...]
    scopes: Mapping[str, tuple[tuple[str, ...], ...]]  # object -> its lookup scopes, in order
    inits: tuple[str, ...]  # constructors run, in order
    made_global: tuple[str, ...]  # objects RTLD_GLOBAL added to the global scope, in order
    outcome: Outcome = field(repr=False)
    lines: tuple[str, ...] = field(repr=False)  # LD_DEBUG's lines after the mark

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def loaded(self) -> tuple[str, ...]:
        """The libraries this dlopen searched for and found, in order (the plugin itself,
        named by a path, is opened without a search)."""
        return tuple(search.found for search in self.searches if search.found is not None)

    def bound(self, symbol: str, file: str | os.PathLike[str] | None = None) -> Binding | None:
        """The first binding of ``symbol`` (referred to by ``file``, if given, in any form
        of its path: relative, absolute, or as the trace shows it)."""
        wanted = None if file is None else _path(os.fspath(file))
        return next((b for b in self.bindings if b.symbol == symbol
                     and (wanted is None or b.file == wanted)), None)

    def searches_frame(self) -> pandas.DataFrame:
        """One row per library searched: where, why there, how many files tried, and which
        was taken."""
        import pandas as pd

        rows = [(s.needed, "; ".join(f"{how}: {folders}" for folders, how in s.searched),
                 len(s.tried), s.found or "(not found)") for s in self.searches]
        return pd.DataFrame(rows, columns=["library", "searched", "files tried", "found"])

    def bindings_frame(self, files: Iterable[str | os.PathLike[str]] | None = None, *,
                       names_only: bool = False) -> pandas.DataFrame:
        """One row per symbol bound, by the objects that refer to them (``files``: only
        those); ``names_only`` shows file names without their folders."""
        import pandas as pd

        name = _name_only if names_only else str
        keep = {_path(os.fspath(f)) for f in files} if files is not None else None
        rows = [(name(b.file), b.symbol, b.version or "", name(b.to)) for b in self.bindings
                if keep is None or b.file in keep]
        return pd.DataFrame(rows, columns=["in", "symbol", "version", "bound to"])

    def scopes_frame(self, *, names_only: bool = False) -> pandas.DataFrame:
        """Each object's lookup scopes, in the order the loader searches them;
        ``names_only`` shows file names without their folders (which differ by machine)."""
        import pandas as pd

        name = _name_only if names_only else str
        rows = [(name(obj), number, " ".join(map(name, scope)))
                for obj, scopes in self.scopes.items() for number, scope in enumerate(scopes)]
        return pd.DataFrame(rows, columns=["object", "scope", "searched in order"])


def trace_load(
    plugin: str | os.PathLike[str],
    *,
    flags: Sequence[str] = ("now", "local"),
    call: str | None = None,
    env: Mapping[str, str] | None = None,
    out_dir: str | os.PathLike[str] = "build",
) -> LoaderTrace:
    """dlopen ``plugin`` from the lab's C host with ``flags`` (names of :data:`FLAGS`), call
    ``int call(void)`` if given, and read what ``LD_DEBUG`` says the loader did.

    ``env`` adds environment variables to the host's (``LD_PRELOAD``, ``LD_LIBRARY_PATH``). A
    plugin that does not load gives a trace all the same: its searches say where the loader
    looked, and :attr:`LoaderTrace.outcome` holds dlerror's message.
    """
    p = existing_file(plugin)
    unknown = [flag for flag in flags if flag not in FLAGS]
    if unknown or not flags:
        raise InputError(f"dlopen flags {list(flags)!r} are not ones the trace host knows",
                         fix=f"choose from {', '.join(FLAGS)}, e.g. flags=('now', 'global')")
    host = build_executable(TRACE_HOST, "trace_host", libs=["dl"], out_dir=out_dir)
    argv: list[str | os.PathLike[str]] = [host.path, ",".join(flags), _as_argument(p),
                                          *([call] if call else [])]
    outcome = run_program(argv, env={**(env or {}), "LD_DEBUG": ",".join(CATEGORIES)})
    return parse_trace(outcome, p, tuple(flags))


def _as_argument(p: Path) -> str:
    """The plugin as dlopen's argument: with a slash, so dlopen takes it as a path."""
    text = str(p)
    return text if "/" in text else f"./{text}"


def parse_trace(outcome: Outcome, plugin: Path, flags: tuple[str, ...]) -> LoaderTrace:
    """A :class:`LoaderTrace` from the host's stderr, from its dlopen mark on."""
    lines: list[str] = []
    marked = False
    for raw in outcome.stderr.splitlines():
        if raw.strip() == _MARK:
            marked = True
            continue
        match = _LINE.match(raw)
        if marked and match and match[2].strip():
            lines.append(match[2])
    found: list[tuple[str, list[tuple[str, str]], list[str]]] = []  # needed, searched, tried
    bindings: list[Binding] = []
    versions: list[VersionCheck] = []
    scopes: dict[str, tuple[tuple[str, ...], ...]] = {}
    inits: list[str] = []
    made_global: list[str] = []
    searching = False
    current: str | None = None
    for line in lines:
        if match := _FIND.match(line):
            found.append((match[1], [], []))
            searching = True
            continue
        if searching and (match := _SEARCH.match(line)):
            found[-1][1].append((" ".join(map(_path, match[1].split(":"))), match[2]))
            continue
        if searching and (match := _CACHE.match(line)):
            found[-1][1].append((match[1], "ld.so.cache"))
            continue
        if searching and (match := _TRYING.match(line)):
            found[-1][2].append(_path(match[1]))
            continue
        searching = False
        if match := _OBJECT.match(line):
            current = _path(match[1])
            scopes[current] = ()
        elif current is not None and (match := _SCOPE.match(line)):
            scope = tuple(_path(name) for name in match[2].split())
            scopes[current] = (*scopes[current], scope)
        elif match := _BINDING.match(line):
            bindings.append(Binding(_path(match[1]), _path(match[2]), match[4], match[5],
                                    match[3]))
        elif match := _VERSION.match(line):
            versions.append(VersionCheck(match[1], _path(match[2]), _path(match[3])))
        elif match := _INIT.match(line):
            inits.append(_path(match[1]))
        elif match := _GLOBAL.match(line):
            made_global.append(_path(match[1]))
    # the file taken is the last one tried, if the loader named it as an object afterwards
    objects = {*scopes, *inits, *(b.file for b in bindings), *(b.to for b in bindings)}
    searches = tuple(Search(needed, tuple(searched), tuple(tried),
                            tried[-1] if tried and tried[-1] in objects else None)
                     for needed, searched, tried in found)
    return LoaderTrace(plugin, flags, searches, tuple(bindings), tuple(versions),
                       scopes, tuple(inits), tuple(made_global), outcome, tuple(lines))
