"""The lab itself: which notebooks there are, in order, with their titles and times."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..paths import LAB_ROOT


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook of the lab: file name, title (its first heading) and time estimate."""

    file: str
    title: str
    minutes: int | None


def notebook_map(folder: Path | None = None) -> list[NotebookEntry]:
    """The numbered notebooks in ``notebooks/``, read from their first markdown cell."""
    folder = LAB_ROOT / "notebooks" if folder is None else folder
    entries = []
    for path in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        first = next((c for c in cells if c.get("cell_type") == "markdown"), None)
        text = "".join(first["source"]) if first else ""
        title = re.search(r"^#\s+(.+)$", text, re.M)
        minutes = re.search(r"(\d+)\s+minutes", text)
        entries.append(NotebookEntry(
            path.name, title[1].strip() if title else path.stem,
            int(minutes[1]) if minutes else None,
        ))
    return entries


def print_map(folder: Path | None = None) -> None:
    """Print the notebook map: a line per notebook with its time."""
    entries = notebook_map(folder)
    width = max((len(entry.file) for entry in entries), default=0)
    for entry in entries:
        time = f"{entry.minutes} min" if entry.minutes else ""
        print(f"{entry.file:<{width}} {time:>7}  {entry.title}")
