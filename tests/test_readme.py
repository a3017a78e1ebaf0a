"""The README tells the truth: its commands come first, its examples print what it says they
print, its Binder badge opens a notebook that exists, and its images are there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import labkit

README = (labkit.LAB_ROOT / "README.md").read_text()


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block, in order."""
    return re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def test_it_opens_with_the_two_set_up_commands() -> None:
    _, first = blocks()[0]
    assert README.index("```") < README.index("\n## ")
    assert [line.split()[:2] for line in first.splitlines()] == [["make", "lab"], ["make", "test"]]


def test_the_binder_badge_opens_the_start_page() -> None:
    links = re.findall(r"\(https://mybinder\.org/v2/gh/[^)]*\?urlpath=lab/tree/([^)]+)\)", README)
    assert links == ["notebooks/00-start-here.ipynb"]
    assert (labkit.LAB_ROOT / links[0]).is_file()


def test_every_image_and_linked_file_exists() -> None:
    targets = re.findall(r"\]\(((?:docs|notebooks)/[^)#]+)\)", README)
    assert "docs/lab-in-chromium.png" in targets and "docs/facilitator-guide.md" in targets
    assert [t for t in targets if not (labkit.LAB_ROOT / t).exists()] == []


def test_the_notebook_table_lists_every_notebook() -> None:
    listed = re.findall(r"^\| `(\d\d-[a-z0-9-]+)` \|", README, re.M)
    assert listed == [p.stem for p in sorted((labkit.LAB_ROOT / "notebooks").glob("*.ipynb"))]


@pytest.mark.parametrize("index", [0, 1], ids=["c-plugin", "rpc-plugin"])
def test_each_python_example_prints_what_the_readme_shows(index: int, tmp_path: Path) -> None:
    pairs = [(code, out) for (lang, code), (_, out) in zip(blocks(), blocks()[1:], strict=False)
             if lang == "python"]
    code, shown = pairs[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
