"""Loading shared objects by hand: dlopen, dlsym, dlclose and dlerror, through cffi.

labkit calls the C library's own ``dlopen``/``dlsym``/``dlclose``/``dlerror`` (cffi's ABI
mode), so what a learner sees is what the loader does, flags and error texts included.
A failed load raises :class:`~labkit.errors.LoadError` with labkit's diagnosis and the
loader's raw message. :func:`load_fresh` loads a private copy of a file, which is how a
host swaps in a rebuilt plugin without restarting.

Danger: code reached through a :class:`Library` runs inside this process. A plugin that
crashes takes the process with it; run such code through :mod:`labkit.isolate`.
"""

from __future__ import annotations

import enum
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..diagnose.why import Context, Problem, diagnose_load
from ..errors import ElfError, InputError, LabkitError, LoadError, SymbolError
from ..inspect.elf import check_complete
from ..paths import show, tidy


class RTLD(enum.IntFlag):
    """dlopen's mode bits, as glibc's <dlfcn.h> defines them on Linux.

    Exactly one of LAZY and NOW; any of GLOBAL (else LOCAL), NODELETE, NOLOAD, DEEPBIND.
    """

    LAZY = os.RTLD_LAZY
    NOW = os.RTLD_NOW
    NOLOAD = os.RTLD_NOLOAD
    DEEPBIND = os.RTLD_DEEPBIND
    GLOBAL = os.RTLD_GLOBAL
    NODELETE = os.RTLD_NODELETE

    @classmethod
    def describe(cls, flags: int) -> str:
        """``flags`` as a learner would write them in C: ``RTLD_NOW | RTLD_LOCAL``."""
        parts = ["RTLD_NOW" if flags & cls.NOW else "RTLD_LAZY"]
        parts.append("RTLD_GLOBAL" if flags & cls.GLOBAL else "RTLD_LOCAL")
        for extra in (cls.NODELETE, cls.NOLOAD, cls.DEEPBIND):
            if flags & extra:
                parts.append(f"RTLD_{extra.name}")
        return " | ".join(parts)


_CDEF = """
void *dlopen(const char *filename, int flags);
void *dlmopen(long lmid, const char *filename, int flags);
int dlinfo(void *handle, int request, void *info);
void *dlsym(void *handle, const char *symbol);
int dlclose(void *handle);
char *dlerror(void);
"""
LM_ID_NEWLM = -1  # <dlfcn.h>: dlmopen into a new, empty namespace
_RTLD_DI_LMID = 1  # <dlfcn.h>: dlinfo's request for the handle's namespace
_lock = threading.Lock()  # dlerror's text belongs to the call just made
_state: dict[str, Any] = {}
_fresh_counter = itertools.count(1)


def _dl() -> tuple[Any, Any]:
    """cffi's FFI and the C library's dl* functions, set up on first use."""
    if "ffi" not in _state:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        try:
            lib = ffi.dlopen(None)  # glibc >= 2.34 has dlopen in libc itself
            lib.dlerror  # noqa: B018 - fails here if this libc lacks it
        except (AttributeError, OSError):
            lib = ffi.dlopen("libdl.so.2")
        _state["ffi"], _state["lib"] = ffi, lib
    return _state["ffi"], _state["lib"]


def _dlerror(lib: Any, ffi: Any) -> str:
    err = lib.dlerror()
    return ffi.string(err).decode(errors="replace") if err != ffi.NULL else ""


class Function:
    """A C function found with dlsym, callable from Python.

    It refuses to run once its library is closed (calling into unmapped code would crash
    the process). ``raw`` is the bare cffi function pointer, for speed.
    """

    def __init__(self, library: Library, name: str, signature: str, raw: Any) -> None:
        self.library = library
        self.name = name
        self.signature = signature
        self.raw = raw

    def __call__(self, *args: Any) -> Any:
        self.library._check_open(self.name)
        return self.raw(*args)

    def __repr__(self) -> str:
        return f"<C function {self.name}: {self.signature} from {self.library.name}>"


