"""Every labkit function that takes a file says the same thing about a path that names no
file: one check (``paths.existing_file``), one wording, the role named when there is one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import labkit

#: A public function that takes a file, and the role it names the file by ("" for none).
TAKERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "read_elf": (labkit.read_elf, ""),
    "explain": (labkit.explain, ""),
    "go_info": (labkit.go_info, ""),
    "load": (labkit.load, ""),
    "build_shared": (lambda p: labkit.build_shared(p, "x"), "C source "),
    "load_wasm": (labkit.load_wasm, "WebAssembly module "),
    "PluginHost.install": (lambda p: labkit.PluginHost(p.parent).install("x", p),
                           "plugin file "),
}


@pytest.mark.parametrize("taker", TAKERS)
def test_a_missing_file_and_a_folder_read_the_same_everywhere(
    taker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    call, role = TAKERS[taker]
    (tmp_path / "folder").mkdir()
    errors = []
    for name in ("missing.so", "folder"):
        with pytest.raises(labkit.LabkitError) as info:
            call(Path(name))
        error = info.value
        if isinstance(error, labkit.LoadError):  # labkit.load says it in its diagnosis
            (problem,) = error.problems
            errors.append((problem.message, problem.fix))
        else:
            assert str(error) == f"{error.what}. Fix: {error.fix}"
            errors.append((error.what, error.fix))
    assert errors == [
        (f"{role}'missing.so' does not exist", "check the path, or build the file first"),
        (f"{role}'folder' is a directory, not a file", "name a file inside it"),
    ]
