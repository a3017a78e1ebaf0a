"""Python's own plugin mechanisms: entry points and pluggy, with a real installed package.

A Python plugin is a distribution that declares *entry points*: named objects in a group
(``pluginlab.transformers``) that any program can list with :mod:`importlib.metadata`
without importing anything. :func:`install_plugin` installs a plugin package from
``plugins/python/`` offline into a private folder (``build/python``) and puts that folder
on ``sys.path``, so the running kernel discovers it at once; :func:`transformers` lists
and loads the group; :func:`plugin_manager` is a pluggy host whose hook ``transform`` the
installed plugins implement (pluggy is what pytest's own plugins use).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BuildError, InputError
from ..paths import PLUGINS_PY, show, tidy

#: The entry point group a transformer plugin declares.
GROUP = "pluginlab.transformers"

#: The project name of the pluggy host: the hook markers and the entry point group.
PLUGGY_PROJECT = "pluginlab"


@dataclass(frozen=True)
class Installed:
    """A plugin distribution installed by :func:`install_plugin`."""

    name: str
    version: str
    folder: Path
    entry_points: tuple[str, ...]  # "group: name = module:object"

    def __str__(self) -> str:
        lines = [f"installed {self.name} {self.version} into {show(self.folder)}"]
        lines += [f"  entry point {ep}" for ep in self.entry_points]
        return "\n".join(lines)


def install_plugin(
    package: str | os.PathLike[str], target: str | os.PathLike[str] = "build/python"
) -> Installed:
    """Install a plugin package (a folder with ``pyproject.toml``) into ``target`` with pip,
    offline and without dependencies, and make ``target`` importable in this process.

    ``package`` is a folder, or the name of one in ``plugins/python/``. Raises
    :class:`~labkit.errors.BuildError` with pip's output when pip fails.
    """
    folder = Path(package)
    if not folder.is_absolute() and not folder.exists():
        folder = PLUGINS_PY / folder
    if not (folder / "pyproject.toml").is_file():
        choices = ", ".join(sorted(p.parent.name for p in PLUGINS_PY.glob("*/pyproject.toml")))
        raise InputError(f"{show(folder)!r} is not a Python package (no pyproject.toml)",
                         fix=f"use one of {choices}", path=folder)
    dest = Path(target).resolve()
    with tempfile.TemporaryDirectory() as work:  # setuptools writes build/ beside the source
        copy = Path(work) / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                   "--no-index", "--no-build-isolation", "--upgrade", "--target", str(dest),
                   str(copy)]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              check=False, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if proc.returncode != 0:
        raise BuildError(
            f"pip could not install {show(folder)!r} (exit status {proc.returncode}).\n"
            f"{tidy(proc.stderr or proc.stdout).strip()}", fix="check its pyproject.toml; the "
            "build backend (setuptools) must be installed, since this runs offline",
            source=str(folder), command=command, returncode=proc.returncode,
            stderr=proc.stderr,
        )
    if str(dest) not in sys.path:
        sys.path.insert(0, str(dest))
    importlib.invalidate_caches()
    dist = _distribution_in(dest, folder)
    return Installed(dist.metadata["Name"], dist.version, dest,
                     tuple(f"{ep.group}: {ep.name} = {ep.value}" for ep in dist.entry_points))


def transformers(group: str = GROUP) -> dict[str, Any]:
    """Every entry point of ``group`` in this process, loaded: ``{name: object}``.

    Listing costs no import; loading imports each plugin's module. A plugin that fails to
    load is reported by name with its error, not skipped.
    """
    found: dict[str, Any] = {}
    for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must be named, not hidden
            raise InputError(
                f"the entry point {ep.name!r} = {ep.value!r} of group {group!r} does not "
                f"load: {type(exc).__name__}: {exc}", fix="reinstall or remove its "
                "distribution"
            ) from exc
    return found


def plugin_manager(load_installed: bool = True) -> Any:
    """A pluggy ``PluginManager`` for the project ``pluginlab`` with one hook,
    ``transform(text) -> str``; with ``load_installed``, every distribution declaring the
    ``pluginlab`` entry point group is registered."""
    import pluggy

    spec = pluggy.HookspecMarker(PLUGGY_PROJECT)

    class Spec:
        """The host's hook specification."""

        @spec
        def transform(self, text: str) -> str:  # type: ignore[empty-body]
            """Transform ``text``; every registered plugin answers."""

    manager = pluggy.PluginManager(PLUGGY_PROJECT)
    manager.add_hookspecs(Spec)
    if load_installed:
        manager.load_setuptools_entrypoints(PLUGGY_PROJECT)
    return manager


def _distribution_in(dest: Path, folder: Path) -> importlib.metadata.Distribution:
    import tomllib

    name = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"]
    for dist in importlib.metadata.distributions(path=[str(dest)]):
        if _normal(dist.metadata["Name"]) == _normal(name):
            return dist
    raise InputError(f"pip installed {show(folder)!r} but no distribution {name!r} is in "
                     f"{show(dest)!r}", fix="check the project name in its pyproject.toml")


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
