"""``import labkit`` is cheap and needs no third-party package: every public name loads its
module on first use, in a fresh process each time here."""

from __future__ import annotations

import subprocess
import sys

import labkit

#: What a lesson may never need: none of these may load with ``import labkit``.
HEAVY = ("grpc", "wasmtime", "IPython", "ipywidgets", "pandas", "matplotlib", "google.protobuf")


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


def test_explain_and_load_stay_functions_after_their_modules_load() -> None:
    said = child("import labkit, labkit.explain, labkit.load\n"
                 "print(callable(labkit.explain), type(labkit.load).__name__)")
    assert said == "True function"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        labkit.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no attribute 'no_such_name'" in str(error)
    else:
        raise AssertionError("labkit.no_such_name resolved")
