"""The notebooks as files: names, slide metadata, executed in order, portable outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import labkit

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}


def load(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text(encoding="utf-8"))


def announced() -> set[int]:
    """The notebook numbers 00-start-here announces as coming next: "... (06) ..."."""
    cells = load(NOTEBOOKS[0])["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
                   and "".join(c["source"]).startswith("Coming next"))
    return {int(n) for n in re.findall(r"\((\d\d)\)", text)}


def test_numbered_from_00_with_only_announced_gaps() -> None:
    """Issues land notebooks out of order (07 before 06); a gap is allowed only where the
    start page tells the learner that notebook is coming, and nothing written is announced."""
    names = [p.name for p in NOTEBOOKS]
    assert names[0] == "00-start-here.ipynb"
    assert all(re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", n) for n in names), names
    numbers = [int(n[:2]) for n in names]
    assert len(set(numbers)) == len(numbers), names
    gaps = set(range(max(numbers) + 1)) - set(numbers)
    assert gaps <= announced(), f"notebooks {sorted(gaps)} are missing and not announced"
    assert not announced() & set(numbers), "00-start-here announces a notebook that exists"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_is_a_slide_part(path: Path) -> None:
    cells = load(path)["cells"]
    kinds = [c["metadata"].get("slideshow", {}).get("slide_type") for c in cells]
    assert all(k in SLIDE_TYPES for k in kinds), kinds
    assert kinds[0] == "slide"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ran_in_order_from_a_fresh_kernel(path: Path) -> None:
    code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert errors == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_hold_no_machine_paths(path: Path) -> None:
    text = json.dumps([c.get("outputs", []) for c in load(path)["cells"]])
    for leak in ("/tmp/", "/root/", "/home/", str(labkit.LAB_ROOT)):
        assert leak not in text, f"{path.name} stores {leak!r} in an output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shape_title_goals_time_summary(path: Path) -> None:
    cells = load(path)["cells"]
    first = "".join(cells[0]["source"])
    assert first.startswith("# ") and re.search(r"\*\*Time:\*\* \d+ minutes", first)
    assert any("## What just happened" in "".join(c["source"]) for c in cells)


def test_the_map_lists_every_notebook() -> None:
    assert [e.file for e in labkit.notebook_map()] == [p.name for p in NOTEBOOKS]
    assert all(e.minutes for e in labkit.notebook_map())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_cell_that_says_its_output_is_ignored_is_ignored_by_nbval(path: Path) -> None:
    """The "# nbval-ignore-output: why" comment explains; nbval only obeys the cell tag."""
    for cell in load(path)["cells"]:
        source = "".join(cell["source"])
        says = source.startswith("# nbval-ignore-output:")
        tagged = "nbval-ignore-output" in cell["metadata"].get("tags", [])
        assert says == tagged, source[:80]


SOLUTIONS = sorted((NOTEBOOKS[0].parent / "solutions").glob("*.ipynb"))


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(source, stored stdout) of each code cell."""
    return [("".join(c["source"]),
             "".join("".join(o.get("text", "")) for o in c["outputs"] if o.get("name") == "stdout"))
            for c in load(path)["cells"] if c["cell_type"] == "code"]


def exercise_cells(number: str) -> list[dict]:  # type: ignore[type-arg]
    """The Exercises cells of notebook ``number``: the markdown ``cex-NN``, then the stubs
    ``exNNK``."""
    notebook = next(p for p in NOTEBOOKS if p.name.startswith(number))
    cells = load(notebook)["cells"]
    ids = [cell.get("id", "") for cell in cells]
    assert f"cex-{number}" in ids, f"{notebook.name} has no Exercises cell cex-{number}"
    start = ids.index(f"cex-{number}")
    return [cells[start], *(c for c in cells[start + 1:] if c.get("id", "").startswith(f"ex{number}"))]


def stub_output(cell: dict) -> str:  # type: ignore[type-arg]
    """What a stub printed from a fresh kernel, as stored: the question and the first hint."""
    stored = "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                     if o.get("name") == "stdout")
    assert stored, f"stub {cell.get('id')} has no stored output: run `make notebooks`"
    return stored


