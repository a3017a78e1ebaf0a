"""What a Windows DLL or a macOS dylib meets here, and on its own platform.

:func:`foreign_verdict` answers :func:`labkit.diagnose.verdict.explain` for a PE or Mach-O
file. Here the answer is always no: glibc's loader reads only ELF. On the file's own
platform it follows what that platform's loader does with the file as read
(:mod:`labkit.inspect.foreign`), without a Windows or a Mac to ask:

- Windows resolves each import in the DLL it names. A DLL that is neither a Windows DLL
  labkit knows nor shipped beside the plugin is a problem: the load fails
  (``ERROR_MOD_NOT_FOUND``) unless the host's own folders happen to hold it. One beside it
  must export every name imported from it (``ERROR_PROC_NOT_FOUND``) and be built for the
  same machine (``ERROR_BAD_EXE_FORMAT``). A delay-load import fails at its first call
  instead.
- dyld finds each ``LC_LOAD_DYLIB``: ``@loader_path`` is the folder of the file that names
  it; ``@rpath`` is tried with each ``LC_RPATH`` of that file, then of the images along the
  chain that loaded it (for a dlopen'd plugin, the image that called dlopen and the program),
  which this check cannot see; ``@executable_path`` is the program's folder. A library found
  beside the plugin must hold the architecture and, in a two-level namespace, every symbol
  bound to it (unless it re-exports other libraries, which are not followed).

A dependency the plugin does not ship is a problem even though a host could supply it (its
folder, ``PATH``, its ``LC_RPATH``, ``DYLD_*`` variables): the message says so. What only
the host decides (how it calls ``LoadLibraryEx``, ``@executable_path``) is a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import ElfError
from ..inspect.foreign import ForeignInfo, MachODylib, MachOInfo, PeImport, PeInfo, read_foreign
from ..paths import show
from .loader import Refused, verify
from .problem import Problem

#: DLLs of every Windows from 10 on, in System32 (lower case: Windows compares names so);
#: not every one: a name missing here is reported as not known, never as not in Windows.
#: ntdll, kernel32 and kernelbase are loaded in every process before any plugin.
WINDOWS_DLLS = frozenset({
    "ntdll.dll", "kernel32.dll", "kernelbase.dll", "user32.dll", "gdi32.dll",
    "advapi32.dll", "shell32.dll", "ole32.dll", "oleaut32.dll", "combase.dll", "ws2_32.dll",
    "msvcrt.dll", "ucrtbase.dll", "bcrypt.dll", "crypt32.dll", "secur32.dll", "shlwapi.dll",
    "comdlg32.dll", "comctl32.dll", "version.dll", "winmm.dll", "imm32.dll", "rpcrt4.dll",
    "setupapi.dll", "psapi.dll", "dbghelp.dll", "iphlpapi.dll", "userenv.dll", "sechost.dll",
    "wldap32.dll", "dnsapi.dll", "winhttp.dll", "wininet.dll", "netapi32.dll", "normaliz.dll",
    "opengl32.dll", "d3d11.dll", "dxgi.dll", "dwmapi.dll", "uxtheme.dll", "powrprof.dll",
    "d3d12.dll", "d2d1.dll", "dwrite.dll", "ncrypt.dll", "mswsock.dll", "wtsapi32.dll",
    "shcore.dll", "cfgmgr32.dll", "hid.dll", "winspool.drv", "mpr.dll", "urlmon.dll",
    "msimg32.dll", "avrt.dll", "mfplat.dll",
})
#: The prefixes of API set names: contracts the loader maps to the DLL that implements them.
API_SET_PREFIXES = ("api-ms-win-", "ext-ms-win-")
#: DLLs of the Visual C++ runtime: not part of Windows, installed by its redistributable.
VC_RUNTIME_PREFIXES = ("vcruntime", "msvcp", "concrt", "vccorlib", "vcomp")
#: Where macOS keeps its own libraries (in the dyld shared cache since macOS 11).
MACOS_SYSTEM = ("/usr/lib/", "/System/Library/")

#: How a host loads a plugin so that Windows finds the DLLs beside it.
_DLL_LOAD_DIR = ("LoadLibraryExW(absolute path, NULL, LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | "
                 "LOAD_LIBRARY_SEARCH_DEFAULT_DIRS), as Python's ctypes does for a path "
                 "(or the older LOAD_WITH_ALTERED_SEARCH_PATH)")


def foreign_verdict(
    p: Path, require: Iterable[str] = (),
) -> tuple[str, tuple[Problem, ...], str, tuple[str, ...]]:
    """``(action, problems, checked, notes)`` for the PE or Mach-O file ``p``: the first
    problem says why this machine cannot load it, the others what its own platform would
    refuse. A file LIEF cannot read gets one problem saying so."""
    required = tuple(require)
    try:
        infos = read_foreign(p)
    except ElfError as exc:
        return "load", (Problem(exc.reason, str(exc.args[0]), exc.fix),), "", ()
    first = infos[0]
    action = "run" if first.kind == "program" else "load"
    problems = [_here(p, first)]
    notes: list[str] = []
    for info in infos:
        more, said = _pe(info, required) if isinstance(info, PeInfo) else _macho(info, required)
        problems += more
        notes += said
    checked = first.describe() if len(infos) == 1 else f"a universal macOS {first.kind}"
    return action, tuple(problems), checked, tuple(notes)


def _here(p: Path, info: ForeignInfo) -> Problem:
    refused = verify(p)
    says = refused.loader_says if isinstance(refused, Refused) else "invalid ELF header"
    if isinstance(info, PeInfo):
        what, process, how = info.describe(), info.machine, "LoadLibraryExW"
    else:
        arches = info.universal or (info.cpu,)
        what = (f"a universal macOS {info.kind} ({', '.join(arches)})" if info.universal
                else info.describe())
        process, how = " or ".join(arches), "dlopen"
    return Problem(
        "foreign-format",
        f"{show(p)!r} is {what}, and this machine's loader reads only ELF files "
        f"(dlopen says {says!r})",
        f"load it on {info.platform}, in an {process} process, with {how}; or build the "
        "plugin for this machine (cc, or zig's target x86_64-linux-gnu)",
    )


# Windows


def _pe(info: PeInfo, required: tuple[str, ...]) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    notes: list[str] = []
    beside = _files_beside(info.path)
    system: list[str] = []
    api_sets: list[str] = []
    crt_sets: list[str] = []
    for imp in info.imports:
        name = imp.dll.lower()
        if name.startswith("api-ms-win-crt-"):
            crt_sets.append(imp.dll)
        elif name.startswith(API_SET_PREFIXES):
            api_sets.append(imp.dll)
        elif name in WINDOWS_DLLS:
            system.append(imp.dll)
        elif name in beside:
            found = beside[name]
            problems += _pe_dependency(info, imp, found)
            notes.append(
                f"{imp.dll} is beside it: Windows finds it there when the host loads "
                f"{info.path.name} with {_DLL_LOAD_DIR}; plain LoadLibrary looks in the "
                "program's folder, the system folders, the current folder and PATH, not in "
                "the plugin's")
        elif imp.delayed:
            notes.append(
                f"{imp.dll} (delay-loaded, for {_names(imp.names)}) is not a Windows DLL "
                "labkit knows and is not beside it: the load succeeds, and the first call "
                "into it fails unless the host's folders hold it")
        else:
            problems.append(_dll_not_found(info, imp))
    if system:
        notes.append(f"on Windows it also needs {', '.join(system)} (part of Windows)")
    if crt_sets:
        notes.append(
            f"its {len(crt_sets)} api-ms-win-crt-* imports are API set names of the Universal "
            "C Runtime: Windows 10 and later map them to ucrtbase.dll; earlier Windows needs "
            "the Universal CRT installed")
    if api_sets:
        notes.append(
            f"{', '.join(api_sets)}: API set names, which the loader maps to the DLL that "
            "implements them where the Windows version has one (an extension set may be "
            "absent)")
    missing = [name for name in required if name not in info.exported]
    if missing:
        problems.append(_not_exported(info, missing, "GetProcAddress",
                                      "NULL (GetLastError: ERROR_PROC_NOT_FOUND, 127)",
                                      "mark it __declspec(dllexport), or list it in a .def "
                                      "file's EXPORTS"))
    return problems, notes


def _files_beside(p: Path) -> dict[str, Path]:
    """The files in ``p``'s folder by lower-case name (Windows compares names so)."""
    return {f.name.lower(): f for f in p.parent.iterdir() if f.is_file() and f != p}


