"""The Binder configuration, checked with repo2docker's own dry run (no Docker needed).

repo2docker falls back silently to a plain Python image when binder/environment.yml is a
broken symlink, and still exits 0; so the check reads the Dockerfile it would build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parent.parent


def dockerfile(repo: Path) -> str:
    r2d = Path(sys.executable).parent / "jupyter-repo2docker"
    proc = subprocess.run(
        [str(r2d), "--no-build", "--user-id", "1000", "--user-name", "jovyan", str(repo)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def binder_problems(repo: Path) -> list[str]:
    """What is wrong with ``repo``'s Binder set-up, from the Dockerfile repo2docker prints."""
    text = dockerfile(repo)
    problems = []
    if '--file "binder/environment.yml"' not in text:
        problems.append("the image does not install binder/environment.yml "
                        "(is the symlink to ../environment.yml broken?)")
    apt = (repo / "binder" / "apt.txt").read_text().split()
    install = next((line for line in text.splitlines() if "apt-get install --yes" in line
                    and "locales" not in line and "gettext-base" not in line), "")
    for package in apt:
        if package not in install:
            problems.append(f"apt package {package!r} is not installed by the image")
    if "RUN ./binder/postBuild" not in text:
        problems.append("binder/postBuild is not run")
    return problems


def test_repo2docker_uses_our_environment_apt_and_post_build() -> None:
    assert binder_problems(LAB) == []


def test_one_environment_for_kernel_and_server() -> None:
    text = dockerfile(LAB)
    assert "ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}" in text  # jupyterlab-rise is seen


@pytest.fixture
def broken_copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(LAB / "binder", repo / "binder", symlinks=True)
    shutil.copy(LAB / "environment.yml", repo / "environment.yml")
    (repo / "binder" / "environment.yml").unlink()
    os.symlink("../environment.yaml", repo / "binder" / "environment.yml")  # a typo
    return repo


def test_broken_symlink_is_caught(broken_copy: Path) -> None:
    problems = binder_problems(broken_copy)
    assert any("does not install binder/environment.yml" in p for p in problems)
