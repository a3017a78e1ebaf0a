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

from tests.portable.dockerfile import parse
from tests.portable.run import CONDA_BASE, CONDA_ENV, POST_BUILD, _leftovers

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


def test_the_portable_run_replays_the_dockerfile_as_binder_builds_it() -> None:
    """tests/portable replays repo2docker's Dockerfile: each step must get the user, folder and
    environment the image build gives it, read from the Dockerfile, not from this machine."""
    build = parse(dockerfile(LAB), {"NB_USER": "jovyan", "NB_UID": "1000"})
    post_build = build.step(POST_BUILD)
    assert (post_build.user, post_build.workdir) == ("jovyan", "/home/jovyan")
    env = post_build.env
    assert env["HOME"] == env["REPO_DIR"] == "/home/jovyan"
    assert env["PATH"].split(":")[:3] == ["/home/jovyan/.local/bin", "/home/jovyan/.local/bin",
                                          "/srv/conda/envs/notebook/bin"]
    assert env["PATH"].endswith(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    assert env["LC_ALL"] == "en_US.UTF-8" and env["NB_PYTHON_PREFIX"] == "/srv/conda/envs/notebook"
    assert "PYTHONUNBUFFERED" not in env  # set after postBuild: the bug it once hid
    assert build.image_env["PYTHONUNBUFFERED"] == "1"
    apt = build.step(r"apt-get install --yes --no-install-recommends abigail-tools")
    assert apt.user == "root"
    for pattern in (CONDA_BASE, CONDA_ENV):  # the steps make setup stands for are still there
        assert build.step(pattern).instruction == "RUN"


def test_dockerfile_reading_follows_docker_rules() -> None:
    text = ("FROM x\nARG A\nARG B=${A}-b\nENV C=${B} \\\n    D=\"two words\"\n"
            "# a comment\nENV E=${C}/e F=${E}\nENV G old form\nUSER ${A}\nWORKDIR /w/${C}\n"
            "RUN echo \\\n  hi\n")
    build = parse(text, {"A": "a"})
    (run,) = build.steps
    assert run.argument == "echo   hi" and run.user == "a" and run.workdir == "/w/a-b"
    assert run.env["C"] == "a-b" and run.env["D"] == "two words" and run.env["G"] == "old form"
    assert run.env["E"] == "a-b/e" and run.env["F"] == ""  # one ENV sees the values before it
    assert "A" in run.env and "A" not in build.image_env  # ARG reaches RUN, not the image


def test_post_build_passes_with_only_path_and_home() -> None:
    """postBuild runs before the image sets PYTHONUNBUFFERED. With `jupyter ... | grep -q`
    under pipefail it failed two builds in three that way (jupyter exited 120 on the closed
    pipe); three clean runs in a row here."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": os.environ["HOME"]}
    for attempt in range(3):
        done = subprocess.run(["binder/postBuild"], cwd=LAB, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, (attempt, done.stdout[-3000:], done.stderr[-3000:])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root, as the portable run does")
def test_the_portable_run_sees_a_mount_it_would_leave_behind(tmp_path: Path) -> None:
    """A mount left under the run's folder is reported, and the folder is then kept: deleting
    a tree with /dev bound inside would delete the machine's /dev."""
    dev = tmp_path / "root" / "dev"
    dev.mkdir(parents=True)
    assert _leftovers(tmp_path) == []
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(dev)], check=True)
    try:
        assert _leftovers(tmp_path) == [f"mount {dev}"]
    finally:
        subprocess.run(["umount", str(dev)], check=True)
    assert _leftovers(tmp_path) == []
