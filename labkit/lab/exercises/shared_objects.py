"""Exercises of notebook 01, shared objects: the learner builds libraries; the judges read
their ELF files and load them in child processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...inprocess.dlopen import load_fresh
from ...inspect.binutils import nm_dynamic
from ...inspect.elf import read_elf
from ...isolate import run as run_isolated
from .framework import Exercise, RefusedError
from .judging import built_file, require_exports, said, shown, snippet

_BUILD = "your build (what labkit.build_shared returned)"


def _public(path: Path) -> list[str]:
    return sorted(name for name in read_elf(path).exported if not name.startswith("_"))


def _areas(path: Path) -> list[float]:
    area = load_fresh(path).function("area_of_square", "double(double)")
    return [area(3.0), area(2.5)]


def area_of_square(answer: Any) -> str:
    path = built_file(answer, _BUILD)
    exported = _public(path)
    require_exports(path, ("area_of_circle", "area_of_square"), exported,
                    f" (it exports {exported}): the build should be SHAPES plus area_of_square")
    if "square" in exported:
        raise RefusedError(
            f"{shown(path)} exports square now ({exported}); in SHAPES it is private "
            "to the file, and it should stay so")
    outcome = run_isolated(_areas, path, timeout=30)
    if not outcome.ok:
        raise RefusedError(f"calling area_of_square in a child process: {said(outcome)}")
    if outcome.value != [9.0, 6.25]:
        raise RefusedError(f"area_of_square(3.0) and area_of_square(2.5) gave {outcome.value}, not "
                           "[9.0, 6.25]")
    return ("area_of_square is exported, square is not, and area_of_square gives 9.0 for 3.0 "
            "and 6.25 for 2.5")


def _count(path: Path) -> int:
    library = load_fresh(path)
    area = library.function("area_of_circle", "double(double)")
    area(1.0)
    area(2.0)
    return int(library.function("count_shapes", "int(void)")())


def hidden_counter(answer: Any) -> str:
    path = built_file(answer, _BUILD)
    dynamic = [name.split("@")[0] for _, name in nm_dynamic(path, defined_only=True)]
    if "area_of_circle" not in dynamic or "count_shapes" not in dynamic:
        raise RefusedError(
            f"nm -D lists {sorted(n for n in dynamic if not n.startswith('_'))}: "
            "build the whole of SHAPES, with area_of_circle and count_shapes exported")
    if "shapes_made" in dynamic:
        raise RefusedError(
            "nm -D still lists shapes_made: it is still in the dynamic symbol table, "
            "so any host or library can read and write it")
    outcome = run_isolated(_count, path, timeout=30)
    if not outcome.ok:
        raise RefusedError(f"calling area_of_circle twice, then count_shapes, in a child: "
                           f"{said(outcome)}")
    if outcome.value != 2:
        raise RefusedError(
            f"after two calls of area_of_circle, count_shapes() said {outcome.value}, "
            "not 2: the library's own code must still count")
    return ("nm -D lists area_of_circle and count_shapes but no shapes_made, and the library "
            "still counts: count_shapes() said 2 after two areas")


_LIFECYCLE = """
import labkit
print("@@host dlopen", flush=True)
library = labkit.load_fresh({path!r})
print("@@host dlclose", flush=True)
library.close()
print("@@host done", flush=True)
"""


def announces_itself(answer: Any) -> str:
    path = built_file(answer, _BUILD)
    outcome, _ = snippet(_LIFECYCLE.format(path=str(path.resolve())), timeout=30)
    if not outcome.ok:
        raise RefusedError(f"loading and closing it in a child process: {said(outcome)}")
    parts: dict[str, list[str]] = {"before": [], "dlopen": [], "dlclose": [], "done": []}
    where = "before"
    for line in outcome.stdout.splitlines():
        if line.startswith("@@host "):
            where = line.removeprefix("@@host ")
        elif line.strip():
            parts[where].append(line.strip())
    if not parts["dlopen"]:
        raise RefusedError("nothing was printed while dlopen ran (the host called none of its "
                           "functions): code that runs at load time is not called by anyone")
    if not parts["dlclose"]:
        late = f" (it printed {parts['done']} only at the process's exit)" if parts["done"] else ""
        raise RefusedError(
            f"dlopen printed {parts['dlopen']}, but nothing was printed while dlclose "
            f"ran{late}")
    return (f"while dlopen ran it printed {parts['dlopen'][0]!r}, while dlclose ran "
            f"{parts['dlclose'][-1]!r}, and the host called nothing")


EXERCISES = [
    Exercise(
        "01.1",
        "Build SHAPES with a new exported double area_of_square(double side) that reuses "
        "the static square.",
        ("Which word keeps square out of the dynamic symbol table? area_of_square needs "
         "the opposite.",
         "Section 4 (Dynamic symbols) for what a host can see, and section 1 for how "
         "SHAPES was built."),
        area_of_square),
    Exercise(
        "01.2",
        "Build SHAPES with shapes_made out of the dynamic symbol table, area_of_circle and "
        "count_shapes still working.",
        ("The library's own code must still reach shapes_made; only what leaves the file "
         "should change.",
         "Section 5 (Visibility: export what you mean); labkit.nm_dynamic shows what "
         "leaves the file."),
        hidden_counter),
    Exercise(
        "01.3",
        "Build a library that prints a line when it is loaded and another when it is "
        "unloaded, without being called.",
        ("The loader itself runs some of a library's code, at dlopen and at dlclose.",
         "Section 6 (Constructors and destructors): what goes into .init_array and "
         ".fini_array."),
        announces_itself),
]
