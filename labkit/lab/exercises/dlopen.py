"""Exercises of notebook 02, dlopen and dlsym: the learner builds libraries that the loader
treats in a given way; the judges load them in child processes, with the flags, the current
folder and the environment that make the difference."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ...build.c import build_shared
from ...inprocess.dlopen import RTLD, load_fresh
from ...inspect.elf import read_elf, sections_of
from ...isolate import run as run_isolated
from ...paths import tidy
from .framework import Exercise, RefusedError
from .judging import built_file, require_exports, said, shown, snippet, workspace

_BUILD = "your library (what labkit.build_shared returned)"
_DF_BIND_NOW = 0x8  # DT_FLAGS
_DF_1_NOW = 0x1  # DT_FLAGS_1


def binds_now(path: Path) -> bool:
    """Whether the file asks the loader to bind every symbol at load time (``-z now``):
    DT_BIND_NOW, DF_BIND_NOW in DT_FLAGS or DF_1_NOW in DT_FLAGS_1. glibc then resolves
    everything at dlopen, whatever flag the host passed."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        for section in sections_of(ELFFile(f), "SHT_DYNAMIC"):
            if not isinstance(section, DynamicSection):
                continue
            for tag in section.iter_tags():
                kind, value = tag.entry.d_tag, tag.entry.d_val
                if (kind == "DT_BIND_NOW" or (kind == "DT_FLAGS" and value & _DF_BIND_NOW)
                        or (kind == "DT_FLAGS_1" and value & _DF_1_NOW)):
                    return True
    return False


def _load_now(path: Path) -> str:
    load_fresh(path, RTLD.NOW)
    return "loaded"


def _lazy_then_call(path: Path) -> None:
    library = load_fresh(path, RTLD.LAZY)
    print("@@ready", library.function("ready", "int(void)")(), flush=True)
    library.function("later", "int(void)")()
    print("@@later returned", flush=True)


def lazy_only(answer: Any) -> str:
    path = built_file(answer, _BUILD)
    require_exports(path, ("ready", "later"))
    now = run_isolated(_load_now, path, timeout=30)
    if now.ok:
        raise RefusedError("dlopen with RTLD_NOW accepted it: every function it calls is defined "
                           "somewhere, so nothing is left to fail later")
    lazy = run_isolated(_lazy_then_call, path, timeout=30)
    if lazy.error is not None and lazy.error["kind"] == "LoadError":
        if binds_now(path):
            raise RefusedError("dlopen refused it even with RTLD_LAZY: the linker marked it for "
                               "immediate binding (BIND_NOW in its dynamic section), as some "
                               "toolchains do by default, so the loader resolves everything at "
                               "load time. Ask the linker for lazy binding (-z lazy)")
        raise RefusedError(f"dlopen refused it with RTLD_LAZY too: {lazy.error['message']}")
    if "@@ready 1" not in lazy.stdout:
        raise RefusedError(f"loaded with RTLD_LAZY, ready() did not return 1: {said(lazy)}")
    if "@@later returned" in lazy.stdout:
        raise RefusedError("loaded with RTLD_LAZY, later() returned: it calls nothing undefined")
    if lazy.returncode != 127 or "symbol lookup error" not in lazy.stderr:
        raise RefusedError(f"later() did not stop the process with the loader's symbol lookup "
                           f"error: {said(lazy)}")
    return ("RTLD_NOW refused it; with RTLD_LAZY it loaded, ready() returned 1, and later() "
            "stopped the process with exit status 127 and a symbol lookup error")


_SHIPPED = """
import labkit
library = labkit.load({path!r})
value = library.function("get", "int(void)")()
maps = open("/proc/self/maps").read().splitlines()
mapped = sorted({{line.split()[-1] for line in maps if {name!r} in line}})
result({{"get": value, "mapped": mapped}})
"""


def _origin_folder(plugin: Path, entry: str) -> Path | None:
    for spelling in ("${ORIGIN}", "$ORIGIN"):
        if entry.startswith(spelling):
            return plugin.parent / entry.removeprefix(spelling).lstrip("/")
    return None


