"""Setting up the class hub's folder (``make hub``, ``make test-hub``), as root:

- ``venv/``: a Python every learner can run (the system's, not a per-user one under
  ``/root``), with environment.yml's packages and ``deploy/hub/requirements.txt``;
- ``proxy/``: configurable-http-proxy from npm, at ``deploy/hub/package-lock.json``'s pins;
- ``lab/``: the files git tracks in this checkout, the template of every learner's copy;
- ``template-home/``: the caches ``labkit warm`` fills with the hub's own tools, which every
  learner starts from (``LABHUB_WARM=0`` leaves them empty: learners build on first use);
- ``state/``: the hub's database, secrets and logs.

The Python and the proxy are skipped when their pins have not changed since the last
set-up; the lab is copied again each time, and ``labkit warm`` finds its caches done.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError, ToolchainError
from ..lab.doctor import pinned_packages
from ..paths import LAB_ROOT
from .settings import HubSettings

DEPLOY = LAB_ROOT / "deploy" / "hub"
#: Where a Python every user can run usually is; the first that exists is used.
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def pip_requirements() -> list[str]:
    """environment.yml's pins (as the doctor reads them) and the hub's own."""
    hub = (DEPLOY / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return ([f"{name}=={version}" for name, version in pinned_packages().items()]
            + [line.strip() for line in hub if line.strip() and not line.startswith("#")])


def system_python() -> str:
    """A python3 whose path every user can read and run."""
    for candidate in SYSTEM_PYTHONS:
        real = Path(candidate).resolve()
        if real.is_file() and _everyone_reaches(real):
            return candidate
    raise ToolchainError("python3", "no python3 that every user can run (tried "
                         f"{', '.join(SYSTEM_PYTHONS)})",
                         fix="install Debian's python3 and python3-venv")


def _everyone_reaches(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _stamp(folder: Path, name: str, material: str) -> tuple[Path, bool]:
    """The stamp file of a step and whether it is current for ``material``."""
    digest = hashlib.sha256(material.encode()).hexdigest()
    stamp = folder / f".{name}.stamp"
    return stamp, stamp.exists() and stamp.read_text() == digest


def _write_stamp(stamp: Path, material: str) -> None:
    stamp.write_text(hashlib.sha256(material.encode()).hexdigest())


def set_up(settings: HubSettings, say: Callable[[str], None] = print) -> None:
    """Make or refresh every part of the hub's folder."""
    if os.geteuid() != 0:
        raise InputError("the class hub creates a Unix user per learner, so its set-up runs "
                         "as root", fix="run `sudo make hub` (or test-hub)")
    folder = settings.folder
    for part in (folder, settings.state, settings.template_home):
        part.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    settings.state.chmod(0o700)
    settings.template_home.chmod(0o755)
    _venv(settings, say)
    _proxy(settings, say)
    _lab(settings, say)
    if settings.warm:
        _warm(settings, say)


def _venv(settings: HubSettings, say: Callable[[str], None]) -> None:
    requirements = "\n".join(pip_requirements())
    python = system_python()
    stamp, current = _stamp(settings.folder, "venv", python + requirements)
    if current and (settings.venv / "bin" / "jupyterhub").exists():
        return
    say(f"the hub's Python ({python}, {len(requirements.splitlines())} pinned packages)")
    if not (settings.venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(settings.venv)], check=True)
    listed = settings.folder / "requirements.txt"
    listed.write_text(requirements + "\n")
    pip = [str(settings.venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(listed)], check=True)
    _write_stamp(stamp, python + requirements)


def _proxy(settings: HubSettings, say: Callable[[str], None]) -> None:
    lock = (DEPLOY / "package-lock.json").read_text()
    folder = settings.folder / "proxy"
    folder.mkdir(exist_ok=True)
    stamp, current = _stamp(settings.folder, "proxy", lock)
    if current and settings.proxy.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ToolchainError("npm", "npm is not installed; the hub's proxy comes from npm",
                             fix="install Debian's npm (and nodejs 20 or later)")
    say("configurable-http-proxy from npm")
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(DEPLOY / name, folder / name)
    subprocess.run([npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=folder, check=True)
    _write_stamp(stamp, lock)


def _lab(settings: HubSettings, say: Callable[[str], None]) -> None:
    """Copy what git tracks into the template (the working tree's version of each file)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=LAB_ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    fresh = settings.folder / "lab.new"
    shutil.rmtree(fresh, ignore_errors=True)
    for name in filter(None, files):
        source = LAB_ROOT / name
        if source.is_file():
            target = fresh / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(fresh)], check=True)
    shutil.rmtree(settings.lab, ignore_errors=True)
    fresh.rename(settings.lab)
    say(f"the lab's template copy: {len([f for f in files if f])} files")


def _warm(settings: HubSettings, say: Callable[[str], None]) -> None:
    """``labkit warm`` with the hub's own Python and tools, into the template's home."""
    home = settings.template_home
    say("the template's caches (labkit warm, with the hub's tools)")
    env = {"PATH": f"{settings.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "LANG": "C.UTF-8", "PYTHONPATH": str(settings.lab)}
    subprocess.run([str(settings.venv / "bin" / "python"), "-m", "labkit", "warm"],
                   cwd=settings.lab, env=env, check=True, stdout=sys.stdout)
    subprocess.run(["chmod", "-R", "a+rX", str(home)], check=True)
