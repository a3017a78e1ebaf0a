"""What a WebAssembly module asks of its host and offers it: its imports and exports, read
from the binary without compiling it (compiling a Go module takes Cranelift about a second).

A module is the magic ``\\0asm``, version 1, then sections, each an id byte and a LEB128
size. Four of them say what crosses the boundary: the type section (1) lists function
signatures, the import section (2) what the host must supply, the function section (3) the
signature of each function the module defines, the export section (7) what the host may use.
:func:`read_wasm` reads those four and skips the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..paths import existing_file, show

MAGIC = b"\0asm"
VERSION = 1
TYPE, IMPORT, FUNCTION, EXPORT = 1, 2, 3, 7
#: The kinds of an import or export, by their byte in the binary.
KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
#: Value types by their byte (numbers, vectors, the two reference types).
VALUE_TYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
               0x70: "funcref", 0x6F: "externref"}


@dataclass(frozen=True)
class Entry:
    """One import or export: its kind (``func``, ``memory``...), its name, the module it is
    imported from (``""`` for an export) and, for a function, its signature
    (``"(i64) -> i64"``)."""

    kind: str
    name: str
    module: str = ""
    signature: str = ""

    def __str__(self) -> str:
        where = f"{self.module}." if self.module else ""
        return f"{where}{self.name}{' ' + self.signature if self.signature else ''}"


@dataclass(frozen=True)
class WasmInfo:
    """A module's imports and exports, in the order the binary lists them."""

    path: Path
    imports: tuple[Entry, ...]
    exports: tuple[Entry, ...]

    def functions(self) -> list[str]:
        """The names of the functions it exports."""
        return [e.name for e in self.exports if e.kind == "func"]

    def imported_from(self, module: str) -> list[Entry]:
        """Its imports from one module (``"extism:host/user"``)."""
        return [e for e in self.imports if e.module == module]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.at, self.path = data, 0, path

    def fail(self, what: str) -> InputError:
        return InputError(f"{show(self.path)!r} is not a WebAssembly module labkit can read: "
                          f"{what} at byte {self.at}", fix="build it again; a .wasm file "
                          "that a runtime accepts reads here too", path=self.path)

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise self.fail("it ends early")
        self.at += 1
        return self.data[self.at - 1]

    def uleb(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise self.fail("a number longer than 64 bits")

    def name(self) -> str:
        size = self.uleb()
        if self.at + size > len(self.data):
            raise self.fail("a name runs past the end")
        self.at += size
        return self.data[self.at - size:self.at].decode("utf-8", errors="replace")

    def value_type(self) -> str:
        code = self.byte()
        if code not in VALUE_TYPES:
            raise self.fail(f"value type 0x{code:02x}, which labkit does not read")
        return VALUE_TYPES[code]

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()


def _signature(params: list[str], results: list[str]) -> str:
    """``(i64) -> i64``, ``() -> i32``, ``(i64, i32) -> ()``."""
    out = results[0] if len(results) == 1 else f"({', '.join(results)})"
    return f"({', '.join(params)}) -> {out}"


def read_wasm(path: str | os.PathLike[str]) -> WasmInfo:
    """Read the imports and exports of the ``.wasm`` file at ``path``, with each function's
    signature. Raises :class:`~labkit.errors.InputError` for a file that is not a
    WebAssembly module (version 1), or uses encodings labkit does not read."""
    source = existing_file(path, "WebAssembly module")
    r = _Reader(source.read_bytes(), source)
    if r.data[:4] != MAGIC:
        raise InputError(f"{show(source)!r} is not a WebAssembly module: it does not start "
                         f"with \\0asm (it starts {r.data[:4]!r})",
                         fix="build it for wasm (a .wasm file)", path=source)
    if int.from_bytes(r.data[4:8], "little") != VERSION:
        raise r.fail("a version other than 1")
    r.at = 8
    types: list[str] = []
    defined: list[int] = []
    imports: list[Entry] = []
    raw_exports: list[tuple[str, int, int]] = []
    while r.at < len(r.data):
        section, size = r.byte(), r.uleb()
        end = r.at + size
        if section == TYPE:
            for _ in range(r.uleb()):
                if r.byte() != 0x60:
                    raise r.fail("a type that is not a plain function type")
                params = [r.value_type() for _ in range(r.uleb())]
                results = [r.value_type() for _ in range(r.uleb())]
                types.append(_signature(params, results))
        elif section == IMPORT:
            for _ in range(r.uleb()):
                module, name, kind = r.name(), r.name(), r.byte()
                signature = ""
                if kind == 0:
                    signature = types[r.uleb()]
                elif kind == 1:
                    r.value_type()
                    r.limits()
                elif kind == 2:
                    r.limits()
                elif kind == 3:
                    r.value_type()
                    r.byte()
                elif kind == 4:
                    r.byte()
                    r.uleb()
                else:
                    raise r.fail(f"import kind {kind}")
                imports.append(Entry(KINDS[kind], name, module, signature))
        elif section == FUNCTION:
            defined = [r.uleb() for _ in range(r.uleb())]
        elif section == EXPORT:
            for _ in range(r.uleb()):
                name, kind, index = r.name(), r.byte(), r.uleb()
                if kind not in KINDS:
                    raise r.fail(f"export kind {kind}")
                raw_exports.append((name, kind, index))
        r.at = end
    if r.at != len(r.data):
        raise r.fail("a section runs past the end")
    functions = [e.signature for e in imports if e.kind == "func"] + [types[t] for t in defined]
    exports = tuple(Entry(KINDS[kind], name, "", functions[index] if kind == 0 else "")
                    for name, kind, index in raw_exports)
    return WasmInfo(source, tuple(imports), exports)
