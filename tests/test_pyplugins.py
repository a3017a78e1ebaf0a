"""Python plugins through entry points and pluggy, with a package really installed by pip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import labkit

DISCOVER = """
import sys
sys.path.insert(0, {target!r})
import labkit
found = labkit.transformers()
print(sorted(found), found["shout"]().transform("hi"))
print(labkit.plugin_manager().hook.transform(text="hi"))
"""


def test_installed_plugin_is_discovered_by_a_fresh_process(workdir: Path) -> None:
    installed = labkit.install_plugin("labplug_shout", workdir / "site")
    assert installed.name == "labplug-shout" and installed.version == "1.0.0"
    assert "pluginlab.transformers: shout = labplug_shout:Shout" in installed.entry_points
    assert "pluginlab: shout = labplug_shout.hooks" in installed.entry_points
    assert not (labkit.PLUGINS_PY / "labplug_shout" / "build").exists()  # source left clean
    outcome = labkit.run_isolated(DISCOVER.format(target=str(workdir / "site")))
    assert outcome.ok, outcome.stderr
    assert outcome.stdout.splitlines() == ["['shout'] HI!", "['HI!']"]


def test_nothing_is_found_before_installing() -> None:
    code = "import labkit; print(labkit.transformers(), labkit.plugin_manager().hook.transform(text='x'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "{} []"


def test_broken_entry_point_is_named(workdir: Path) -> None:
    package = workdir / "broken"
    (package / "src" / "broken_plugin").mkdir(parents=True)
    (package / "src" / "broken_plugin" / "__init__.py").write_text("")
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "broken-plugin"\nversion = "0.1"\n'
        '[project.entry-points."labtest.broken"]\nghost = "broken_plugin:Missing"\n'
    )
    labkit.install_plugin(package, workdir / "site")
    with pytest.raises(labkit.InputError, match=r"'ghost' = 'broken_plugin:Missing'.*AttributeError"):
        labkit.transformers("labtest.broken")


def test_not_a_package_is_refused(workdir: Path) -> None:
    with pytest.raises(labkit.InputError, match=r"\(no pyproject\.toml\)\nFix: use one of labplug_shout"):
        labkit.install_plugin("nothing_here")


def test_pip_failure_keeps_pips_words(workdir: Path) -> None:
    package = workdir / "bad"
    package.mkdir()
    (package / "pyproject.toml").write_text("[project]\nname = \n")
    with pytest.raises(labkit.BuildError, match="pip could not install") as info:
        labkit.install_plugin(package, workdir / "site")
    assert info.value.returncode != 0 and info.value.stderr
