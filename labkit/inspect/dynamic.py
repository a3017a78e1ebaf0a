"""The parts of an ELF file the loader reads to map it, read cheaply: the program headers and
the dynamic section (:func:`read_dynamic`), and the dynamic relocations a load can fail on
(:func:`load_relocations`), each cached while the file is unchanged (:func:`dynamic_of`,
:func:`relocations_of`, and :func:`elf_of` for a whole :class:`~labkit.inspect.elf.ElfInfo`).
:mod:`labkit.diagnose.loader` asks these of every object a process has mapped, so they skip
the symbol tables: about twenty times faster than :func:`~labkit.inspect.elf.read_elf` on a
large library.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .elf import (
    DF_STATIC_TLS,
    DynamicTags,
    ElfInfo,
    FileMemo,
    TlsSegment,
    check_complete,
    damaged,
    interpreter_and_tls,
    open_binary,
    read_elf,
    section_named,
    sections_of,
)

#: Dynamic relocations that place a TLS block in static TLS, by machine: "tpoff" (the
#: initial-exec model: the loader must find room or fail) and "tlsdesc" (TLS descriptors:
#: the loader uses the optional part of the surplus while it lasts, else dynamic TLS).
TLS_RELOCATIONS = {
    "EM_X86_64": {18: "tpoff", 23: "tpoff", 36: "tlsdesc"},  # R_X86_64_TPOFF64/32, TLSDESC
    "EM_AARCH64": {1030: "tpoff", 1031: "tlsdesc"},  # R_AARCH64_TLS_TPREL, TLSDESC
    "EM_386": {14: "tpoff", 37: "tpoff", 41: "tlsdesc"},  # R_386_TLS_TPOFF/TPOFF32, TLS_DESC
}


@dataclass(frozen=True)
class Dynamic:
    """What :func:`read_dynamic` reads: the header, the interpreter, the TLS segment and the
    dynamic section, without the symbol tables."""

    path: Path
    elf_class: int
    e_machine: str
    e_type: str  # "ET_DYN", "ET_EXEC", ...
    interpreter: str | None
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    flags: int
    flags_1: int
    tls: TlsSegment | None

    @property
    def static_tls(self) -> bool:
        """DF_STATIC_TLS: the linker saw the initial-exec TLS model in it."""
        return bool(self.flags & DF_STATIC_TLS)


@dataclass(frozen=True)
class Relocation:
    """A dynamic relocation the loader can fail on: ``kind`` "tpoff" (the initial-exec TLS
    model: the block must go in static TLS), "tlsdesc" (a TLS descriptor: static TLS if
    there is room) or "symbol" (the first relocation that names an undefined symbol);
    ``symbol`` the symbol's name (None for the file's own TLS block, addressed without a
    symbol), ``index`` its index in the dynamic symbol table, ``defined`` whether the file
    defines it."""

    kind: str
    symbol: str | None
    index: int
    defined: bool


def read_dynamic(path: str | os.PathLike[str]) -> Dynamic:
    """The header, interpreter, TLS segment and dynamic section of ``path``, without its
    symbol tables: about twenty times faster than :func:`read_elf` on a large library.

    Raises :class:`ElfError` or :class:`InputError` as :func:`read_elf` does.
    """
    from elftools.common.exceptions import ELFError, ELFParseError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    p = check_complete(path).path
    try:
        with open_binary(p) as f:
            elf = ELFFile(f)
            interpreter, tls = interpreter_and_tls(elf)
            dynamic = DynamicTags()
            for sec in sections_of(elf, "SHT_DYNAMIC"):
                if isinstance(sec, DynamicSection):
                    dynamic.read(sec)
            return Dynamic(
                p, elf.elfclass, str(elf["e_machine"]), str(elf["e_type"]), interpreter,
                tuple(dynamic.needed), dynamic.soname, tuple(dynamic.rpath),
                tuple(dynamic.runpath), dynamic.flags, dynamic.flags_1, tls,
            )
    except (ELFError, ELFParseError, struct.error, ValueError, KeyError, IndexError,
            AttributeError, TypeError) as exc:
        raise damaged(p, exc) from exc


def load_relocations(path: str | os.PathLike[str]) -> tuple[Relocation, ...]:
    """The dynamic relocations of ``path`` that can make a load fail, in the order the
    loader applies them (see :class:`Relocation`): those that need static TLS, and the
    first that names each undefined symbol. Reads the relocation tables in bulk and looks
    up only the symbols these relocations name.

    Raises :class:`ElfError` or :class:`InputError` as :func:`read_elf` does.
    """
    from elftools.common.exceptions import ELFError, ELFParseError
    from elftools.elf.elffile import ELFFile

    p = check_complete(path).path
    try:
        with open_binary(p) as f:
            elf = ELFFile(f)
            kinds = TLS_RELOCATIONS.get(str(elf["e_machine"]), {})
            named_dynsym = section_named(elf, ".dynsym")
            if named_dynsym is None:
                return ()
            link, dynsym = named_dynsym  # a SymbolTableSection
            found: list[Relocation] = []
            named: set[int] = set()
            for sec in sections_of(elf, "SHT_RELA", "SHT_REL"):
                if sec["sh_link"] != link:
                    continue
                for kind_number, index in _relocation_entries(elf, sec):
                    kind = kinds.get(kind_number)
                    if index == 0:
                        if kind is not None:
                            found.append(Relocation(kind, None, 0, True))
                        continue
                    if kind is None and index in named:
                        continue
                    sym = dynsym.get_symbol(index)
                    defined = sym["st_shndx"] != "SHN_UNDEF"
                    if not defined and index not in named:  # looked up first, then placed
                        found.append(Relocation("symbol", sym.name, index, False))
                    named.add(index)
                    if kind is not None:
                        found.append(Relocation(kind, sym.name, index, defined))
            return tuple(found)
    except (ELFError, ELFParseError, struct.error, ValueError, KeyError, IndexError,
            AttributeError, TypeError) as exc:
        raise damaged(p, exc) from exc


def _relocation_entries(elf: Any, sec: Any) -> Iterator[tuple[int, int]]:
    """(type, symbol index) of each entry of a REL or RELA section, read in bulk."""
    end = "<" if elf.little_endian else ">"
    rela = sec["sh_type"] == "SHT_RELA"
    if elf.elfclass == 64:
        layout, shift, mask = end + ("QQq" if rela else "QQ"), 32, 0xFFFFFFFF
    else:
        layout, shift, mask = end + ("IIi" if rela else "II"), 8, 0xFF
    size = struct.calcsize(layout)
    data = sec.data()
    for entry in struct.iter_unpack(layout, data[: len(data) - len(data) % size]):
        yield entry[1] & mask, entry[1] >> shift


def dynamic_of(path: Path) -> Dynamic:
    """:func:`read_dynamic`, read once while the file is unchanged."""
    return _DYNAMIC(path.resolve(), read_dynamic)


def elf_of(path: Path) -> ElfInfo:
    """:func:`~labkit.inspect.elf.read_elf` of the resolved path."""
    return read_elf(path.resolve())


def relocations_of(path: Path) -> tuple[Relocation, ...]:
    """:func:`load_relocations`, read once while the file is unchanged."""
    return _RELOCATIONS(path.resolve(), load_relocations)


_DYNAMIC: FileMemo[Dynamic] = FileMemo(512)
_RELOCATIONS: FileMemo[tuple[Relocation, ...]] = FileMemo(512)
