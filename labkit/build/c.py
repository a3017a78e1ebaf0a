"""Compiling C and C++ into shared objects and executables, with ``cc``/``c++`` or ``zig cc``/
``zig c++``, cached.

The cache is content-addressed: the key covers the source text and its language, the kind
of output, the target, every flag and the compiler's identity, so the same inputs build once
and a cache hit costs a hash and a file comparison. Results are copied to a named output
(``build/libNAME.so`` next to the notebook by default) with an atomic rename, so a library
that is loaded in a process is never overwritten in place.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import BuildError, InputError
from ..paths import existing_file, show, tidy
from ..toolchain import Tool, find_cc, find_cxx, find_zig
from . import cache

#: Cross targets labkit builds C for with ``zig cc`` (the names zig uses).
ZIG_TARGETS = ("x86_64-linux-musl", "x86_64-linux-gnu", "aarch64-linux-gnu", "wasm32-freestanding",
               "x86_64-windows-gnu", "aarch64-macos", "x86_64-macos")
#: A glibc target may name the oldest glibc to run on: ``x86_64-linux-gnu.2.28``.
_GLIBC_TARGET = re.compile(r"(x86_64|aarch64)-linux-gnu\.2\.\d{1,2}")

#: A compiler or linker message, and the fix labkit suggests when it sees it.
BUILD_HINTS = (
    ("recompile with -fPIC", "build position-independent code: add -fPIC to cflags"),
    ("undefined reference to", "link the library that defines the symbol: libs=[...]"),
    ("cannot find -l", "the library is not on the linker's path: add -L<folder> to ldflags"),
    ("No such file or directory", "a file named in the source or flags is missing: check "
     "the #include lines and paths"),
    ("file not found", "a header is missing: check the #include lines (wasm32-freestanding "
     "has no C library, so no <stdio.h>)"),
    ("implicit declaration of function", "declare the function (include its header) "
     "before calling it"),
)


Kind = Literal["shared", "executable"]
Language = Literal["c", "c++"]

#: The suffixes of a C++ source file, as gcc reads them.
CXX_SUFFIXES = (".cpp", ".cc", ".cxx", ".c++", ".C")

#: Flags every build gets unless ``default_flags=False``: optimised, with debug info (DWARF
#: feeds the struct-layout view) and warnings on.
DEFAULT_CFLAGS = ("-O2", "-g", "-Wall")

_BUILD_TIMEOUT = 300


@dataclass(frozen=True)
class Artifact:
    """A built file. ``path`` is where it was put; ``from_cache`` says whether the compiler
    ran (False) or the cache answered (True)."""

    path: Path
    kind: Kind
    target: str
    command: tuple[str, ...]
    key: str
    from_cache: bool

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def command_line(self) -> str:
        """The compiler command as a learner would type it (``cc -O2 ... -o libx.so x.c``),
        with paths inside the lab relative to it (``-Iplugins/c``)."""
        words = list(self.command)
        if len(words) > 2 and words[1:3] == ["-m", "ziglang"]:
            words = ["zig", *words[3:]]
        else:
            words[0] = Path(words[0]).name
        return tidy(" ".join(words))

    def __str__(self) -> str:
        return show(self.path)

    def __repr__(self) -> str:
        return f"Artifact({show(self.path)!r}, kind={self.kind!r}, target={self.target!r})"


def build_shared(
    source: str | os.PathLike[str],
    name: str | None = None,
    **options: object,
) -> Artifact:
    """Compile C or C++ into a shared object ``lib<name>.so`` (``<name>.wasm`` for wasm32).

    ``source`` is source text (a ``str``) or the path of a ``.c`` or ``.cpp`` file (a
    ``Path``). Keyword options are those of :func:`compile_c`.
    """
    return compile_c(source, name=name, kind="shared", **options)  # type: ignore[arg-type]


def build_executable(
    source: str | os.PathLike[str],
    name: str | None = None,
    **options: object,
) -> Artifact:
    """Compile C or C++ into an executable ``<name>``. Options as for :func:`compile_c`."""
    return compile_c(source, name=name, kind="executable", **options)  # type: ignore[arg-type]


def compile_c(
    source: str | os.PathLike[str],
    *,
    name: str | None = None,
    kind: Kind = "shared",
    target: str | None = None,
    cflags: Iterable[str] = (),
    ldflags: Iterable[str] = (),
    libs: Iterable[str | os.PathLike[str]] = (),
    out_dir: str | os.PathLike[str] = "build",
    default_flags: bool = True,
    language: Language | None = None,
) -> Artifact:
    """Compile one C or C++ source into a shared object or an executable.

    Parameters:
        source: source text (``str``) or a ``.c`` or ``.cpp`` file (``pathlib.Path``).
        name: the output's base name; defaults to the file's stem. Required for text.
        kind: ``"shared"`` (``-shared -fPIC``) or ``"executable"``.
        target: ``None`` for this machine's ``cc``, or a zig target such as
            ``"aarch64-linux-gnu"``, ``"x86_64-linux-musl"`` or ``"wasm32-freestanding"``.
        cflags, ldflags: extra flags, before and after the source on the command line.
        libs: libraries to link: ``"m"`` becomes ``-lm``; a path is linked by file.
        out_dir: where the named output goes (relative to the current folder).
        default_flags: add ``-O2 -g -Wall`` (and ``-fPIC`` for shared objects).
        language: ``"c"`` or ``"c++"`` (``c++``, or ``zig c++`` for a target); by default
            a file's suffix says (``.cpp``, ``.cc``, ``.cxx``: C++), and text is C.

    Raises :class:`BuildError` with the compiler's stderr when compilation fails, and
    :class:`~labkit.errors.ToolchainError` when the compiler is missing.
    """
    if language not in (None, "c", "c++"):
        raise InputError(f"language {language!r} is not one labkit builds",
                         fix="pass language='c' or language='c++'")
    cxx = language == "c++" or (language is None and not isinstance(source, str)
                                and os.fspath(source).endswith(CXX_SUFFIXES))
    text, display_name, origin = _read_source(source, "C++ source" if cxx else "C source")
    language = "c++" if cxx else "c"
    suffix = ".cpp" if language == "c++" else ".c"
    base = name or (Path(origin).stem if origin else None)
    if not base:
        raise InputError("compile_c needs name=... when the source is text (a str)",
                         fix="pass name='hello' to get build/libhello.so")
    if kind not in ("shared", "executable"):
        raise InputError(f"kind {kind!r} is not something labkit builds",
                         fix="pass kind='shared' or kind='executable'")
    if target is not None and target not in ZIG_TARGETS and not _GLIBC_TARGET.fullmatch(target):
        raise InputError(f"unknown target {target!r}",
                         fix=f"use one zig cc builds for ({', '.join(ZIG_TARGETS)}, or a glibc "
                         "target with the oldest glibc to run on, x86_64-linux-gnu.2.28), or "
                         "target=None for this machine")
    if origin is None:
        display_name = f"{base}{suffix}"  # the file the compiler sees, and names in its messages
    tool = _compiler(language, target)
    flags = _flags(kind, target, list(cflags), default_flags)
    link = [str(x) for x in ldflags] + [arg for lib in libs for arg in _lib_args(lib)]
    filename = _output_name(base, kind, target)
    includes = _local_includes(text, Path(origin).parent) if origin else {}
    key = _cache_key(text, language, filename, kind, target, flags, link, tool, libs,
                     includes)

    cached = cache.entry("build", key) / filename
    from_cache = cached.exists()
    command: tuple[str, ...]
    if from_cache:  # the command a fresh build runs: the source's own folder included
        include = [f"-I{Path(origin).parent}"] if origin else []
        command = _command(tool, target, include + flags, f"{base}{suffix}", filename, link)
    else:
        command = _compile(
            text, base, display_name, origin, tool, target, flags, link, filename, cached,
            suffix,
        )
    out = Path(out_dir) / filename
    cache.install(cached, out)
    implib = cached.with_name(_import_library(filename))
    if filename.endswith(".dll") and implib.is_file():
        cache.install(implib, out.with_name(implib.name))
    return Artifact(out, kind, target or "native", command, key, from_cache)


def _compiler(language: Language, target: str | None) -> Tool:
    """zig for a cross target, else this machine's ``cc`` or ``c++``."""
    if target is not None:
        return find_zig()
    return find_cxx() if language == "c++" else find_cc()