def ships_its_dependency(answer: Any) -> str:
    path = built_file(answer, "your plugin (what labkit.build_shared returned)")
    info = read_elf(path)
    entries = info.rpath + info.runpath
    relative = [(entry, _origin_folder(path, entry)) for entry in entries]
    origin = [(entry, where) for entry, where in relative if where is not None]
    if not origin:
        if entries:
            raise RefusedError(
                f"its search path is {[tidy(e) for e in entries]}: a fixed folder of "
                "this machine, where a copy of the plugin on another machine finds "
                "nothing")
        raise RefusedError(f"it needs {list(info.needed)} and carries no search path of its own: "
                           "the loader finds its dependency only through LD_LIBRARY_PATH or the "
                           "system's folders")
    found = [(where, name) for _, where in origin for name in info.needed
             if (where / name).is_file()]
    if not found:
        raise RefusedError(f"it needs {list(info.needed)} and looks in "
                           f"{[entry for entry, _ in origin]}, but none of them is there")
    where, name = found[0]
    base = path.parent.resolve()
    if where.resolve() == base:
        raise RefusedError(f"{name} sits beside the plugin: a host that scans the folder for "
                           "plugins would take it for one; give it a subfolder")
    try:
        sub = where.resolve().relative_to(base)
    except ValueError:
        raise RefusedError(f"{name} is outside the plugin's folder ({shown(where)}): a copy of the "
                           "folder would leave it behind") from None
    with workspace() as tmp:
        ship = tmp / "shipped"
        shutil.copytree(where, ship / sub)
        plugin = ship / path.name
        shutil.copy2(path, plugin)
        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir()
        outcome, seen = snippet(_SHIPPED.format(path=str(plugin), name=name), timeout=30,
                                env={"LD_LIBRARY_PATH": ""}, cwd=elsewhere)
        if not outcome.ok or seen is None:
            raise RefusedError(
                f"the copy ({path.name} and {sub}/) did not load from another folder "
                f"without LD_LIBRARY_PATH: {said(outcome)}")
        if not all(mapped.startswith(str(ship)) for mapped in seen["mapped"]):
            raise RefusedError(f"the copy loaded, but {name} came from elsewhere, not from the "
                               "copy's own subfolder")
    if seen["get"] != 42:
        raise RefusedError(f"the copy loaded, but get() returned {seen['get']}, not 42")
    return (f"a copy of {path.name} and {sub}/{name}, loaded from another folder without "
            "LD_LIBRARY_PATH, found its dependency in its own subfolder, and get() returned 42")


_INTERPOSED = """
import labkit
labkit.load({impostor!r}, labkit.RTLD.NOW | labkit.RTLD.GLOBAL)
library = labkit.load_fresh({path!r})
result([library.function("report", "int(void)")(), library.function("lab_version", "int(void)")()])
"""


def binds_to_itself(answer: Any) -> str:
    path = built_file(answer, _BUILD)
    require_exports(path, ("report", "lab_version"), why=": hosts call both")
    with workspace() as tmp:
        impostor = build_shared("int lab_version(void) { return 2; }", "judge_impostor",
                                out_dir=tmp)
        outcome, seen = snippet(_INTERPOSED.format(impostor=str(impostor.path),
                                                   path=str(path.resolve())), timeout=30)
    if not outcome.ok or seen is None:
        raise RefusedError(f"loading it after a global lab_version, in a child: {said(outcome)}")
    report, own = seen
    if own != 1:
        raise RefusedError(f"its own lab_version() returns {own}, not 1")
    if report != 1:
        raise RefusedError(
            f"report() answered {report}: the lab_version loaded first with "
            "RTLD_GLOBAL (which returns 2) won the lookup of your library's own call")
    return ("after a lab_version returning 2 was loaded with RTLD_GLOBAL, report() still "
            "answered 1, and dlsym still finds your lab_version")


EXERCISES = [
    Exercise(
        "02.1",
        "Build a library that RTLD_LAZY loads and RTLD_NOW refuses: ready() returns 1, "
        "later() calls a function defined nowhere.",
        ("A library can ask the loader to bind everything at load time, whatever flag the "
         "host passes.",
         "Section 3 (RTLD_NOW or RTLD_LAZY); then `man ld`, on the -z keywords about "
         "binding."),
        lazy_only),
    Exercise(
        "02.2",
        "Ship a plugin, get() returning 42, with its dependency in a subfolder: a copy "
        "must load from anywhere, without LD_LIBRARY_PATH.",
        ("The loader can search relative to the folder the plugin was loaded from, not the "
         "current one.",
         "Section 5 (The search path), the cell that builds app_origin; "
         "labkit.read_elf(plugin).runpath shows what you built."),
        ships_its_dependency),
    Exercise(
        "02.3",
        "Build a library whose report() returns its own lab_version() (1) even after "
        "another lab_version was loaded RTLD_GLOBAL.",
        ("A library's call to its own exported function goes through the global lookup by "
         "default.",
         "Section 6 (Symbol interposition), the cell whose base binds to itself; "
         "Drepper's How To Write Shared Libraries, on binding to one's own definitions."),
        binds_to_itself),
]
