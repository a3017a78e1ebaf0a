"""Why a shared object will not load, said in plain words, from the files themselves.

:func:`diagnose_load` follows glibc's loader through a dlopen without loading anything
(:mod:`labkit.diagnose.loader` has the rules): the file exists and is ELF, its class and machine
match this process, it is a shared object and not a program; every library it needs,
directly or through another, is found along the search path of the object that needs it;
those libraries provide the symbol versions each object asks for; each object's undefined
symbols are defined within the load's scope (or by the host); and every TLS block used
with the initial-exec model fits in what is left of the static TLS surplus
(:mod:`labkit.diagnose.statictls`). Problems come in the order the loader meets them, so the first
is the one dlerror names. A loader message, when there is one, adds what only the loader
knew. Each finding is a :class:`Problem` with a fix. :class:`~labkit.errors.LoadError`
carries this diagnosis, and :mod:`labkit.diagnose.verdict` turns it into a verdict.

The process that loads is the one ``context`` names: a new run of its host program, or
else this process, with what it has loaded already and the static TLS it has left. The
flags are RTLD_NOW's: every symbol must resolve at load time.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import ElfError, InputError
from ..inspect.dynamic import dynamic_of
from ..inspect.elf import MACHINE_NAMES, ElfInfo, host_e_machine, peek, read_elf
from ..paths import show
from .binding import missing_version, relocation_problems, version_problems
from .loader import (
    Missing,
    Obj,
    Plan,
    Process,
    Refused,
    expand,
    plan_dlopen,
    plan_start,
    search,
)
from .problem import Context as Context
from .problem import Problem as Problem
from .statictls import glibc_version

#: glibc refuses to dlopen a position-independent executable from 2.30 on
#: (elf/dl-load.c, BZ #24323).
GLIBC_REFUSES_PIE = (2, 30)


_UNDEFINED = re.compile(r"undefined symbol: (\S+?)(?:,|$|\s)")
_VERSION = re.compile(r"version `([^']+)' not found \(required by ([^)]+)\)")


def diagnose_load(
    path: str | os.PathLike[str] | ElfInfo,
    *,
    dlerror: str = "",
    env: Mapping[str, str] | None = None,
    context: Context | None = None,
    run: bool = False,
) -> list[Problem]:
    """Everything that stops ``path`` from loading with dlopen, in the order the loader
    meets it.

    ``dlerror`` is the loader's message, if a dlopen already failed; ``env`` the environment
    whose LD_LIBRARY_PATH counts (this process's by default); ``context`` says which host
    loads it (see :class:`Context`): without a host, the loading process is this one. With
    ``run=True`` the question is whether the file runs as a program instead. An empty list
    means labkit found nothing wrong. ``path`` may be what :func:`~labkit.read_elf` returned
    for the file, which is then not read again.
    """
    context = context or Context()
    env = os.environ if env is None else env
    if isinstance(path, ElfInfo):
        return _diagnose(path, path.path, env, context, run, dlerror)
    text = os.fspath(path)
    p = Path(path)
    if not p.exists():
        if "/" in text:
            return [Problem("missing-file", f"{show(p)!r} does not exist",
                            "check the path, or build the file first")]
        plan = plan_dlopen(text, _process(context, env), env)  # dlopen searches a bare name
        if plan.root is None:
            refused = [f for f in plan.failures if isinstance(f, Refused)]
            if refused:
                return [_refused_problem(refused[0], None)]
            return [Problem(
                "not-found",
                f"{text!r} is not on the loader's search path "
                "(LD_LIBRARY_PATH, ld.so.cache, the system library folders)",
                "give a path (./libx.so or build/libx.so) or add its folder to LD_LIBRARY_PATH",
            )]
        p = plan.root.path
    try:
        header = peek(p)
    except InputError as exc:
        return [Problem("directory", exc.what, exc.fix)]
    except ElfError as exc:
        return [Problem(exc.reason, exc.what, exc.fix)]
    problems = _header_problems(header.path, header.elf_class, header.e_machine, header.e_type)
    if problems:
        return problems  # nothing else about a foreign file matters here
    try:
        info = read_elf(p)
    except ElfError as exc:
        return [Problem(exc.reason, exc.what, exc.fix)]
    return _diagnose(info, p, env, context, run, dlerror)


def _diagnose(
    info: ElfInfo, p: Path, env: Mapping[str, str], context: Context, run: bool, dlerror: str,
) -> list[Problem]:
    """The problems of a file read as ``info``, named ``p`` as the caller gave it."""
    problems = _header_problems(p, info.elf_class, info.e_machine, info.type)
    if problems:
        return problems
    if run:
        problems = _run_problems(info, env)
    else:
        problems = type_problems(info)
        if not problems:
            target = str(p) if "/" in str(p) else f"./{p}"
            plan = plan_dlopen(target, _process(context, env), env)
            problems = _plan_problems(info, plan, context)
    problems += _required_problems(info, context.require)
    problems += _dlerror_problems(p, dlerror, already=problems)
    return problems


def find_library(
    name: str, *, info: ElfInfo | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """Where glibc's loader would find the library ``name`` needed by ``info``'s file, in
    this process: an object loaded already under that name or soname, else the first file
    along the search order (see :mod:`labkit.diagnose.loader`). Candidates built for another machine
    are skipped, as the loader skips them."""
    env = os.environ if env is None else env
    process = Process.current()
    if "/" in name:
        p = Path(name)
        return p if p.is_file() else None
    loaded = process.find(name)
    if loaded is not None:
        return loaded.path
    needer = None
    if info is not None:
        needer = Obj(info.path, dynamic_of(info.path), {str(info.path)}, found="the file")
    found, _, _ = search(name, needer, process, env, [])
    return found[0] if found is not None else None


def type_problems(info: ElfInfo) -> list[Problem]:
    """What dlopen refuses in the file itself: a program (ET_EXEC, or a PIE since glibc
    2.30) and a library marked DF_1_NOOPEN."""
    if info.type == "executable":
        return [_refused_problem(Refused(info.path, "executable",
                                         "cannot dynamically load executable", None, ""), None)]
    if info.pie and glibc_version() >= GLIBC_REFUSES_PIE:
        return [_refused_problem(Refused(
            info.path, "pie-executable",
            "cannot dynamically load position-independent executable", None, ""), None)]
    if info.no_dlopen:
        return [_refused_problem(Refused(info.path, "no-dlopen",
                                         "shared object cannot be dlopen()ed", None, ""), None)]
    return []


def _process(context: Context, env: Mapping[str, str]) -> Process:
    if context.host is not None:
        return Process.start(context.host.path, env)
    return Process.current()


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
            "rejects it (in a search, skips it) and says 'No such file or directory', "
            "although the file is there",
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


def _run_problems(info: ElfInfo, env: Mapping[str, str]) -> list[Problem]:
    """A program runs if its interpreter exists and its start maps, versions and binds."""
    problems = _program_problems(info)
    plan = plan_start(info.path, env)
    no_interpreter = any(problem.kind == "missing-interpreter" for problem in problems)
    for failure in plan.failures:
        if no_interpreter and failure.name == "libc.so":
            continue  # the missing musl interpreter already says it
        problems.append(_failure_problem(info, failure))
    if plan.ok:
        problems += version_problems(plan)
        problems += relocation_problems(plan, Context(), plan.order, tls=False)
    return problems


def _program_problems(info: ElfInfo) -> list[Problem]:
    """A program runs only if its interpreter (the dynamic loader it names) exists."""
    interpreter = info.interpreter
    if not interpreter or Path(interpreter).exists():
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


def _plan_problems(info: ElfInfo, plan: Plan, context: Context) -> list[Problem]:
    problems = [_failure_problem(info, failure) for failure in plan.failures]
    if plan.ok:
        problems += version_problems(plan)
        scope: list[Obj] = []
        if context.host is not None:
            scope = [obj for obj in plan.process.objects if obj.startup]
        problems += relocation_problems(plan, context, scope + plan.order, tls=True)
    return problems


def _failure_problem(info: ElfInfo, failure: Missing | Refused) -> Problem:
    musl = (info.interpreter or "").startswith("/lib/ld-musl") or "libc.so" in info.needed
    if musl and failure.name == "libc.so":
        found = ""
        if isinstance(failure, Refused):  # glibc's libc.so is a linker script for cc
            found = (f" (the loader finds {show(failure.path)}, a linker script for the "
                     f"compiler, and says {failure.loader_says!r})")
        return Problem(
            "musl",
            f"{show(info.path)!r} was built against musl libc (Alpine): it needs "
            f"'libc.so', musl's C library, which this glibc system does not have{found}",
            "build it for glibc (cc here, or zig cc -target x86_64-linux-gnu), or run it "
            "where musl is installed",
        )
    if isinstance(failure, Refused):
        return _refused_problem(failure, info)
    chain = _chain(failure.needer)
    through = f" through {' -> '.join(repr(c) for c in chain)}" if chain else ""
    named = [f"{how} ({show(folder) if folder else 'the current folder'})"
             for folder, how in failure.searched if how not in ("ld.so.cache", "a system folder")]
    where = ", ".join([*named, "ld.so.cache and the system library folders"]) if named else \
        "RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache and the system library folders"
    beside = f"link {failure.needer.label} with -Wl,-rpath,'$ORIGIN' and ship {failure.name} " \
        "beside it" if chain else "link with -Wl,-rpath,'$ORIGIN' and ship it beside the file"
    return Problem(
        "missing-library",
        f"{show(info.path)!r} needs {failure.name!r}{through}, which the loader cannot find "
        f"(searched {where}){_runpath_hint(failure)}",
        f"install the package that provides {failure.name}, or put its folder on "
        f"LD_LIBRARY_PATH, or {beside}",
    )


def _runpath_hint(failure: Missing) -> str:
    """When the missing library sits in a folder of an outer object's DT_RUNPATH: a RUNPATH
    serves only its own object's dependencies, unlike a DT_RPATH."""
    outer = failure.needer.loader
    while outer is not None:
        for folder in outer.dyn.runpath:
            expanded = expand(folder, outer)
            if expanded and (Path(expanded) / failure.name).is_file():
                return (f"; {show(Path(expanded) / failure.name)} is in the DT_RUNPATH of "
                        f"{outer.label}, but a RUNPATH serves only its own object's "
                        "dependencies (a DT_RPATH, -Wl,--disable-new-dtags, serves all below it)")
        outer = outer.loader
    return ""


def _chain(needer: Obj) -> list[str]:
    """The libraries between the file and a dependency's needer, outermost first."""
    names: list[str] = []
    obj: Obj | None = needer
    while obj is not None and obj.loader is not None:
        names.append(next((n for n in sorted(obj.names) if "/" not in n), obj.label))
        obj = obj.loader
    return names[::-1]


def _refused_problem(refused: Refused, info: ElfInfo | None) -> Problem:
    """A file the loader refuses, as the file asked for or as one of its dependencies."""
    what = {
        "executable": "an executable (ET_EXEC), not a shared object: a program linked to "
                      "run at a fixed address, which dlopen refuses",
        "pie-executable": "a pie executable, not a shared object: a program built as a "
                          "position-independent executable (DF_1_PIE in DT_FLAGS_1), which "
                          f"glibc {'.'.join(map(str, GLIBC_REFUSES_PIE))} and later refuse "
                          "to dlopen",
        "no-dlopen": "marked never to be opened with dlopen (DF_1_NOOPEN: linked with "
                     "-z nodlopen)",
    }.get(refused.kind, "not a shared object the loader can read, and it stops there "
          "instead of searching on")
    fix = {
        "executable": "build the plugin with -shared -fPIC (or -buildmode=plugin / c-shared "
                      "in Go); code a program and its plugins share belongs in a shared "
                      "library both link",
        "pie-executable": "build the plugin with -shared -fPIC (or -buildmode=plugin / "
                          "c-shared in Go); code a program and its plugins share belongs in "
                          "a shared library both link",
        "no-dlopen": "relink it without -z nodlopen, or link the program against it instead",
    }.get(refused.kind, f"remove or rename {show(refused.path)}, or put the folder of the "
          "real library earlier on the search path")
    says = f"(dlopen says {refused.loader_says!r})"
    if refused.needer is None or info is None:
        return Problem(refused.kind, f"{show(refused.path)!r} is {what} {says}", fix)
    chain = _chain(refused.needer)
    through = f" through {' -> '.join(repr(c) for c in chain)}" if chain else ""
    return Problem(
        refused.kind,
        f"{show(info.path)!r} needs {refused.name!r}{through}, and the file the loader finds "
        f"for it, {show(refused.path)!r}, is {what} {says}",
        fix,
    )


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
        problems.append(missing_version(Path(needer), version, "a library it needs", None))
    if not problems and not already:
        problems.append(Problem(
            "loader", f"the loader refused {show(p)!r}: {dlerror.strip()}",
            "read the loader's message; `python -m labkit doctor` checks the set-up",
        ))
    return problems
