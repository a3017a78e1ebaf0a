"""glibc's loader, followed step by step on the files, without loading anything: which
objects a dlopen maps, where it finds each one, what it refuses, and in which order it
relocates them.

The rules are those of glibc's elf/dl-load.c (``_dl_map_object``, ``open_verify``,
``_dl_map_object_from_fd``), elf/dl-deps.c (breadth-first over every DT_NEEDED, not only
the direct ones) and elf/dl-open.c (relocation order), in releases 2.36 to 2.41:

- an object the process has loaded already is reused when the name asked for is its name,
  a name it was loaded under, or its soname; so is a file found again under another name;
- a name with a slash is a path (``$ORIGIN`` expanded, relative to the current folder) and
  is not searched;
- otherwise, for a dependency of object X: X's DT_RPATH, then the DT_RPATH of the object
  that loaded X, and so on up, then the program's, but only when X has no DT_RUNPATH (an
  object with a DT_RUNPATH has its DT_RPATH ignored); LD_LIBRARY_PATH (``:`` or ``;``
  between folders); X's DT_RUNPATH, which serves only X's own dependencies; ld.so.cache;
  the system folders (both skipped when X has DF_1_NODEFLIB). An empty folder in a list is
  the current folder; ``$ORIGIN`` is the folder of the object whose list it is (the
  program's for LD_LIBRARY_PATH) and ``$PLATFORM`` the machine;
- a candidate built for another class or machine is skipped; one that is not ELF, or not a
  shared object or executable, stops the load;
- dlopen refuses an executable ("cannot dynamically load executable"), a PIE (DF_1_PIE,
  since glibc 2.30) and an object marked DF_1_NOOPEN, among its dependencies too.

Not followed: the glibc-hwcaps and legacy hwcaps subfolders of each folder, ``$LIB``,
LD_PRELOAD, LD_AUDIT, secure (setuid) mode and dlmopen namespaces.

A :class:`Process` is what is loaded already: this process (:meth:`Process.current`, from
``dl_iterate_phdr``) or a program as it starts (:meth:`Process.start`). :func:`plan_dlopen`
returns a :class:`Plan`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ElfError, InputError
from ..inspect.dynamic import Dynamic, Relocation, dynamic_of, elf_of, relocations_of
from ..inspect.elf import DF_1_NODEFLIB, DF_1_NOOPEN, DF_1_PIE, host_e_machine, peek
from .statictls import StaticTls, glibc_version, read_auxv

#: Where glibc's loader looks last, after LD_LIBRARY_PATH, RUNPATH and ld.so.cache, when the
#: loader cannot say (``ld.so --help`` lists the real ones, "system search path").
DEFAULT_LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


@dataclass(eq=False)
class Obj:
    """One object in a process: ``path`` as the loader names it (the path it opened, not
    resolved), ``names`` the names it answers to (l_name and l_libname: the names it was
    asked for, DSTs expanded; its soname only once a request matched it), ``loader`` the
    object whose DT_NEEDED
    brought it in (None for the program and for what dlopen opened), ``found`` how it was
    found, in words, ``deps`` its dependencies once mapped."""

    path: Path
    dyn: Dynamic
    names: set[str]
    loader: Obj | None = None
    found: str = ""
    startup: bool = False  # mapped when the process started: its TLS is in static TLS
    program: bool = False
    deps: list[Obj] = field(default_factory=list)

    @property
    def origin(self) -> str:
        """What ``$ORIGIN`` means for this object: the folder of the path it was opened by
        (made absolute, not resolved), or of the program's real path."""
        if self.program:
            return os.path.dirname(os.path.realpath(self.path))
        text = str(self.path)
        absolute = text if text.startswith("/") else os.path.join(os.getcwd(), text)
        return os.path.dirname(absolute) or "/"

    @property
    def label(self) -> str:
        return self.path.name if self.path.name else str(self.path)