@pytest.mark.parametrize("exercise", sorted(labkit.EXERCISES))
def test_every_exercise_has_a_stub_in_its_notebook_and_a_passing_solution(exercise: str) -> None:
    notebook = next(p for p in NOTEBOOKS if p.name.startswith(exercise[:2]))
    stubs = [c for c in exercise_cells(exercise[:2])
             if c["cell_type"] == "code" and f'labkit.check("{exercise}", answer)' in "".join(c["source"])]
    assert len(stubs) == 1 and "".join(stubs[0]["source"]).startswith(f"answer = ...  # {exercise}: ")
    assert stub_output(stubs[0]).startswith(f"❌ {exercise} not yet: no answer yet")
    solution = NOTEBOOKS[0].parent / "solutions" / f"{notebook.stem}-solutions.ipynb"
    passed = [out for src, out in code_cells(solution) if f'labkit.check("{exercise}"' in src]
    assert len(passed) == 1 and f"✅ {exercise} passed" in passed[0], passed


@pytest.mark.parametrize("number", [*(f"{n:02d}" for n in range(1, 10)), "12"])
def test_exercise_cells_are_slides_that_list_every_exercise(number: str) -> None:
    cells = exercise_cells(number)
    markdown, stubs = cells[0], cells[1:]
    assert (markdown["cell_type"], markdown["id"]) == ("markdown", f"cex-{number}")
    assert markdown["metadata"] == {"slideshow": {"slide_type": "subslide"}}
    text = "".join(markdown["source"])
    assert text.startswith("## Exercises\n")
    ids = sorted(e for e in labkit.EXERCISES if e.startswith(f"{number}."))
    assert [re.findall(r"\*\*(\d\d\.\d)\*\*", text)] == [ids]
    assert [c["id"] for c in stubs] == [f"ex{e.replace('.', '')}" for e in ids]
    assert all(c["cell_type"] == "code" and c["metadata"].get("slideshow") == {"slide_type": "-"}
               for c in stubs)
    executed = [dict(c, outputs=[{"output_type": "stream", "name": "stdout",
                                  "text": stub_output(c)}]) for c in stubs]
    lines = sum(rendered_lines(c) for c in [markdown, *executed])
    assert lines <= SLIDE_LINES, f"the Exercises slide takes {lines} lines"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_are_slides_that_ran_in_order(path: Path) -> None:
    test_every_cell_is_a_slide_part(path)
    test_ran_in_order_from_a_fresh_kernel(path)
    test_outputs_hold_no_machine_paths(path)
    assert path.name.replace("-solutions", "") in [p.name for p in NOTEBOOKS]


#: A slide is 1280x720. JupyterLab sets text at 14 px and code at 13 px with a line height of
#: about 1.5 and 1.3, so about 34 lines fit once the slide's margins are taken off.
SLIDE_LINES = 34
TEXT_WIDTH, OUTPUT_WIDTH = 100, 110  # characters per line before the browser wraps


def rendered_lines(cell: dict) -> int:  # type: ignore[type-arg]
    """How many lines of the slide a cell takes, as JupyterLab draws it."""
    def wrapped(text: str, width: int) -> int:
        return sum(max(1, -(-len(line) // width)) for line in text.splitlines())

    source = "".join(cell["source"])
    if cell["cell_type"] == "markdown":
        return wrapped(source, TEXT_WIDTH) + source.count("\n#") + source.startswith("#")
    lines = wrapped(source, TEXT_WIDTH) + 1
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "text" in output:
            lines += wrapped("".join(output["text"]), OUTPUT_WIDTH)
        elif "application/vnd.jupyter.widget-view+json" in data:
            lines += 2
        elif "image/png" in data:
            lines += 16
        elif "text/plain" in data:
            lines += wrapped("".join(data["text/plain"]), OUTPUT_WIDTH)
    return lines


def slides(path: Path) -> list[tuple[str, int]]:
    """(first line, lines) of each slide and subslide; notes and skipped cells take none."""
    found: list[tuple[str, int]] = []
    for cell in load(path)["cells"]:
        kind = cell["metadata"].get("slideshow", {}).get("slide_type", "-")
        if kind in ("notes", "skip"):
            continue
        if kind in ("slide", "subslide") or not found:
            found.append(("".join(cell["source"]).split("\n")[0][:60], 0))
        title, lines = found[-1]
        found[-1] = (title, lines + rendered_lines(cell))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.stem)
def test_every_slide_fits_1280x720(path: Path) -> None:
    too_long = [(title, lines) for title, lines in slides(path) if lines > SLIDE_LINES]
    assert too_long == [], f"slides longer than {SLIDE_LINES} lines: {too_long}"