class Library:
    """A shared object opened with dlopen. Use :func:`load` or :func:`load_fresh`."""

    def __init__(self, path: Path, handle: Any, flags: int, name: str) -> None:
        self.path = path
        self.name = name
        self.flags = RTLD(flags)
        self._handle = handle
        self.closed = False

    @property
    def handle(self) -> int:
        """The loader's handle as a number. Two loads of one path give the same handle."""
        ffi, _ = _dl()
        return int(ffi.cast("uintptr_t", self._handle))

    @property
    def namespace(self) -> int:
        """The link-map namespace the library lives in (dlinfo's ``RTLD_DI_LMID``): 0 is the
        program's own; :func:`load` with ``namespace="new"`` makes another."""
        ffi, lib = _dl()
        self._check_open("its namespace")
        lmid = ffi.new("long *")
        with _lock:
            if lib.dlinfo(self._handle, _RTLD_DI_LMID, lmid) != 0:
                err = _dlerror(lib, ffi)
                raise LoadError(f"dlinfo of {self.name!r} failed: {err}", path=self.path,
                                dlerror=err)
        return int(lmid[0])

    def _check_open(self, name: str) -> None:
        if self.closed:
            raise SymbolError(
                f"{self.name!r} is closed, so {name!r} may no longer be mapped; using it "
                "would jump into unmapped memory", fix="load the library again and look "
                f"{name!r} up anew",
                path=self.path, symbol=name,
            )

    def symbol(self, name: str) -> int:
        """dlsym: the address of ``name``, or :class:`SymbolError` with dlerror's text."""
        ffi, lib = _dl()
        self._check_open(name)
        with _lock:
            _dlerror(lib, ffi)  # clear a stale message
            address = lib.dlsym(self._handle, name.encode())
            err = _dlerror(lib, ffi)
        if err or address == ffi.NULL:
            raise SymbolError(
                f"{self.name!r} has no symbol {name!r}: dlsym said {tidy(err)!r}", fix="check "
                "the spelling, that the function is not static or hidden "
                "(-fvisibility=hidden), and that C++ names are declared extern \"C\"",
                path=self.path, symbol=name, dlerror=err,
            )
        return int(ffi.cast("uintptr_t", address))

    def has(self, name: str) -> bool:
        """Whether dlsym finds ``name``."""
        try:
            self.symbol(name)
        except SymbolError:
            return False
        return True

    def function(self, name: str, signature: str) -> Function:
        """Look up ``name`` and give it a C type, e.g. ``lib.function("add", "int(int, int)")``."""
        ffi, _ = _dl()
        address = self.symbol(name)
        open_paren = signature.find("(")
        if open_paren < 0:
            raise InputError(f"signature {signature!r} for {name!r} is not a C function type",
                             fix="write it like 'int(int, int)' or 'const char *(void)'")
        pointer_type = f"{signature[:open_paren]}(*){signature[open_paren:]}"
        try:
            raw = ffi.cast(pointer_type, address)
        except (ffi.error, TypeError) as exc:
            raise InputError(f"cffi cannot read the C type {signature!r}: {exc}",
                             fix="write it as C declares it, like 'int(int, int)'") from exc
        return Function(self, name, signature, raw)

    def variable(self, name: str, ctype: str) -> Any:
        """A pointer to the global variable ``name`` of C type ``ctype`` (read ``[0]``)."""
        ffi, _ = _dl()
        return ffi.cast(f"{ctype} *", self.symbol(name))

    def close(self) -> int:
        """dlclose. Returns dlclose's status (0 on success).

        Danger: any :class:`Function` of this library refuses to run afterwards, but raw
        pointers (``Function.raw``, addresses from :meth:`symbol`) would crash the process.
        The loader unmaps the file only when its last handle is closed.
        """
        if self.closed:
            return 0
        ffi, lib = _dl()
        with _lock:
            status = int(lib.dlclose(self._handle))
            err = _dlerror(lib, ffi)
        if status != 0:
            raise LoadError(f"dlclose of {self.name!r} failed: {err}", path=self.path, dlerror=err)
        self.closed = True
        return status

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else RTLD.describe(self.flags)
        return f"<Library {self.name} ({state})>"


def load(
    path: str | os.PathLike[str], flags: int = RTLD.NOW, *, namespace: str | None = None
) -> Library:
    """dlopen ``path`` with ``flags`` (``RTLD.NOW`` by default; add ``RTLD.GLOBAL`` to make
    its symbols visible to libraries loaded later).

    A ``str`` without a slash is looked up on the loader's search path, as dlopen does; any
    other path is opened as a file. ``namespace="new"`` calls ``dlmopen(LM_ID_NEWLM, ...)``
    instead: the file and everything it needs, the C library included, are loaded afresh in
    a namespace of their own, which sees none of this process's symbols (glibc has 16
    namespaces, the program's own included). On failure raises :class:`LoadError` whose
    message names the cause and the fix, and whose ``dlerror`` holds the loader's own text.
    """
    flags = int(flags)
    if not (flags & RTLD.NOW or flags & RTLD.LAZY):
        raise InputError("flags hold neither RTLD.NOW nor RTLD.LAZY, and dlopen requires one",
                         fix="add RTLD.NOW (or RTLD.LAZY): flags=RTLD.NOW | RTLD.LOCAL")
    if namespace not in (None, "new"):
        raise InputError(f"namespace {namespace!r} is not one labkit opens",
                         fix="leave it out for this process's namespace, or pass "
                         "namespace='new' for dlmopen(LM_ID_NEWLM, ...)")
    if namespace == "new" and flags & RTLD.GLOBAL:
        raise InputError("dlmopen into a new namespace refuses RTLD_GLOBAL (glibc: \"invalid "
                         "mode\")", fix="drop RTLD.GLOBAL: the new namespace is the "
                         "library's own anyway")
    target = _loader_name(path)
    return _open(target, flags, display=show(path) if "/" in target else target,
                 new_namespace=namespace == "new")


