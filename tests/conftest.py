"""Shared fixtures: real files of every kind a learner (or a mistake) can hand labkit."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import labkit

HELLO_C = """
#include <stdio.h>
int counter = 0;
int add(int a, int b) { return a + b; }
int greet(const char *who) { counter++; return printf("hello, %s\\n", who); }
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current folder: builds land in ./build inside it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def unique() -> str:
    """A C comment that makes a source unique, so its build misses the cache."""
    return f"/* {uuid.uuid4().hex} */\n"


@pytest.fixture
def hello_so(workdir: Path) -> labkit.Artifact:
    return labkit.build_shared(HELLO_C, "hello")


@pytest.fixture(scope="session")
def aarch64_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aarch64")
    return labkit.build_shared(
        "int add(int a, int b) { return a + b; }\n", "arm", target="aarch64-linux-gnu",
        out_dir=out,
    ).path


@pytest.fixture(scope="session")
def musl_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("musl")
    return labkit.build_shared(
        "#include <stdio.h>\nint hi(void) { return puts(\"hi\"); }\n", "muslhi",
        target="x86_64-linux-musl", out_dir=out,
    ).path


def _bad_inputs(root: Path, real_so: Path) -> dict[str, Path]:
    text = root / "notes.so"
    text.write_text("this is a text file, not a library\n")
    empty = root / "empty.so"
    empty.write_bytes(b"")
    truncated = root / "truncated.so"
    truncated.write_bytes(real_so.read_bytes()[:600])
    tiny = root / "tiny.so"
    tiny.write_bytes(b"\x7fELF\x02\x01")
    folder = root / "folder.so"
    folder.mkdir()
    return {"text": text, "empty": empty, "truncated": truncated, "tiny": tiny,
            "directory": folder, "missing": root / "missing.so"}


@pytest.fixture
def bad(workdir: Path, hello_so: labkit.Artifact) -> dict[str, Path]:
    """Files that are not loadable libraries, by name: text, empty, truncated, tiny,
    directory, missing."""
    root = workdir / "bad"
    root.mkdir()
    return _bad_inputs(root, hello_so.path)


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, labkit.Sample]:
    """The sample plugins of plugins/c, built into a plugin folder of their own."""
    return labkit.build_samples(tmp_path_factory.mktemp("samples") / "plugins")


def run_cli(*args: str | Path, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m labkit ARGS`` as a user runs it, in a real child process."""
    return subprocess.run([sys.executable, "-m", "labkit", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


#: A child that explains argv[1] with host argv[2] twice and prints, each time, the verdict and
#: how often each file was opened so far (Python's audit hook sees every open).
COUNT_OPENS = """
import collections, os, sys
from pathlib import Path
import labkit
plugin, host = (Path(a).resolve() for a in sys.argv[1:3])
opened = collections.Counter()
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, os.PathLike)):
        opened[Path(args[0]).resolve()] += 1
sys.addaudithook(hook)
print(labkit.explain(plugin, host=host).ok, opened[plugin], opened[host])
print(labkit.explain(plugin, host=host).ok, opened[plugin], opened[host])
"""
