"""``import labkit`` is cheap and needs no third-party package: every public name loads its
module on first use, in a fresh process each time here."""

from __future__ import annotations

import subprocess
import sys

import labkit

#: What a lesson may never need: none of these may load with ``import labkit``.
HEAVY = ("grpc", "wasmtime", "extism", "IPython", "ipywidgets", "pandas", "matplotlib", "google.protobuf")


def child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


def test_import_labkit_loads_no_third_party_package() -> None:
    loaded = child("import sys, labkit\n"
                   f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded == "[]"


def test_each_public_name_loads_only_when_used() -> None:
    loaded = child("import sys, labkit\n"
                   "labkit.build_shared\n"
                   f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded == "[]"  # building C needs neither gRPC nor wasmtime
    assert child("import sys, labkit\nlabkit.load_wasm\nprint('wasmtime' in sys.modules)") == "True"


def test_every_name_of_all_resolves() -> None:
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None, name
    assert set(labkit.__all__) <= set(dir(labkit))


def test_importing_every_module_leaves_every_public_name_as_it_was() -> None:
    """Importing ``labkit.X`` binds ``X`` on the package: no module may share a public name
    (``labkit.explain`` and ``labkit.load`` are functions)."""
    said = child("import importlib, pkgutil, labkit\n"
                 "for m in pkgutil.walk_packages(labkit.__path__, 'labkit.'):\n"
                 "    if m.name != 'labkit.__main__': importlib.import_module(m.name)\n"
                 "wrong = [n for n, (mod, attr) in labkit._LAZY.items() if getattr(labkit, n) is not\n"
                 "         (getattr(importlib.import_module(mod, 'labkit'), attr) if attr else\n"
                 "          importlib.import_module(mod, 'labkit'))]\n"
                 "print(wrong, callable(labkit.explain), type(labkit.load).__name__)")
    assert said == "[] True function"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        labkit.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no attribute 'no_such_name'" in str(error)
    else:
        raise AssertionError("labkit.no_such_name resolved")


def test_no_module_reaches_into_another_s_private_names() -> None:
    """Each module's public names are its interface: ``from .build import _install`` is how
    two copies of one thing grow apart. Aliasing a name to a private one is allowed."""
    import ast
    from pathlib import Path

    reaching = []
    for path in sorted(Path(labkit.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                reaching += [f"{path.name}: from {'.' * node.level}{node.module} import "
                             f"{alias.name}" for alias in node.names
                             if alias.name.startswith("_") and alias.name != "__version__"]
    assert reaching == []


def test_no_test_imports_a_private_name_of_labkit() -> None:
    """The tests use labkit's public names, so that they test what a caller can rely on."""
    import ast
    from pathlib import Path

    tests = Path(__file__).parent
    reaching = [f"{path.name}: from {node.module} import {alias.name}"
                for path in sorted(tests.rglob("*.py"))
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit")
                for alias in node.names if alias.name.startswith("_")]
    assert reaching == []


def test_every_plugin_folder_is_named_once_in_paths() -> None:
    """``LAB_ROOT / "plugins"`` is spelt in labkit/paths.py only, with a name for each folder
    of ``plugins/``; every other module imports those names."""
    import re
    from pathlib import Path

    from labkit import paths

    package = Path(labkit.__file__).parent
    spelt = [path.name for path in sorted(package.rglob("*.py")) if path.name != "paths.py"
             and re.search(r'LAB_ROOT\s*/\s*"plugins"', path.read_text(encoding="utf-8"))]
    assert spelt == []
    named = {getattr(paths, name) for name in dir(paths) if name.startswith("PLUGINS_")}
    assert named == {folder for folder in paths.PLUGINS.iterdir() if folder.is_dir()}