def _read_source(source: str | os.PathLike[str], what: str) -> tuple[str, str, str | None]:
    if isinstance(source, str):
        if "\n" not in source and source.strip().endswith((".c", *CXX_SUFFIXES)):
            raise InputError(
                f"{source!r} looks like a file name, but a str is read as source text",
                fix=f"pass pathlib.Path({source!r}) to compile the file")
        return source, "", None
    path = existing_file(source, what)
    try:
        return path.read_text(encoding="utf-8"), show(path), str(path.resolve())
    except UnicodeDecodeError:
        raise InputError(f"{what} {show(path)!r} is not UTF-8 text",
                         fix="save it as UTF-8 (or pass a .c or .cpp file, not a binary)",
                         path=path) from None


def _flags(kind: Kind, target: str | None, extra: list[str], defaults: bool) -> list[str]:
    flags = list(DEFAULT_CFLAGS) if defaults else []
    wasm = target is not None and target.startswith("wasm32")
    if kind == "shared":
        if wasm:
            flags += ["-nostdlib", "-Wl,--no-entry", "-Wl,--export-dynamic"]
        else:
            flags += ["-shared"] + (["-fPIC"] if defaults else [])
    elif target is not None and target.endswith("musl") and not wasm:
        flags += ["-dynamic"]  # a real musl binary needs ld-musl, the Alpine case
    return flags + extra


