"""python -m labkit doctor and the command line, run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.lab.doctor import PACKAGES, pinned_packages, python_check, report

LAB = Path(__file__).resolve().parent.parent


def labkit_cli(*args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          cwd=LAB, env=env, timeout=timeout)


def test_doctor_passes_after_setup() -> None:
    proc = labkit_cli("doctor")
    assert proc.returncode == 0, proc.stdout
    assert "MISSING" not in proc.stdout
    for name in ("cc", "c++", "zig", "go", "cgo", "abidiff", "readelf"):
        assert f"] {name} " in proc.stdout
    # the pinned packages that match share a few lines, each with its pinned version
    packages = proc.stdout.split("] packages ", 1)[1]
    for name, version in pinned_packages().items():
        if name in PACKAGES:
            assert f"{name} {version}" in " ".join(packages.split()), name
    assert proc.stdout.rstrip().endswith("checks passed: the lab is ready.")


#: A child that cannot import one module (as if its package were not installed), then runs
#: ``python -m labkit doctor``.
BLOCKED_DOCTOR = """\
import runpy, sys
blocked = sys.argv[1]
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == blocked or name.startswith(blocked + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
sys.argv = ["labkit", "doctor"]
runpy.run_module("labkit", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("package", [name for name, module in PACKAGES.items() if module])
def test_doctor_runs_and_names_the_fix_when_a_package_cannot_be_imported(package: str) -> None:
    module = PACKAGES[package]
    assert module is not None
    proc = subprocess.run([sys.executable, "-c", BLOCKED_DOCTOR, module], capture_output=True,
                          text=True, cwd=LAB, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"[MISSING] {package} " in proc.stdout
    assert f"Python cannot import {module!r}" in proc.stdout
    assert f"pip install {package}=={pinned_packages()[package]}`" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"checks failed: {package}.")


def test_doctor_checks_every_package_pinned_for_the_lab() -> None:
    text = (LAB / "environment.yml").read_text()
    lab_part = text[text.index("- pip:"):text.index("# tests and checks")]
    pinned = {line.split("==")[0].strip(" -") for line in lab_part.splitlines() if "==" in line}
    assert pinned and pinned <= set(PACKAGES), pinned - set(PACKAGES)


def test_doctor_names_the_fix_and_exits_1(tmp_path: Path) -> None:
    # a PATH with cc, c++ and go but without abidiff, readelf or nm
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cc", "gcc", "c++", "g++", "as", "ld"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if real:
            os.symlink(real, bin_dir / tool)
    env = dict(os.environ, PATH=str(bin_dir))
    proc = labkit_cli("doctor", env=env)
    assert proc.returncode == 1
    assert "[MISSING] abidiff" in proc.stdout
    assert "fix: install libabigail's tools: `apt-get install abigail-tools`" in proc.stdout
    assert "checks failed: abidiff, readelf, nm." in proc.stdout


def test_doctor_says_when_cpp_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cc", "gcc", "as", "ld", "abidiff", "readelf", "nm"):
        real = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if real:
            os.symlink(real, bin_dir / tool)
    proc = labkit_cli("doctor", env=dict(os.environ, PATH=str(bin_dir)))
    assert proc.returncode == 1
    assert "[MISSING] c++ " in proc.stdout and "[ok     ] cc " in proc.stdout
    assert "fix: install a C++ compiler: `apt-get install g++`" in proc.stdout


def test_usage_errors_exit_2() -> None:
    assert labkit_cli().returncode == 2
    proc = labkit_cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_warm_builds_what_binder_pre_builds() -> None:
    """binder/postBuild runs this; a failure here would fail the Binder image build."""
    proc = labkit_cli("warm", timeout=900)  # cold, musl's Go runtime alone takes ~90 s
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = ["C for this machine:", "C for aarch64-linux-gnu:", "C for wasm32-freestanding:",
             "the sample plugins of plugins/c:", "Go registry hosts:",
             "the Go host exercise 05.3's check builds:",
             "the Extism plugin (go-pdk fetched, built for wasip1, compiled by wasmtime):"]
    lines += [f"Go sample {name}:" for name in labkit.GO_SAMPLES]
    for line in lines:
        assert line in proc.stdout


@pytest.mark.parametrize(("version", "mark", "ok"), [
    ((3, 11, 7), "ok ", True),
    ((3, 13, 5), "ok ", True),
    ((3, 12, 3), "warning", True),
    ((3, 14, 0), "warning", True),
    ((3, 10, 12), "MISSING", False),
], ids=["3.11", "3.13", "3.12", "3.14", "3.10"])
def test_python_versions(version: tuple[int, int, int], mark: str, ok: bool) -> None:
    """Tested versions pass, an untested newer one passes with a note, an older one fails;
    the line reads the same on every tested version (nbval sanitizes the version)."""
    check = python_check(version)
    assert check.ok is ok and check.name == "python"
    text = report([check])
    assert text.splitlines()[1].startswith(f"  [{mark:7}] python  Python {'.'.join(map(str, version))}")
    if mark == "warning":
        assert "note: the lab is tested on Python 3.11 and 3.13, not on" in text
        assert text.endswith("with a warning for python: the lab should work; see the note.")
    elif not ok:
        assert "fix: use Python 3.11 or 3.13 (`make clean lab PYTHON=python3.13`" in text and "1 of 1 checks failed: python." in text
    else:
        assert text.endswith("All 1 checks passed: the lab is ready.")


def test_drop_toolchain_removes_one_release_from_the_module_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout GOTOOLCHAIN leaves (read-only files, as the go command makes them): the
    release asked for goes, another stays."""
    from labkit.lab.warm import drop_toolchain
    from labkit.toolchain import go_env

    monkeypatch.setenv("GOMODCACHE", str(tmp_path))
    host = go_env("GOHOSTOS", "GOHOSTARCH")
    for release in ("go1.26.0", "go1.25.0"):
        name = f"v0.0.1-{release}.{host['GOHOSTOS']}-{host['GOHOSTARCH']}"
        tree = tmp_path / f"golang.org/toolchain@{name}" / "bin"
        tree.mkdir(parents=True)
        (tree / "go").write_bytes(b"\0" * 100_000)
        download = tmp_path / "cache/download/golang.org/toolchain/@v"
        download.mkdir(parents=True, exist_ok=True)
        for suffix in ("zip", "ziphash", "info", "mod"):
            (download / f"{name}.{suffix}").write_text(release)
        for path in (tree / "go", tree, tree.parent):
            path.chmod(0o555 if path.is_dir() else 0o444)
    assert drop_toolchain("go1.26.0") >= 100_000
    left = sorted(p.name for p in tmp_path.rglob("*") if "go1.26.0" in p.name)
    assert left == []
    assert len([p for p in tmp_path.rglob("*") if "go1.25.0" in p.name]) == 5
    assert drop_toolchain("go1.26.0") == 0  # nothing left to remove
