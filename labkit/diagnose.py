"""Why a shared object will not load, said in plain words, from the file itself.

:func:`diagnose_load` checks what glibc's loader would check, without loading anything: the
file exists and is ELF, its class and machine match this process, it is a library and not
an executable, every library it needs can be found on the search path, those libraries
provide the symbol versions it asks for, and its undefined symbols are defined by them (or
by the host). A loader message, when there is one, adds what only the loader knew. Each
finding is a :class:`Problem` with a fix. :class:`~labkit.errors.LoadError` carries this
diagnosis, and :mod:`labkit.explain` turns it into a verdict.
"""

from __future__ import annotations

import functools
import os
import re
import struct
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .constants import DEFAULT_LIBRARY_DIRS, MACHINE_NAMES
from .elf import ElfInfo, host_e_machine, peek, read_elf, read_soname
from .errors import ElfError, InputError
from .paths import show

_UNDEFINED = re.compile(r"undefined symbol: (\S+?)(?:,|$|\s)")
_VERSION = re.compile(r"version `([^']+)' not found \(required by ([^)]+)\)")


@dataclass(frozen=True)
class Problem:
    """One reason a file will not load: a short ``kind``, what is wrong, and the fix."""

    kind: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}\n  Fix: {self.fix}"

    def line(self) -> str:
        """The problem on one line: ``kind: message. Fix: fix``."""
        return f"{self.kind}: {self.message.rstrip('.')}. Fix: {self.fix}"


@dataclass(frozen=True)
class Context:
    """Who would load the file, for the symbol check: ``host`` is a program whose exported
    symbols count, ``provided`` a test for names already defined in the loading process,
    ``require`` the names the host will look up with dlsym."""

    host: ElfInfo | None = None
    provided: Callable[[str], bool] | None = None
    require: tuple[str, ...] = ()


def diagnose_load(
    path: str | os.PathLike[str],
    *,
    dlerror: str = "",
    env: Mapping[str, str] | None = None,
    context: Context | None = None,
    run: bool = False,
) -> list[Problem]:
    """Everything that stops ``path`` from loading into this process, most basic first.

    ``dlerror`` is the loader's message, if a dlopen already failed; ``env`` the environment
    whose LD_LIBRARY_PATH counts (this process's by default); ``context`` says which host
    loads it (see :class:`Context`). With ``run=True`` the question is whether the file runs
    as a program instead. An empty list means labkit found nothing wrong.
    """
    context = context or Context()
    env = os.environ if env is None else env
    p = Path(path)
    if not p.exists():
        if "/" not in str(path) and find_library(str(path), env=env) is None:
            return [Problem(
                "not-found",
                f"{str(path)!r} is not on the loader's search path "
                "(LD_LIBRARY_PATH, ld.so.cache, the system library folders)",
                "give a path (./libx.so or build/libx.so) or add its folder to LD_LIBRARY_PATH",
            )]
        if "/" in str(path):
            return [Problem("missing-file", f"{show(p)!r} does not exist",
                            "check the path, or build the file first")]
        p = find_library(str(path), env=env) or p
    try:
        header = peek(p)
    except InputError as exc:
        return [Problem("directory", str(exc), "point at a .so file inside it")]
    except ElfError as exc:
        return [Problem(exc.reason, exc.what, exc.fix)]

    problems = _header_problems(header.path, header.elf_class, header.e_machine, header.e_type)
    if problems:
        return problems  # nothing else about a foreign file matters here
    try:
        info = read_elf(p)
    except ElfError as exc:
        return [Problem(exc.reason, exc.what, exc.fix)]
    problems += _program_problems(info) if run else _type_problems(info)
    no_interpreter = any(problem.kind == "missing-interpreter" for problem in problems)
    found, missing = _dependencies(info, env)
    problems += _needed_problems(info, missing, skip_musl=no_interpreter)
    if not missing:
        absent = _absent_versions(info, found)
        problems += [_missing_version(info.path, v, lib, found[lib]) for v, lib in absent]
        problems += _symbol_problems(info, found, context, {v for v, _ in absent}, env)
    problems += _required_problems(info, context.require)
    problems += _dlerror_problems(p, dlerror, already=problems)
    return problems