def _dll_not_found(info: PeInfo, imp: PeImport) -> Problem:
    vc = imp.dll.lower().startswith(VC_RUNTIME_PREFIXES)
    fix = (f"install the Visual C++ Redistributable on the machine, or ship {imp.dll} "
           f"beside {info.path.name}" if vc else
           f"ship {imp.dll} beside {info.path.name} and have the host load it with "
           f"{_DLL_LOAD_DIR}")
    return Problem(
        "dll-not-found",
        f"on Windows, {imp.dll!r} (imported by {info.path.name} for {_names(imp.names)}) is "
        "not a Windows DLL labkit knows and is not shipped beside it: unless a folder the "
        "host searches holds it (the program's, PATH, one added with AddDllDirectory), the "
        "load fails with ERROR_MOD_NOT_FOUND (126, \"The specified module could not be "
        "found\")",
        fix,
    )


def _pe_dependency(info: PeInfo, imp: PeImport, found: Path) -> list[Problem]:
    try:
        dep = read_foreign(found)[0]
    except ElfError:
        dep = None
    if not isinstance(dep, PeInfo) or dep.machine != info.machine:
        what = dep.describe() if dep is not None else "not a PE file"
        return [Problem(
            "bad-exe-format",
            f"on Windows, {imp.dll!r} beside {info.path.name} is {what}, not an "
            f"{info.machine} DLL: the load fails with ERROR_BAD_EXE_FORMAT (193, \"is not a "
            "valid Win32 application\")",
            f"ship {imp.dll} built for {info.machine} Windows",
        )]
    absent = [name for name in imp.names if not name.startswith("#")
              and name not in dep.exported]
    if not absent:
        return []
    return [Problem(
        "procedure-not-found",
        f"on Windows, {imp.dll!r} beside {info.path.name} does not export {_names(absent)}, "
        f"which {info.path.name} imports from it: the load fails with ERROR_PROC_NOT_FOUND "
        "(127, \"The specified procedure could not be found\"); another DLL exporting the "
        "name does not help, each import names its DLL",
        f"ship the {imp.dll} that {info.path.name} was linked against, or relink "
        f"{info.path.name} against the one you ship",
    )]


