"""The one build cache: C and wasm builds, Go builds and the protobuf stubs all go through it.

A build is keyed by a digest of everything that decides its output (:func:`key`); its result
lives in the cache folder ``<cache>/<kind>/<key[:2]>/<key>/``, published there in one rename
(:func:`publish`) so a reader never sees half a result, and copied out to where the user asked
for it (:func:`install`). A failed build gets its fix from the tool's own words (:func:`hint`).
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..paths import cache_dir


def key(*material: object) -> str:
    """The cache key of a build: a digest of ``material`` (anything JSON can write)."""
    text = json.dumps(list(material), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    """The digest of a file's bytes, or ``"missing"`` when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def source_files(root: Path, suffixes: tuple[str, ...], *, nested_marker: str) -> list[Path]:
    """The files under ``root`` that can change a build: those ending in ``suffixes``, in
    sorted order, without hidden folders, ``_`` folders, ``testdata`` or folders holding
    ``nested_marker`` (a nested Go module's ``go.mod``)."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_"))
                         and d != "testdata" and not (here / d / nested_marker).exists())
        found += [here / n for n in sorted(names) if n.endswith(suffixes)]
    return found


def entry(kind: str, build_key: str) -> Path:
    """The folder of one build's result in the cache (it may not exist yet)."""
    return cache_dir() / kind / build_key[:2] / build_key


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A scratch folder inside the cache, on its file system, so :func:`publish` renames."""
    root = cache_dir() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as work:
        yield Path(work)


def publish(staged: Path, folder: Path, expected: Path) -> None:
    """Move a finished build's folder ``staged`` into the cache as ``folder`` in one rename,
    so a reader never sees half a result. If a concurrent build got there first, its result
    stands, but only if it finished (``expected`` exists)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged, folder)
    except OSError:
        if not expected.exists():
            raise


def install(cached: Path, out: Path) -> None:
    """Copy the cached file to ``out`` unless it already holds the same bytes; the copy is
    renamed into place, so a process that has the old file mapped keeps its own copy."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and filecmp.cmp(cached, out, shallow=False):
        return
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.copy2(cached, tmp)
    os.replace(tmp, out)


def hint(stderr: str, shown: str, hints: Sequence[tuple[str, str]], fallback: str,
         first_line: str = "error") -> tuple[str, str]:
    """The line of a failed build that says what went wrong, and its fix: the first of
    ``hints`` (a message, its fix) whose message the tool printed, else ``fallback`` and the
    first line of ``shown`` (the tool's output as the user reads it) that holds
    ``first_line`` (any line when it is empty)."""
    lines = shown.splitlines()
    for needle, fix in hints:
        if needle in stderr:
            return next((line for line in lines if needle in line), needle).strip(), fix
    diagnosis = next((line for line in lines if first_line in line), lines[0] if lines else "")
    return diagnosis.strip(), fallback