def _lib_args(lib: str | os.PathLike[str]) -> list[str]:
    """``"m"`` links ``-lm``; a file links by name from its folder (``-L<dir> -l:<file>``),
    so DT_NEEDED records ``libdep.so`` and not the build machine's absolute path. A DLL
    links through the import library built beside it (``dep.lib``); a dylib by its name
    (``-L<dir> -ldep``), so the dependency is recorded under the dylib's install name."""
    if isinstance(lib, str) and "/" not in lib and not lib.endswith(".so"):
        return [f"-l{lib}"]
    path = Path(lib).resolve()
    if path.suffix == ".dll":
        return [str(path.with_suffix(".lib"))]
    if path.suffix == ".dylib":
        return [f"-L{path.parent}", f"-l{path.stem.removeprefix('lib')}"]
    return [f"-L{path.parent}", f"-l:{path.name}"]


def _output_name(base: str, kind: Kind, target: str | None) -> str:
    if target is not None and target.startswith("wasm32"):
        return base if base.endswith(".wasm") else f"{base}.wasm"
    windows = target is not None and "-windows" in target
    if kind == "executable":
        return f"{base}.exe" if windows and not base.endswith(".exe") else base
    if windows:
        return base if base.endswith(".dll") else f"{base}.dll"
    if target is not None and "-macos" in target:
        return base if base.endswith(".dylib") else f"lib{base}.dylib"
    if base.endswith(".so") or ".so." in base:
        return base
    return f"lib{base}.so"


def _import_library(filename: str) -> str:
    """The import library zig writes beside a DLL: ``dep.dll``'s is ``dep.lib``."""
    return f"{Path(filename).stem}.lib"