# macOS


def _macho(info: MachOInfo, required: tuple[str, ...]) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    notes: list[str] = []
    arch = f" ({info.cpu})" if info.universal else ""
    system = []
    for dylib in info.dylibs:
        if dylib.path.startswith(MACOS_SYSTEM):
            system.append(dylib.path)
            continue
        found, tried, unknown = _find_dylib(info, dylib.path)
        if found is not None:
            problems += _macho_dependency(info, dylib, found)
        elif unknown:
            notes.append(f"{dylib.path}{arch}: found only if {unknown}")
        elif dylib.how == "weak":
            notes.append(f"{dylib.path}{arch} is weakly linked and not found: dyld loads "
                         f"{info.path.name} without it, and its symbols are NULL")
        else:
            problems.append(_dylib_not_found(info, dylib, tried))
    if system:
        notes.append(f"on macOS{arch} it also loads {', '.join(system)} (part of macOS, in "
                     "the dyld shared cache)")
    if info.imports and info.two_level:
        notes.append(f"two-level namespace{arch}: each of its {len(info.imports)} undefined "
                     "symbols is bound to the library named at link time, and dyld looks "
                     "for it in that library and the libraries it re-exports")
    elif info.imports:
        notes.append(f"flat namespace{arch}: dyld looks for each undefined symbol in every "
                     "image loaded so far, in load order, as glibc does")
    missing = [name for name in required if f"_{name}" not in info.exports]
    if missing:
        problems.append(_not_exported(
            info, missing, "dlsym", "NULL",
            "define it without static, with default visibility (a C name gets a leading "
            "underscore in Mach-O: dlsym's 'f' is the symbol '_f')"))
    return problems, notes


