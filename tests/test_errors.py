"""Every labkit error carries what went wrong and its fix as attributes, and the root class
renders them, the same way for every error; every error on bad input names a fix."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import labkit
from labkit import errors


def test_the_root_class_renders_what_and_fix() -> None:
    assert str(labkit.LabkitError("'x.so' is empty", fix="build it again")) == (
        "'x.so' is empty. Fix: build it again")
    assert str(labkit.LabkitError("is it there?", fix="look")) == "is it there? Fix: look"
    assert str(labkit.LabkitError("cc failed:\nx.c:1: error", fix="correct x.c")) == (
        "cc failed:\nx.c:1: error\nFix: correct x.c")
    assert str(labkit.LabkitError("no fix known")) == "no fix known"
    long = "w" * 60
    assert str(labkit.LabkitError(long, fix="f" * 33)) == f"{long}. Fix: {'f' * 33}"  # 100
    assert str(labkit.LabkitError(long, fix="f" * 34)) == f"{long}\nFix: {'f' * 34}"


SUBCLASSES = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
              if issubclass(cls, errors.LabkitError) and cls is not errors.LabkitError]


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda cls: cls.__name__)
def test_every_error_keeps_its_fix_as_the_root_class_does(cls: type[errors.LabkitError]) -> None:
    """Each subclass takes ``fix=``, keeps it as ``.fix`` and leaves the rendering to the root:
    none overrides ``__str__``, none folds the fix into its message."""
    assert cls.__str__ is errors.LabkitError.__str__
    assert "fix" in inspect.signature(cls).parameters
    source = inspect.getsource(cls)
    assert "Fix:" not in source


def test_every_error_raised_on_bad_input_names_a_fix() -> None:
    """Read from the source: each ``InputError(...)`` in labkit passes ``fix=``, and no error
    spells ``Fix:`` into its message (the root class adds it)."""
    missing, spelt = [], []
    for path in sorted(Path(labkit.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "InputError" and not any(k.arg == "fix" for k in node.keywords):
                missing.append(f"{path.name}:{node.lineno}")
            if name in errors.__dict__ and node.args and "Fix:" in ast.unparse(node.args[0]):
                spelt.append(f"{path.name}:{node.lineno}")
    assert missing == [] and spelt == []