def load_fresh(path: str | os.PathLike[str], flags: int = RTLD.NOW) -> Library:
    """Load a private copy of ``path``: the way to pick up a rebuilt file.

    dlopen of a path that is already loaded returns the old handle, even if the file was
    replaced. A copy under a new name is a new object to the loader, so its code is the
    file's current code. The copy is deleted once mapped; the mapping stays.
    """
    source = Path(path)
    if not source.is_file():
        problems = diagnose_load(source)
        raise _load_error(show(source), source, "", problems)
    folder = Path(tempfile.mkdtemp(prefix="labkit-fresh-"))
    copy = folder / f"{next(_fresh_counter)}-{source.name}"
    try:
        shutil.copy2(source, copy)
        library = _open(str(copy), int(flags), display=show(source))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    library.path = source
    return library


def is_mapped(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` is mapped into this process right now."""
    wanted = str(Path(path).resolve())
    maps = Path("/proc/self/maps").read_text()
    return any(line.split(None, 5)[-1] == wanted for line in maps.splitlines() if "/" in line)


def _loader_name(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if isinstance(path, str) and "/" not in text:
        return text  # a bare name: dlopen searches the library path
    return text if "/" in text else f"./{text}"


def _open(target: str, flags: int, *, display: str, new_namespace: bool = False) -> Library:
    if "/" in target:
        try:
            check_complete(target)
        except ElfError as exc:
            if exc.reason == "truncated":  # dlopen would map past the end: SIGBUS
                problem = Problem(exc.reason, exc.what, exc.fix)
                raise _load_error(display, Path(target), "", [problem], called=False) from None
        except InputError:
            pass  # missing or a directory: dlopen reports it safely, the diagnosis explains
        aborts = _loader_aborts(target)
        if aborts:  # glibc's loader would assert and end this process instead of failing
            raise _load_error(display, Path(target), "", aborts, called=False)
    ffi, lib = _dl()
    with _lock:
        _dlerror(lib, ffi)
        if new_namespace:
            handle = lib.dlmopen(LM_ID_NEWLM, target.encode(), flags)
        else:
            handle = lib.dlopen(target.encode(), flags)
        err = _dlerror(lib, ffi) if handle == ffi.NULL else ""
    if handle == ffi.NULL:
        context = Context(provided=_globally_defined)
        problems = diagnose_load(target, dlerror=err, context=context)
        raise _load_error(display, Path(target), err, problems)
    return Library(Path(target), handle, flags, display)


def _loader_aborts(target: str) -> list[Problem]:
    """The ``loader-abort`` problems of ``target``: inputs on which glibc's loader fails an
    assertion and ends the whole process (exit status 127) instead of failing dlopen. The
    check follows the loader over every object the file would map (a few milliseconds); a
    file labkit cannot read is left to dlopen, which reports it safely."""
    try:
        problems = diagnose_load(target, context=Context(provided=_globally_defined))
    except LabkitError:
        return []
    return [p for p in problems if p.kind == "loader-abort"]


def _globally_defined(name: str) -> bool:
    """Whether ``name`` is in this process's global scope: the program, its libraries and
    whatever was loaded with RTLD_GLOBAL (dlsym with RTLD_DEFAULT, the NULL handle)."""
    ffi, lib = _dl()
    with _lock:
        found = lib.dlsym(ffi.NULL, name.encode()) != ffi.NULL
        _dlerror(lib, ffi)  # clear the message a miss leaves behind
    return bool(found)


def _load_error(
    display: str, path: Path, err: str, problems: list[Any], *, called: bool = True
) -> LoadError:
    lines = [f"cannot load {display!r}:"]
    lines += [f"- {problem}" for problem in problems]
    if err:
        lines.append(f"(dlerror: {tidy(err)})")
    elif not called:
        lines.append("(labkit did not call dlopen: it would have crashed this process)")
    return LoadError("\n".join(lines), path=path, dlerror=err, problems=problems)


def c_string(value: Any) -> str:
    """A C ``char *`` returned by a plugin, as a Python str (NULL gives ``""``).

    The bytes are copied; who frees the C memory is the plugin API's business.
    """
    ffi, _ = _dl()
    if value == ffi.NULL:
        return ""
    return str(ffi.string(value).decode(errors="replace"))