@dataclass(frozen=True)
class Missing:
    """A DT_NEEDED name no folder holds: who needs it and where the loader looked, as
    (folder, how it came on the list) pairs ("" is the current folder)."""

    name: str
    needer: Obj
    searched: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Refused:
    """A file the loader found and refused: ``kind`` says why (``executable``,
    ``pie-executable``, ``no-dlopen``, ``not-a-library``, and ElfError's reasons
    ``not-elf``, ``empty``, ``truncated``); ``loader_says`` is the loader's own words."""

    path: Path
    kind: str
    loader_says: str
    needer: Obj | None
    name: str


@dataclass
class Plan:
    """What a dlopen of one file (or a program's start) does: ``order`` is its search
    list (the file, then every dependency breadth first, reused ones included), ``new``
    what it maps anew, ``failures`` what it cannot find or refuses, in the order it meets
    them (the loader stops at the first)."""

    root: Obj | None
    order: list[Obj]
    new: list[Obj]
    failures: list[Missing | Refused]
    process: Process

    @property
    def ok(self) -> bool:
        """Every object was found and accepted (symbols, versions and TLS aside)."""
        return self.root is not None and not self.failures

    def relocation_order(self) -> list[Obj]:
        """The new objects in the order the loader relocates them: dependencies first, as
        elf/dl-open.c walks the list ``_dl_sort_maps`` sorted (a depth-first topological
        sort that starts from the end of the search list), backwards."""
        visited: set[int] = set()
        rpo: list[Obj] = []

        def visit(obj: Obj) -> None:
            visited.add(id(obj))
            edges = [] if obj is self.root else obj.deps  # not yet known while sorting
            for dep in edges:
                if id(dep) not in visited and not dep.program:
                    visit(dep)
            rpo.insert(0, obj)

        for obj in reversed(self.order):
            if id(obj) not in visited:
                visit(obj)
        new = {id(obj) for obj in self.new}
        return [obj for obj in reversed(rpo) if id(obj) in new]