def _find_dylib(info: MachOInfo, recorded: str) -> tuple[Path | None, list[str], str]:
    """Where dyld finds ``recorded`` for ``info``, as far as this machine can tell:
    ``(found, tried, unknown)``: the file found, the paths tried, and what the answer
    depends on when it is outside the files here (the program, or the Mac's own folders)."""
    folder = info.path.parent
    if recorded.startswith("@loader_path/"):
        path = folder / recorded.removeprefix("@loader_path/")
        return (path if path.is_file() else None), [str(show(path))], ""
    if recorded.startswith("@executable_path/"):
        return None, [], "the program that loads it has it at that path, beside the program"
    if recorded.startswith("@rpath/"):
        rest = recorded.removeprefix("@rpath/")
        tried: list[str] = []
        unknown: list[str] = []
        for rpath in info.rpaths:
            if rpath == "@loader_path" or rpath.startswith("@loader_path/"):
                path = folder / rpath.removeprefix("@loader_path").lstrip("/") / rest
                if path.is_file():
                    return path, tried, ""
                tried.append(str(show(path)))
            else:
                unknown.append(rpath)
        said = "; or an LC_RPATH of the program (or of the image that called dlopen) leads " \
               "to it"
        if unknown:
            return None, tried, (f"the Mac has it in {' or '.join(unknown)} (LC_RPATH "
                                 "entries outside the plugin's folder)" + said)
        return None, tried, ""
    return None, [], "the Mac has it at that path (outside the plugin's folder)"


def _dylib_not_found(info: MachOInfo, dylib: MachODylib, tried: list[str]) -> Problem:
    name = dylib.path.rsplit("/", 1)[-1]
    if dylib.path.startswith("@rpath/"):
        own = ", ".join(info.rpaths) or "it has none"
        return Problem(
            "rpath-unresolved",
            f"on macOS, dyld looks for {dylib.path!r} through the LC_RPATH entries of "
            f"{info.path.name} ({own}){' (tried ' + ', '.join(tried) + ')' if tried else ''}, "
            "then of the images that led to it (the caller of dlopen, the program): none "
            "of its own leads to the library, so it loads only in a host whose LC_RPATH "
            "does (or with DYLD_LIBRARY_PATH set), and elsewhere dyld says \"Library not "
            f"loaded: {dylib.path}\"",
            f"link {info.path.name} with -Wl,-rpath,@loader_path and ship {name} beside it "
            "(or -Wl,-rpath,@loader_path/<folder> and ship it there)",
        )
    return Problem(
        "dylib-not-found",
        f"on macOS, {dylib.path!r} (loaded by {info.path.name}) is not there "
        f"(tried {', '.join(tried)}): dyld says \"Library not loaded: {dylib.path}\"",
        f"ship {name} where the path points, or change the path",
    )


def _macho_dependency(info: MachOInfo, dylib: MachODylib, found: Path) -> list[Problem]:
    try:
        slices = [s for s in read_foreign(found) if isinstance(s, MachOInfo)]
    except ElfError:
        slices = []
    dep = next((s for s in slices if s.cpu == info.cpu), None)
    if dep is None:
        have = ", ".join(s.cpu for s in slices) or "not a Mach-O file"
        return [Problem(
            "wrong-architecture",
            f"on macOS, {show(found)!r} (for {dylib.path!r}) holds {have}, not {info.cpu}: "
            "dyld says it is \"an incompatible architecture\"",
            f"ship {found.name} built for {info.cpu} (or a universal file that holds it)",
        )]
    if any(d.how == "re-export" for d in dep.dylibs):
        return []  # its re-exported libraries define symbols too; not followed here
    bound = [s.name for s in info.imports
             if s.library == dylib.path and not s.weak and s.name not in dep.exports]
    if not bound:
        return []
    lazy = all(s.lazy for s in info.imports if s.name in bound)
    when = ("dlopen with RTLD_NOW fails with it; without, the load succeeds and the first "
            "call aborts (\"missing lazy symbol called\"): current dyld binds lazy symbols "
            "at load too" if lazy else "the load fails with it")
    return [Problem(
        "symbol-not-found",
        f"on macOS, {_names(bound)} {'is' if len(bound) == 1 else 'are'} bound to "
        f"{dylib.path!r} (two-level namespace), and {show(found)!r} does not export "
        f"{'it' if len(bound) == 1 else 'them'}: dyld says \"Symbol not found: "
        f"{bound[0]}\"; {when}",
        f"ship the {found.name} that {info.path.name} was linked against, or relink "
        f"{info.path.name} against the one you ship",
    )]


# shared


def _not_exported(info: ForeignInfo, missing: list[str], lookup: str, result: str,
                  fix: str) -> Problem:
    return Problem(
        "not-exported",
        f"{info.path.name} does not export {_names(missing)}: on {info.platform}, "
        f"{lookup} returns {result}",
        fix,
    )


def _names(names: Iterable[str], most: int = 4) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
