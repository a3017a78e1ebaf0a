"""Exercises of notebook 13, one plugin on three platforms: the learner builds a DLL that
exports exactly the plugin's entry point, and a dylib that finds its dependency through
``@loader_path``. No Windows or Mac is here to load them, so the judges read what was built
(LIEF, :mod:`labkit.inspect.foreign`) and follow the platform's loader as ``explain`` does,
with the dependency laid out as a release would ship it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...diagnose.foreign import foreign_verdict
from ...errors import ElfError
from ...inspect.foreign import MachOInfo, PeInfo, read_foreign
from ...samples.platforms import build_platform_samples
from .framework import Exercise, RefusedError
from .judging import built_file, copy_into, workspace

ENTRY = "lab_plugin_entry"


def _read(answer: Any, what: str) -> tuple[PeInfo | MachOInfo, ...]:
    path = built_file(answer, what)
    try:
        return read_foreign(path)
    except ElfError as error:
        raise RefusedError(str(error.args[0])) from None


def dll_exports_entry(answer: Any) -> str:
    info = _read(answer, "your Windows build of upper.c (what labkit.build_shared returned)")[0]
    if not isinstance(info, PeInfo) or info.kind != "DLL" or info.machine != "x86_64":
        raise RefusedError(f"{info.path.name} is {info.describe()}: build it for "
                           "x86_64-windows-gnu, as a shared library")
    if ENTRY not in info.exported:
        raise RefusedError(f"{info.path.name} does not export {ENTRY}, so GetProcAddress "
                           f"would not find it; it exports {list(info.exported) or 'nothing'}")
    others = [name for name in info.exported if name != ENTRY]
    if others:
        raise RefusedError(f"{info.path.name} exports {len(others)} more: "
                           f"{', '.join(others[:6])}{'...' if len(others) > 6 else ''}")
    called = {name for i in info.imports for name in i.names}
    if not {"calloc", "free", "toupper", "tolower"} <= called:
        raise RefusedError(f"{info.path.name} does not import calloc, free, toupper and "
                           "tolower, which upper.c calls: build the lab's upper.c, not "
                           "another plugin")
    return (f"{info.path.name} exports {ENTRY} and nothing else; it still imports what upper.c "
            f"calls ({', '.join(info.dlls[:3])}...)")


def dylib_finds_gone(answer: Any) -> str:
    infos = _read(answer, "your macOS build of needs_lib.c (what labkit.build_shared returned)")
    info = infos[0]
    if not isinstance(info, MachOInfo) or info.kind not in ("dylib", "bundle"):
        raise RefusedError(f"{info.path.name} is {info.describe()}: build needs_lib.c for "
                           "aarch64-macos as a shared library")
    gone = [d.path for d in info.dylibs if d.path.endswith("/libgone.dylib")]
    if not gone:
        raise RefusedError(f"{info.path.name} loads no libgone.dylib (it loads "
                           f"{', '.join(d.path for d in info.dylibs)}): link it against the "
                           "sample's libgone.dylib with libs=[...]")
    through = gone[0].startswith("@loader_path/") or any(
        r.startswith("@loader_path") for r in info.rpaths)
    if not through:
        raise RefusedError(f"{info.path.name} looks for {gone[0]} through LC_RPATH "
                           f"{list(info.rpaths) or '(none)'}: no path there starts at "
                           "@loader_path, the plugin's own folder")
    if gone[0].startswith("@loader_path/"):
        parent = Path(gone[0].removeprefix("@loader_path/")).parent
        where = "" if parent == Path(".") else str(parent)
    else:
        where = _rpath_folder(info.rpaths)
    with workspace() as tmp:
        release = tmp / "release"
        plugin = copy_into(info.path, release)
        sample = build_platform_samples(tmp / "samples")["macos-arm64"].gone.path
        folder = (release / where).resolve()
        if not folder.is_relative_to(release.resolve()):
            raise RefusedError(f"{info.path.name}'s LC_RPATH @loader_path/{where} leads out of "
                               "the plugin's folder: ship libgone.dylib with the plugin, in "
                               "its folder or below")
        copy_into(sample, folder)
        _, problems, _, _ = foreign_verdict(plugin)
        left = [p for p in problems if p.kind != "foreign-format"]
        shipped = f"in {where}/ below it" if where else "beside it"
        if left:
            raise RefusedError(f"with libgone.dylib shipped {shipped}, dyld would still "
                               f"refuse it: {left[0].line()}")
    return (f"{info.path.name} finds {gone[0]} with libgone.dylib shipped {shipped}, through "
            f"{gone[0] if gone[0].startswith('@loader_path') else 'LC_RPATH ' + info.rpaths[0]}")


def _rpath_folder(rpaths: tuple[str, ...]) -> str:
    """The folder below the plugin that its first ``@loader_path`` rpath names ('' for the
    plugin's own)."""
    first = next(r for r in rpaths if r.startswith("@loader_path"))
    return first.removeprefix("@loader_path").strip("/")


EXERCISES = [
    Exercise(
        "13.1",
        "Build upper.c for x86_64-windows-gnu so that the DLL exports lab_plugin_entry and "
        "nothing else.",
        ("MinGW's linker exports every global only when nothing in the DLL asks to be "
         "exported.",
         "Section 3 (exports) and the export table of your build: "
         "labkit.read_pe(path).exports_frame(); build_shared takes cflags=[...] and source "
         "text as well as a file."),
        dll_exports_entry),
    Exercise(
        "13.2",
        "Build needs_lib.c for aarch64-macos against the sample's libgone.dylib, so that "
        "dyld finds it via @loader_path beside the plugin.",
        ("libgone.dylib's install name starts with @rpath: the plugin must say where @rpath "
         "may point.",
         "Section 5 and the fix of explain's rpath-unresolved problem; build_shared takes "
         "ldflags=[...] and libs=[...]."),
        dylib_finds_gone),
]