class Process:
    """The objects a process has loaded, in load order, and what its loader was started
    with: its environment (LD_LIBRARY_PATH, GLIBC_TUNABLES) and its static TLS."""

    def __init__(self, objects: list[Obj], env: Mapping[str, str], machine: str,
                 what: str = "the process") -> None:
        self.objects = objects
        self.env = dict(env)
        self.machine = machine
        self.what = what  # the process in words, for messages
        self.program = next((o for o in objects if o.program), None)
        self._tls: StaticTls | None = None
        self._placed: set[Path] = set()

    @classmethod
    def current(cls) -> Process:
        """This process: what ``dl_iterate_phdr`` lists, the program first."""
        objects: list[Obj] = []
        for name in _mapped_names():
            path = Path(name) if name else _this_program()
            try:
                dyn = dynamic_of(path)
            except (ElfError, InputError, OSError):
                continue  # the vDSO has no file
            objects.append(Obj(path, dyn, {name or ""}, program=not name,
                               found="this process"))
        _link(objects)
        program = next((o.path.name for o in objects if o.program), "")
        return cls(objects, os.environ, host_e_machine(), f"this process ({program})")

    @classmethod
    def start(cls, program: str | os.PathLike[str], env: Mapping[str, str]) -> Process:
        """A fresh run of ``program`` with environment ``env``: the program, its
        interpreter and its dependencies as the loader finds them at start (see
        :func:`plan_start`)."""
        return plan_start(program, env).process

    def find(self, name: str, extra: Sequence[Obj] = ()) -> Obj | None:
        """The loaded object ``name`` means, as ``_dl_map_object`` looks first: one that
        answers to the name, or whose soname it is (which it then answers to)."""
        for obj in [*self.objects, *extra]:
            if name in obj.names:
                return obj
            if obj.dyn.soname == name:
                obj.names.add(name)
                return obj
        return None

    def answering(self, name: str, extra: Sequence[Obj] = ()) -> Obj | None:
        """The loaded object that answers to ``name`` as it is (``_dl_name_match_p``: its
        path or a name it was asked for, no soname), as elf/dl-version.c looks for the
        library a version requirement names."""
        return next((obj for obj in [*self.objects, *extra] if name in obj.names), None)

    def find_file(self, path: Path, extra: Sequence[Obj] = ()) -> Obj | None:
        """The loaded object that is the file ``path`` (same device and inode)."""
        try:
            wanted = os.stat(path)
        except OSError:
            return None
        for obj in [*self.objects, *extra]:
            try:
                st = os.stat(obj.path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (wanted.st_dev, wanted.st_ino):
                return obj
        return None

    @property
    def tls(self) -> StaticTls:
        """The static TLS this process has now: its startup layout, then what it took for
        the objects loaded since, replayed in load order."""
        if self._tls is None:
            startup = [o.dyn.tls for o in self.objects if o.startup and o.dyn.tls]
            self._tls = StaticTls.at_startup(
                startup, machine=self.machine, env=self.env, glibc=glibc_version(),
                auxv=read_auxv(),
            )
            later = [o for o in self.objects if not o.startup]
            self._placed = replay_tls(later, self._tls, [o for o in self.objects if o.startup])
        return self._tls

    def placed_tls(self) -> set[Path]:
        """The objects whose TLS block is in static TLS already (by path)."""
        _ = self.tls
        return set(self._placed)


def plan_start(program: str | os.PathLike[str], env: Mapping[str, str]) -> Plan:
    """What starting ``program`` with environment ``env`` maps: its interpreter, then its
    dependencies breadth first, found by the same rules (the program is the main object
    whose DT_RPATH counts for all). The plan's process is the process once started.

    Raises :class:`~labkit.errors.ElfError` or :class:`~labkit.errors.InputError` when the
    program cannot be read."""
    path = Path(program)
    dyn = dynamic_of(path)
    root = Obj(path, dyn, {""}, program=True, startup=True, found="the program")
    objects = [root]
    if dyn.interpreter:
        try:
            rtld = dynamic_of(Path(dyn.interpreter))
            names = {dyn.interpreter} | ({rtld.soname} if rtld.soname else set())
            objects.append(Obj(Path(dyn.interpreter), rtld, names, startup=True,
                               found="the program's interpreter"))
        except (ElfError, InputError, OSError):
            pass
    process = Process(objects, env, host_e_machine(), f"a new process of {path.name}")
    plan = _walk(process, root, [root], env, dlopen=False)
    for obj in plan.new:
        obj.startup = True
    process.objects = [root, *plan.new[1:], *objects[1:]]
    return plan


def plan_dlopen(
    file: str | os.PathLike[str], process: Process, env: Mapping[str, str] | None = None,
) -> Plan:
    """What ``dlopen(file)`` would map into ``process``, with ``env``'s LD_LIBRARY_PATH
    (the process's own by default)."""
    env = process.env if env is None else env
    name = os.fspath(file)
    reused = process.find(name)
    if reused is not None:
        return Plan(reused, [reused, *_closure(reused)], [], [], process)
    if "/" not in name:
        found, searched, refused = search(name, None, process, env, [])
        if refused is not None:
            return Plan(None, [], [], [refused], process)
        if found is None:
            program = process.program or Obj(Path(""), _EMPTY, set())
            return Plan(None, [], [], [Missing(name, program, searched)], process)
        path, how = found
    else:
        path, how = Path(name), "the path given"
        verdict = verify(path)
        if isinstance(verdict, Refused):
            return Plan(None, [], [], [verdict], process)
        if verdict is None:
            program = process.program or Obj(Path(""), _EMPTY, set())
            return Plan(None, [], [], [Missing(name, program, ())], process)
    same = process.find_file(path)
    if same is not None:
        return Plan(same, [same, *_closure(same)], [], [], process)
    root, refused = _map(path, name, how, None, dlopen=True)
    if refused is not None or root is None:
        return Plan(None, [], [], [refused] if refused else [], process)
    return _walk(process, root, [root], env, dlopen=True)


def _walk(process: Process, root: Obj, new: list[Obj], env: Mapping[str, str], *,
          dlopen: bool) -> Plan:
    """elf/dl-deps.c: every object of the list, in order, maps its DT_NEEDED names."""
    order = [root]
    failures: list[Missing | Refused] = []
    queue = [root]
    while queue:
        obj = queue.pop(0)
        for name in obj.dyn.needed:
            name = expand(name, obj) or name
            dep = process.find(name, new)
            if dep is None:
                if "/" in name:
                    verdict = verify(Path(name))
                    found = (Path(name), "the path in DT_NEEDED") if isinstance(verdict, Path) \
                        else None
                    searched: tuple[tuple[str, str], ...] = ()
                    bad = verdict if isinstance(verdict, Refused) else None
                else:
                    found, searched, bad = search(name, obj, process, env, new)
                if bad is not None:
                    failures.append(Refused(bad.path, bad.kind, bad.loader_says, obj, name))
                    continue
                if found is None:
                    failures.append(Missing(name, obj, searched))
                    continue
                path, how = found
                dep = process.find_file(path, new)
                if dep is None:
                    dep, bad = _map(path, name, how, obj, dlopen=dlopen)
                    if bad is not None or dep is None:
                        if bad is not None:
                            failures.append(bad)
                        continue
                    new.append(dep)
                else:
                    dep.names.add(name)
            obj.deps.append(dep)
            if all(dep is not seen for seen in order):
                order.append(dep)
                queue.append(dep)
    return Plan(root, order, new, failures, process)


def search(
    name: str, loader: Obj | None, process: Process, env: Mapping[str, str], new: list[Obj],
) -> tuple[tuple[Path, str] | None, tuple[tuple[str, str], ...], Refused | None]:
    """Where the loader finds the bare name ``name`` needed by ``loader`` (None: asked by
    dlopen). Returns ((path, how) or None, the (folder, how) pairs searched in order, the
    candidate that stopped the search, if one did)."""
    searched: list[tuple[str, str]] = []
    for folder, how in search_folders(loader, process, env):
        searched.append((folder, how))
        if how == "ld.so.cache":
            cached = _from_cache(name)
            if cached is None:
                continue
            candidate = cached
        else:
            candidate = Path(os.path.join(folder, name)) if folder else Path(name)
        verdict = verify(candidate)
        if isinstance(verdict, Refused):
            return None, tuple(searched), Refused(candidate, verdict.kind, verdict.loader_says,
                                                 loader, name)
        if verdict is not None:
            return (candidate, how), tuple(searched), None
    return None, tuple(searched), None


def search_folders(
    loader: Obj | None, process: Process, env: Mapping[str, str],
) -> Iterator[tuple[str, str]]:
    """The folders the loader tries for a name ``loader`` needs, in order, each with how
    it came to be on the list. ld.so.cache comes as the cached path itself."""
    program = process.program
    if loader is None or not loader.dyn.runpath:
        chain = loader
        did_program = False
        while chain is not None:
            if chain.dyn.rpath and not chain.dyn.runpath:
                for folder in chain.dyn.rpath:
                    expanded = expand(folder, chain)
                    if expanded is not None:
                        yield expanded, f"RPATH of {chain.label}"
                did_program |= chain is program
            chain = chain.loader
        if program is not None and not did_program and program.dyn.rpath \
                and not program.dyn.runpath:
            for folder in program.dyn.rpath:
                expanded = expand(folder, program)
                if expanded is not None:
                    yield expanded, "RPATH of the program"
    for folder in re.split(r"[:;]", env.get("LD_LIBRARY_PATH", "")) if \
            env.get("LD_LIBRARY_PATH") else ():
        expanded = expand(folder, program) if program is not None else folder
        if expanded is not None:
            yield expanded, "LD_LIBRARY_PATH"
    if loader is not None:
        for folder in loader.dyn.runpath:
            expanded = expand(folder, loader)
            if expanded is not None:
                yield expanded, f"RUNPATH of {loader.label}"
    nodeflib = (loader or program)
    if nodeflib is not None and nodeflib.dyn.flags_1 & DF_1_NODEFLIB:
        return
    yield "ld.so.cache", "ld.so.cache"
    for folder in system_folders(program.dyn.interpreter if program else None):
        yield folder, "a system folder"


def verify(candidate: Path) -> Path | Refused | None:
    """``open_verify``: the candidate itself if the loader accepts it, None if it does not
    exist or is built for another class or machine (the loader moves on), or the reason it
    stops the load (not ELF, too short, a relocatable object)."""
    if not os.path.lexists(candidate) or not candidate.exists():
        return None
    try:
        header = peek(candidate)
    except InputError:  # a folder by that name: the loader's read fails
        return Refused(candidate, "not-a-library", "cannot read file data: Is a directory",
                       None, candidate.name)
    except ElfError as exc:
        says = "file too short" if exc.reason in ("empty", "truncated") and \
            candidate.stat().st_size < 64 else "invalid ELF header"
        return Refused(candidate, exc.reason, says, None, candidate.name)
    if header.elf_class != struct.calcsize("P") * 8 or header.e_machine != host_e_machine():
        return None
    if header.e_type not in ("shared object", "executable"):
        return Refused(candidate, "not-a-library", "only ET_DYN and ET_EXEC can be loaded",
                       None, candidate.name)
    return candidate


def _map(path: Path, name: str, how: str, loader: Obj | None, *,
         dlopen: bool) -> tuple[Obj | None, Refused | None]:
    """``_dl_map_object_from_fd``'s refusals, then the object."""
    try:
        dyn = dynamic_of(path)
    except ElfError as exc:
        return None, Refused(path, exc.reason, "file too short", loader, name)
    except (InputError, OSError):
        return None, None
    if dyn.e_type == "ET_EXEC":
        return None, Refused(path, "executable", "cannot dynamically load executable",
                             loader, name)
    if dyn.flags_1 & DF_1_PIE:
        return None, Refused(path, "pie-executable",
                             "cannot dynamically load position-independent executable",
                             loader, name)
    if dlopen and dyn.flags_1 & DF_1_NOOPEN:
        return None, Refused(path, "no-dlopen", "shared object cannot be dlopen()ed",
                             loader, name)
    return Obj(path, dyn, {name, str(path)}, loader=loader, found=how), None


def expand(text: str, obj: Obj | None) -> str | None:
    """``text`` with ``$ORIGIN``/``${ORIGIN}`` (``obj``'s folder) and ``$PLATFORM``
    replaced; None when it names a token labkit cannot expand (the loader drops the
    folder)."""
    if "$" not in text:
        return text
    machine = os.uname().machine
    result = re.sub(r"\$(?:\{(ORIGIN|PLATFORM)\}|(ORIGIN|PLATFORM)(?![A-Za-z0-9_]))",
                    lambda m: (obj.origin if obj is not None else "")
                    if (m[1] or m[2]) == "ORIGIN" else machine, text)
    return None if "$" in result or (obj is None and "ORIGIN" in text) else result


def replay_tls(later: list[Obj], tls: StaticTls, startup: list[Obj]) -> set[Path]:
    """Take from ``tls`` what the objects in ``later`` (loaded after start, in load order)
    took: the TLS block of each object a "tpoff" relocation names, and of each a TLS
    descriptor names while the optional surplus lasts. A symbol none of them defines is
    taken to be a startup object's, whose block is in static TLS already. Returns the
    paths of the objects whose block is in static TLS."""
    placed = {o.path for o in startup if o.dyn.tls}
    for obj in later:
        if not obj.dyn.tls and not obj.dyn.static_tls:
            continue
        for reloc in relocations_of(obj.path):
            if reloc.kind == "symbol":
                continue
            target = _tls_target(obj, reloc, later)
            if target is None or target.dyn.tls is None or target.path in placed:
                continue
            if tls.allocate(target.dyn.tls, optional=reloc.kind == "tlsdesc") or \
                    reloc.kind == "tpoff":
                placed.add(target.path)
    return placed


def _tls_target(obj: Obj, reloc: Relocation, others: list[Obj]) -> Obj | None:
    if reloc.symbol is None or reloc.defined:
        return obj
    for other in others:
        if other.dyn.tls is not None and reloc.symbol in elf_of(other.path).exported:
            return other
    return None


def _closure(obj: Obj) -> list[Obj]:
    """``obj`` and every dependency it reaches, breadth first, as far as they are known."""
    order = [obj]
    for item in order:
        order += [dep for dep in item.deps if all(dep is not seen for seen in order)]
    return order[1:]


def _link(objects: list[Obj]) -> None:
    """Give each loaded object the names its dependents asked for it by and its
    dependencies (matched by soname or file name, as they must have been), and mark what
    the program reaches as loaded at start; the rest came by dlopen since."""
    by_name: dict[str, Obj] = {}
    for obj in objects:
        by_name.setdefault(obj.path.name, obj)
        if obj.dyn.soname:
            by_name.setdefault(obj.dyn.soname, obj)
    for obj in objects:
        for name in obj.dyn.needed:
            dep = by_name.get(Path(name).name)
            if dep is not None:
                dep.names.add(expand(name, obj) or name)
                obj.deps.append(dep)
    program = next((o for o in objects if o.program), None)
    if program is None:
        return
    if program.dyn.interpreter:
        rtld = by_name.get(Path(program.dyn.interpreter).name)
        if rtld is not None:
            rtld.startup = True
    program.startup = True
    queue = [program]
    for obj in queue:
        for dep in obj.deps:
            if not dep.startup:
                dep.startup = True
                queue.append(dep)


def _this_program() -> Path:
    """This process's program (the kernel's name for it; Python's where /proc is missing)."""
    try:
        return Path(os.readlink("/proc/self/exe"))
    except OSError:
        return Path(os.path.realpath(sys.executable))


def _mapped_names() -> list[str]:
    """``dl_iterate_phdr``: the name of every loaded object, in load order ("" is the
    program)."""

    class Info(ctypes.Structure):
        _fields_ = [("addr", ctypes.c_size_t), ("name", ctypes.c_char_p)]

    names: list[str] = []
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t,
                                     ctypes.c_void_p)

    def collect(info: ctypes._Pointer[Info], size: int, data: int | None) -> int:
        del size, data
        raw = info.contents.name
        names.append(os.fsdecode(raw) if raw else "")
        return 0

    ctypes.CDLL(None).dl_iterate_phdr(callback_type(collect), None)
    return names


