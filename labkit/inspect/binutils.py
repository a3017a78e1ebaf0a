"""What the standard tools say: GNU readelf, nm and c++filt, run for real and parsed.

The notebooks show these beside labkit's own view, and the tests check labkit's ELF reader
against them (the way pyelftools checks its readelf against GNU readelf).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ToolchainError
from ..toolchain import FIXES, find_tool

_NAME_VERSION = re.compile(r"^(?P<name>[^@\s]+)(?:(?P<sep>@@?)(?P<version>\S+))?(?: \(\d+\))?$")


@dataclass(frozen=True)
class ReadelfSymbol:
    """One row of ``readelf --dyn-syms -W``."""

    name: str
    type: str
    binding: str
    visibility: str
    defined: bool
    version: str | None


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Each C++ name (``_Z...``, the Itanium C++ ABI's mangling) in ``names`` as ``c++filt``
    spells it (``_ZNK5Upper4nameEv``: ``Upper::name() const``), the way ``nm -C`` and
    ``readelf -C`` show it; other names are left out. One c++filt process for all."""
    mangled = sorted({name for name in names if name.startswith("_Z")})
    if not mangled:
        return {}
    missing = [name for name in mangled if name not in _DEMANGLED]
    if missing:
        found = find_tool("c++filt")
        proc = subprocess.run([*found.command], input="\n".join(missing) + "\n",
                              capture_output=True, text=True, timeout=60, check=False)
        said = proc.stdout.splitlines()
        if proc.returncode != 0 or len(said) != len(missing):
            raise ToolchainError("c++filt", f"c++filt failed (exit status {proc.returncode}): "
                                 f"{proc.stderr.strip()}", fix=FIXES["c++filt"])
        _DEMANGLED.update(zip(missing, said, strict=True))
    return {name: _DEMANGLED[name] for name in mangled}


_DEMANGLED: dict[str, str] = {}


def run(tool: str, *args: str | os.PathLike[str]) -> str:
    """Run ``tool`` (``readelf``, ``nm``, ...) with ``args`` and return its stdout.

    Raises :class:`ToolchainError` when the tool is missing or exits non-zero.
    """
    found = find_tool(tool)
    argv = [*found.command, *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise ToolchainError(
            tool, f"{' '.join(argv)!r} failed (exit status {proc.returncode}): "
            f"{proc.stderr.strip()}", fix=f"check that the file is one {tool} can read",
        )
    return proc.stdout


def readelf_dynamic_symbols(path: str | os.PathLike[str]) -> list[ReadelfSymbol]:
    """The dynamic symbol table as ``readelf --dyn-syms -W`` prints it (null entry left out)."""
    rows = []
    for line in run("readelf", "--dyn-syms", "-W", path).splitlines():
        parts = line.split(None, 7)
        if len(parts) < 8 or not parts[0].rstrip(":").isdigit() or parts[0] == "0:":
            continue
        _, _, _, typ, bind, vis, ndx, rest = parts
        match = _NAME_VERSION.match(rest.strip())
        name, version = (match["name"], match["version"]) if match else (rest.strip(), None)
        rows.append(ReadelfSymbol(name, typ, bind, vis, ndx != "UND", version))
    return rows


def readelf_dynamic(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``readelf -d``: NEEDED, SONAME, RPATH and RUNPATH entries, by tag."""
    found: dict[str, list[str]] = {"NEEDED": [], "SONAME": [], "RPATH": [], "RUNPATH": []}
    for line in run("readelf", "-d", "-W", path).splitlines():
        match = re.search(r"\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+.*?\[(.*)\]", line)
        if match:
            found[match[1]].extend(match[2].split(":") if match[1].endswith("PATH") else [match[2]])
    return found


def readelf_header(path: str | os.PathLike[str]) -> dict[str, str]:
    """``readelf -h``: Class, Machine, Type and the rest, as readelf words them."""
    fields = {}
    for line in run("readelf", "-h", "-W", path).splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def readelf_interpreter(path: str | os.PathLike[str]) -> str | None:
    """The program interpreter ``readelf -l`` reports, or None."""
    headers = run("readelf", "-l", "-W", path)
    match = re.search(r"\[Requesting program interpreter: (.*)\]", headers)
    return match[1] if match else None


def nm_dynamic(
    path: str | os.PathLike[str], *, defined_only: bool = False
) -> list[tuple[str, str]]:
    """``nm -D``: (type letter, name) pairs, addresses left out (they differ by compiler)."""
    args = ["-D", "--defined-only", path] if defined_only else ["-D", path]
    pairs = []
    for line in run("nm", *args).splitlines():
        parts = line.split()
        if len(parts) >= 2:
            pairs.append((parts[-2], parts[-1]))
    return pairs