def find_library(
    name: str, *, info: ElfInfo | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """Where glibc's loader would find the library ``name`` needed by ``info``'s file.

    The order is the loader's: DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH,
    DT_RUNPATH, libraries this process has loaded already, ld.so.cache, the default
    folders. Candidates built for another machine are skipped, as the loader skips them.
    """
    env = os.environ if env is None else env
    if "/" in name:
        p = Path(name)
        return p if p.is_file() else None
    origin = str(info.path.resolve().parent) if info is not None else ""
    dirs: list[str] = []
    if info is not None and info.rpath and not info.runpath:
        dirs += [_expand(d, origin) for d in info.rpath]
    dirs += [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    if info is not None:
        dirs += [_expand(d, origin) for d in info.runpath]
    for folder in dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and _fits_host(candidate):
            return candidate
    loaded = _loaded_sonames().get(name)
    if loaded is not None:
        return loaded
    cached = _ld_cache().get(name)
    if cached is not None and _fits_host(cached):
        return cached
    for folder in DEFAULT_LIBRARY_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file() and _fits_host(candidate):
            return candidate
    return None


def _header_problems(p: Path, elf_class: int, e_machine: str, e_type: str) -> list[Problem]:
    problems = []
    host_bits = struct.calcsize("P") * 8
    if elf_class != host_bits:
        problems.append(Problem(
            "wrong-class",
            f"{show(p)!r} is a {elf_class}-bit ELF file; this process is {host_bits}-bit",
            f"build it for {host_bits}-bit, or load it from a {elf_class}-bit program",
        ))
    host = host_e_machine()
    if e_machine != host:
        theirs = MACHINE_NAMES.get(e_machine, e_machine)
        ours = MACHINE_NAMES.get(host, host)
        problems.append(Problem(
            "wrong-machine",
            f"{show(p)!r} holds {theirs} code; this machine runs {ours}, so the loader "
            "skips it and says 'No such file or directory', although the file is there",
            f"rebuild it for {ours} (cc here, or zig cc -target {ours}-linux-gnu), "
            f"or run it on a machine that runs {theirs}",
        ))
    if e_type in ("relocatable", "core"):
        problems.append(Problem(
            "not-a-library",
            f"{show(p)!r} is a {e_type} file, not a shared object",
            "link it into a shared object: cc -shared -fPIC -o libx.so x.c",
        ))
    return problems


def _type_problems(info: ElfInfo) -> list[Problem]:
    if info.type in ("executable", "pie executable"):
        return [Problem(
            "not-a-library",
            f"{show(info.path)!r} is {'a' if info.type[0] not in 'aeiou' else 'an'} "
            f"{info.type}, not a shared object; glibc refuses to "
            "dlopen executables",
            "build the plugin with -shared -fPIC (or -buildmode=plugin / c-shared in Go)",
        )]
    return []


def _program_problems(info: ElfInfo) -> list[Problem]:
    """A program runs only if its interpreter (the dynamic loader it names) exists."""
    interpreter = info.interpreter
    if info.type not in ("executable", "pie executable") or not interpreter:
        return []
    if Path(interpreter).exists():
        return []
    if "ld-musl" in interpreter:
        return [Problem(
            "missing-interpreter",
            f"{show(info.path)!r} is a program built for musl libc (Alpine): it asks for the "
            f"loader {interpreter!r}, which this glibc system does not have, so the shell "
            "says 'No such file or directory' about a file that is there",
            "build it for glibc (cc here, or zig cc -target x86_64-linux-gnu), build it "
            "statically, or run it in an image with musl (Alpine)",
        )]
    return [Problem(
        "missing-interpreter",
        f"{show(info.path)!r} asks for the program loader {interpreter!r}, which does not "
        "exist here, so starting it fails with 'No such file or directory'",
        "build it on, or for, this system, or install the C library it was built against",
    )]


def _dependencies(
    info: ElfInfo, env: Mapping[str, str]
) -> tuple[dict[str, ElfInfo], list[str]]:
    """Every library ``info`` needs, directly or through another, found as the loader
    would (breadth first); and the names of its own direct needs that are not found."""
    found: dict[str, ElfInfo] = {}
    missing: list[str] = []
    queue = [(lib, info) for lib in info.needed]
    while queue:
        lib, needer = queue.pop(0)
        if lib in found:
            continue
        path = find_library(lib, info=needer, env=env)
        if path is None:
            if needer is info:
                missing.append(lib)
            continue
        try:
            dep = _read_cached(path)
        except (ElfError, InputError, OSError):
            continue
        found[lib] = dep
        queue += [(sub, dep) for sub in dep.needed]
    return found, missing


def _needed_problems(info: ElfInfo, missing: list[str], *, skip_musl: bool) -> list[Problem]:
    problems = []
    musl = (info.interpreter or "").startswith("/lib/ld-musl") or "libc.so" in info.needed
    for lib in missing:
        if musl and lib == "libc.so":
            if skip_musl:
                continue  # the missing musl interpreter already says it
            problems.append(Problem(
                "musl",
                f"{show(info.path)!r} was built against musl libc (Alpine): it needs "
                "'libc.so', musl's C library, which this glibc system does not have",
                "build it for glibc (cc here, or zig cc -target x86_64-linux-gnu), or run it "
                "where musl is installed",
            ))
            continue
        problems.append(Problem(
            "missing-library",
            f"{show(info.path)!r} needs {lib!r}, which the loader cannot find (searched "
            "RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache and the system library folders)",
            f"install the package that provides {lib}, or put its folder on "
            "LD_LIBRARY_PATH, or link with -Wl,-rpath,'$ORIGIN' and ship it beside the file",
        ))
    return problems


def _absent_versions(info: ElfInfo, found: Mapping[str, ElfInfo]) -> list[tuple[str, str]]:
    """The (version, library) pairs the file requires that the library found lacks."""
    return [
        (version, need.library)
        for need in info.version_needs if need.library in found
        for version in need.versions if version not in found[need.library].version_defs
    ]


def _missing_version(path: Path, version: str, library: str, lib: ElfInfo | None) -> Problem:
    newest = ""
    if lib is not None and lib.version_defs:
        newest = f"; the {library} found here ({show(lib.path)}) stops at {lib.version_defs[-1]!r}"
    glibc = version.startswith("GLIBC_")
    return Problem(
        "missing-version",
        f"{show(path)!r} needs symbol version {version!r} of {library!r}, which the "
        f"library on this machine does not provide{newest}: it was built against a newer "
        f"{'glibc' if glibc else 'version of the library'}",
        "build it on, or for, the oldest system it must run on (zig cc can target an older "
        "glibc: -target x86_64-linux-gnu.2.28)" if glibc else
        f"install the newer {library} it was built against, or rebuild it against the "
        "one installed here",
    )


def _symbol_problems(
    info: ElfInfo, found: Mapping[str, ElfInfo], context: Context,
    missing_versions: set[str],
    env: Mapping[str, str],
) -> list[Problem]:
    """Undefined symbols that no library in the file's scope, nor the host, defines."""
    wanted = [
        s.name for s in info.undefined_symbols
        if s.binding != "WEAK" and s.name and s.version not in missing_versions
    ]  # a symbol whose version is missing is already explained by that
    if not wanted:
        return []
    defined = set(info.exported)
    for lib in found.values():
        defined.update(lib.exported)
    host = context.host
    if host is not None:
        defined.update(host.exported)
        defined.update(_host_scope(host, env))
    unresolved = [
        name for name in wanted
        if name not in defined and not (context.provided and context.provided(name))
    ]
    if not unresolved:
        return []
    names = ", ".join(repr(n) for n in unresolved[:5])
    if len(unresolved) > 5:
        names += f" and {len(unresolved) - 5} more"
    one = len(unresolved) == 1
    if host is not None:
        where = f"it, the libraries it needs, nor the host {show(host.path)!r} defines"
    elif context.provided is not None:
        where = "it, the libraries it needs, nor anything loaded globally before it defines"
    else:
        where = ("it nor the libraries it needs define (a host program may still provide "
                 f"{'it' if one else 'them'}: check with --host HOST)")
    return [Problem(
        "undefined-symbol",
        f"{show(info.path)!r} uses the symbol{'' if one else 's'} {names}, which neither "
        f"{where}",
        "link the library that defines it (libs=[...] when building), or load that "
        "library first with RTLD_GLOBAL; a host exports its own functions only when linked "
        "with -rdynamic; check the name for typos",
    )]


def _host_scope(host: ElfInfo, env: Mapping[str, str]) -> set[str]:
    names: set[str] = set()
    found, _ = _dependencies(host, env)
    for lib in found.values():
        names.update(lib.exported)
    return names


def _required_problems(info: ElfInfo, require: Iterable[str]) -> list[Problem]:
    exported = set(info.exported)
    return [
        Problem(
            "missing-symbol",
            f"{show(info.path)!r} does not export {name!r}, the symbol its host looks up "
            "with dlsym",
            f"define {name} in the plugin, not static, with default visibility (and "
            "extern \"C\" in C++); `nm -D` lists what a file exports",
        )
        for name in require if name not in exported
    ]


def _dlerror_problems(p: Path, dlerror: str, already: list[Problem]) -> list[Problem]:
    if not dlerror:
        return []
    problems = []
    known = " ".join(problem.message for problem in already)
    for symbol in _UNDEFINED.findall(dlerror):
        if repr(symbol) in known:
            continue
        problems.append(Problem(
            "undefined-symbol",
            f"{show(p)!r} uses the symbol {symbol!r}, which neither it, nor the libraries "
            "it needs, nor anything loaded globally before it defines",
            "link the library that defines it (libs=[...] when building), or load that "
            "library first with RTLD_GLOBAL; check the name for typos",
        ))
    for version, needer in _VERSION.findall(dlerror):
        if repr(version) in known:
            continue
        problems.append(_missing_version(Path(needer), version, "a library it needs", None))
    if not problems and not already:
        problems.append(Problem(
            "loader", f"the loader refused {show(p)!r}: {dlerror.strip()}",
            "read the loader's message; `python -m labkit doctor` checks the set-up",
        ))
    return problems


def _expand(folder: str, origin: str) -> str:
    return folder.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)


def _fits_host(candidate: Path) -> bool:
    try:
        header = peek(candidate.resolve())
    except (ElfError, InputError, OSError):
        return False
    return header.e_machine == host_e_machine() and header.elf_class == struct.calcsize("P") * 8


def _loaded_sonames() -> dict[str, Path]:
    """Libraries mapped into this process, by SONAME: a bare name that matches one is
    satisfied without a search (glibc matches sonames, not file names)."""
    found: dict[str, Path] = {}
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return found
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            path = Path(parts[5])
            try:
                soname = _soname(str(path), path.stat().st_mtime_ns)
            except OSError:
                continue
            if soname:
                found.setdefault(soname, path)
    return found


def _read_cached(path: Path) -> ElfInfo:
    resolved = path.resolve()
    return _read_elf_cached(str(resolved), resolved.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read_elf_cached(path: str, mtime: int) -> ElfInfo:
    del mtime  # part of the cache key only
    return read_elf(path)


@functools.lru_cache(maxsize=512)
def _soname(path: str, mtime: int) -> str | None:
    del mtime  # part of the cache key only
    try:
        return read_soname(path)
    except (ElfError, InputError, OSError):
        return None


@functools.lru_cache(maxsize=1)
def _ld_cache() -> dict[str, Path]:
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.access(ldconfig, os.X_OK):
            break
    else:
        return {}
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    entries: dict[str, Path] = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
        if match:
            entries.setdefault(match[1], Path(match[3]))
    return entries