@functools.lru_cache(maxsize=1)
def ld_cache() -> dict[str, tuple[Path, ...]]:
    """ld.so.cache as ``ldconfig -p`` prints it: name -> its paths, in the cache's order
    (entries for other classes or machines included: :func:`verify` tells them apart)."""
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
    entries: dict[str, tuple[Path, ...]] = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
        if match and "hwcap" not in match[2]:
            entries[match[1]] = (*entries.get(match[1], ()), Path(match[3]))
    return entries


def _from_cache(name: str) -> Path | None:
    """The path ld.so.cache gives for ``name``: its first entry the loader does not skip
    (checked when asked, not for the whole cache at once)."""
    for path in ld_cache().get(name, ()):
        if verify(path) is not None:
            return path
    return None


@functools.lru_cache(maxsize=4)
def system_folders(interpreter: str | None = None) -> tuple[str, ...]:
    """The loader's system search path, as ``ld.so --help`` lists it (glibc 2.33 and
    later); labkit's list of the usual ones if it cannot say."""
    rtld = interpreter or "/lib64/ld-linux-x86-64.so.2"
    try:
        out = subprocess.run([rtld, "--help"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    folders = tuple(re.findall(r"^\s+(/\S*) \(system search path\)$", out, re.M))
    return folders or DEFAULT_LIBRARY_DIRS


_EMPTY = Dynamic(Path(""), 64, "", "", None, (), None, (), (), 0, 0, None)