def _cache_key(
    text: str,
    language: Language,
    filename: str,
    kind: Kind,
    target: str | None,
    flags: list[str],
    link: list[str],
    tool: Tool,
    libs: Iterable[str | os.PathLike[str]],
    includes: dict[str, str],
) -> str:
    linked_files = {
        str(lib): cache.file_digest(Path(lib))
        for lib in libs
        if not isinstance(lib, str) or "/" in lib or lib.endswith(".so")
    }
    for flag in link:  # a version script shapes the output as much as the source does
        if flag.startswith("-Wl,--version-script="):
            script = flag.split("=", 1)[1]
            linked_files[script] = cache.file_digest(Path(script))
    return cache.key(text, language, filename, kind, target, flags, link, tool.identity,
                     linked_files, includes)


def _local_includes(text: str, folder: Path, seen: dict[str, str] | None = None) -> dict[str, str]:
    """The digests of the files that ``#include "..."`` pulls in from ``folder``, followed
    recursively, so that editing a header rebuilds the sources that include it."""
    seen = {} if seen is None else seen
    for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
        path = folder / name
        if name in seen or not path.is_file():
            continue
        seen[name] = cache.file_digest(path)
        _local_includes(path.read_text(encoding="utf-8", errors="replace"), folder, seen)
    for name in re.findall(r'^\s*#\s*define\s+\w+\s+"([^"]+\.h)"', text, re.M):
        if name not in seen and (folder / name).is_file():  # #include MACRO, as upper_v2.c does
            seen[name] = cache.file_digest(folder / name)
    return seen


def _command(
    tool: Tool, target: str | None, flags: list[str], src: str, out: str, link: list[str]
) -> tuple[str, ...]:
    driver = "c++" if src.endswith(CXX_SUFFIXES) else "cc"
    zig = (driver, "-target", target) if target is not None else ()
    return (*tool.command, *zig, *flags, "-o", out, src, *link)


def _compile(
    text: str,
    base: str,
    display_name: str,
    origin: str | None,
    tool: Tool,
    target: str | None,
    flags: list[str],
    link: list[str],
    filename: str,
    cached: Path,
    suffix: str,
) -> tuple[str, ...]:
    with cache.workspace() as workdir:
        src = workdir / f"{base}{suffix}"
        src.write_text(text, encoding="utf-8")
        include = [f"-I{Path(origin).parent}"] if origin else []
        command = _command(tool, target, include + flags, src.name, filename, link)
        try:
            proc = subprocess.run(
                command, cwd=workdir, capture_output=True, text=True,
                timeout=_BUILD_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"{tool.name} did not finish building {display_name!r} within "
                f"{_BUILD_TIMEOUT} s", fix="run the command by hand to see where it stops",
                source=display_name, command=command, returncode=-1, stderr="",
            ) from None
        if proc.returncode != 0:
            raise _failure(tool, display_name, f"{base}{suffix}", origin, command,
                           proc.returncode, proc.stderr)
        staged = workdir / "out"
        staged.mkdir()
        os.replace(workdir / filename, staged / filename)
        if (workdir / _import_library(filename)).is_file():  # a DLL's, for what links to it
            os.replace(workdir / _import_library(filename), staged / _import_library(filename))
        cache.publish(staged, cached.parent, cached)
    return command


def _failure(
    tool: Tool, display: str, compiled: str, origin: str | None,
    command: tuple[str, ...], code: int, stderr: str,
) -> BuildError:
    shown = tidy(stderr)
    if origin is not None:  # the compiler saw a copy named <base>.c: name the real file
        shown = shown.replace(f"{compiled}:", f"{display}:")
    diagnosis, fix = cache.hint(stderr, shown, BUILD_HINTS,
                                "correct the source at the line the compiler names above")
    message = (
        f"{tool.name} could not build {display!r} (exit status {code}).\n"
        f"{shown.rstrip()}"
    )
    return BuildError(message, fix=fix, source=display, command=command, returncode=code,
                      stderr=stderr, diagnosis=diagnosis)
