"""Reading Windows PE files (DLLs, programs) and macOS Mach-O files (dylibs, bundles,
programs) with LIEF: what their own platform's loader reads before it maps them.

This machine's loader reads only ELF, but the structure of a DLL or a dylib explains how its
platform loads plugins: a PE file names, per DLL, the functions it imports, and exports a
table of names (:func:`read_pe`); a Mach-O file names its own install name, the libraries it
loads with their versions, the ``LC_RPATH`` entries that ``@rpath`` expands to, and, in a
two-level namespace, the library each undefined symbol is bound to (:func:`read_macho`).
:func:`read_foreign` reads either, by the file's first bytes. Bad input raises
:class:`~labkit.errors.ElfError` naming the cause (``reason`` ``damaged-pe`` or
``damaged-macho``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ElfError
from ..paths import existing_file, show

if TYPE_CHECKING:
    import pandas

#: PE's COFF machine field, as people name the architectures.
PE_MACHINES = {"AMD64": "x86_64", "I386": "i386", "ARM64": "arm64", "ARMNT": "arm",
               "ARM64EC": "ARM64EC"}
#: Mach-O's cputype, as people name the architectures (arm64 is AArch64).
MACHO_CPUS = {"X86_64": "x86_64", "ARM64": "arm64", "X86": "i386", "ARM": "arm",
              "ARM64_32": "arm64_32"}
#: Mach-O file types by LIEF's name, in words.
MACHO_TYPES = {"DYLIB": "dylib", "BUNDLE": "bundle", "EXECUTE": "program",
               "OBJECT": "object file"}
#: Load commands that name a library to load, and what each means.
DYLIB_COMMANDS = {"LOAD_DYLIB": "load", "LOAD_WEAK_DYLIB": "weak",
                  "REEXPORT_DYLIB": "re-export", "LAZY_LOAD_DYLIB": "lazy",
                  "LOAD_UPWARD_DYLIB": "upward"}

_PE_MAGIC = b"MZ"
#: Thin Mach-O magics in both byte orders, then the universal (fat) header's.
_MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce")
_FAT_MAGICS = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")


Format = Literal["PE", "Mach-O"]


def format_of(head: bytes) -> Format | None:
    """The foreign format a file's first bytes announce, or None.

    A universal (fat) Mach-O header begins like a Java class file (``0xcafebabe``); the
    second word tells them apart: a fat header counts its architectures there (a few), a
    class file holds its version (45 and up)."""
    if head.startswith(_PE_MAGIC):
        return "PE"
    if head[:4] in _MACHO_MAGICS:
        return "Mach-O"
    if head[:4] in _FAT_MAGICS and len(head) >= 8 and 0 < struct.unpack(">I", head[4:8])[0] < 45:
        return "Mach-O"
    return None


@dataclass(frozen=True)
class PeExport:
    """One entry of a DLL's export table: its name (empty when exported by ordinal only),
    its ordinal, and, for a forwarder, the ``OTHER.name`` the loader goes to instead."""

    name: str
    ordinal: int
    forward: str = ""


@dataclass(frozen=True)
class PeImport:
    """One DLL a PE file imports from, and what it takes from it: names, or ``#N`` for an
    import by ordinal. ``delayed``: a delay-load import, bound at its first call."""

    dll: str
    names: tuple[str, ...]
    delayed: bool = False


@dataclass(frozen=True)
class PeInfo:
    """What :func:`read_pe` learned about a Windows PE file."""

    path: Path
    machine: str  # x86_64, arm64, i386...
    kind: str  # "DLL" or "program"
    subsystem: str  # "Windows GUI", "Windows console", ...
    pe32_plus: bool
    exports: tuple[PeExport, ...]
    imports: tuple[PeImport, ...]

    format: Format = "PE"
    platform: str = "Windows"

    @property
    def dlls(self) -> tuple[str, ...]:
        """The DLLs it imports from, in the order of its import tables."""
        return tuple(i.dll for i in self.imports)

    @property
    def exported(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.exports if e.name)

    def describe(self) -> str:
        """``a Windows DLL (PE32+) for x86-64``."""
        kind = "PE32+" if self.pe32_plus else "PE32"
        return f"a Windows {self.kind} ({kind}) for {self.machine}"

    def exports_frame(self) -> pandas.DataFrame:
        """The export table: name, ordinal, and the forwarder if there is one."""
        import pandas as pd

        return pd.DataFrame([(e.name, e.ordinal, e.forward) for e in self.exports],
                            columns=["name", "ordinal", "forwarded to"])

    def imports_frame(self) -> pandas.DataFrame:
        """The import tables, one row per imported function: the DLL it comes from."""
        import pandas as pd

        return pd.DataFrame(
            [(i.dll, name, "delay-load" if i.delayed else "at load")
             for i in self.imports for name in i.names],
            columns=["DLL", "function", "bound"],
        )

    def summary(self) -> str:
        lines = [f"{show(self.path)}: {self.describe()}, subsystem {self.subsystem}",
                 f"  exports: {', '.join(self.exported) or '(none)'}"]
        for i in self.imports:
            how = " (delay-load)" if i.delayed else ""
            lines.append(f"  imports from {i.dll}{how}: {', '.join(i.names)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class MachODylib:
    """One library a Mach-O file loads: the path as recorded, how (``load``, ``weak``,
    ``re-export``...), and the versions it was linked against."""

    path: str
    how: str
    current_version: str
    compatibility_version: str


@dataclass(frozen=True)
class MachOImport:
    """An undefined symbol and the library it is bound to (its install name); ``library``
    is empty in a flat namespace, where dyld searches every loaded image. ``lazy``: recorded
    as a lazy bind (the older ``LC_DYLD_INFO`` format; current dyld binds it at load too,
    and a missing one aborts at its first call unless dlopen had RTLD_NOW). ``weak``: may
    be missing."""

    name: str
    library: str
    lazy: bool = False
    weak: bool = False


@dataclass(frozen=True)
class MachOInfo:
    """What :func:`read_macho` learned about one architecture of a Mach-O file."""

    path: Path
    cpu: str  # arm64, x86-64...
    kind: str  # dylib, bundle, program
    install_name: str  # LC_ID_DYLIB, empty for a bundle or a program
    dylibs: tuple[MachODylib, ...]
    rpaths: tuple[str, ...]
    exports: tuple[str, ...]
    imports: tuple[MachOImport, ...]
    two_level: bool
    minimum_os: str  # "macOS 15.0", or empty when not recorded
    universal: tuple[str, ...] = ()  # every architecture of a universal file

    format: Format = "Mach-O"
    platform: str = "macOS"

    @property
    def exported(self) -> tuple[str, ...]:
        return self.exports

    def describe(self) -> str:
        """``a macOS dylib for arm64``."""
        fat = f" (one of a universal file's {', '.join(self.universal)})" if self.universal else ""
        return f"a macOS {self.kind} for {self.cpu}{fat}"

    def dylibs_frame(self) -> pandas.DataFrame:
        """The libraries it loads, with the versions it was linked against."""
        import pandas as pd

        return pd.DataFrame(
            [(d.path, d.how, d.current_version, d.compatibility_version) for d in self.dylibs],
            columns=["library", "load", "current version", "compatibility version"],
        )

    def imports_frame(self) -> pandas.DataFrame:
        """Its undefined symbols, each with the library dyld will look in (and in what it
        re-exports), and how the file records the bind."""
        import pandas as pd

        return pd.DataFrame(
            [(s.name, s.library or "(any: flat namespace)",
              "lazy bind" if s.lazy else "bind", "yes" if s.weak else "no")
             for s in self.imports],
            columns=["symbol", "library", "recorded as", "weak"],
        )

    def summary(self) -> str:
        lines = [f"{show(self.path)}: {self.describe()}"
                 + (f", built for {self.minimum_os} or later" if self.minimum_os else ""),
                 f"  install name: {self.install_name or '(none)'}"]
        lines += [f"  loads:        {d.path} ({d.how}, {d.current_version})"
                  for d in self.dylibs]
        lines.append(f"  rpaths:       {', '.join(self.rpaths) or '(none)'}")
        lines.append(f"  namespace:    {'two-level' if self.two_level else 'flat'}")
        return "\n".join(lines)


ForeignInfo = PeInfo | MachOInfo


def read_foreign(path: str | os.PathLike[str]) -> tuple[ForeignInfo, ...]:
    """Read a PE or Mach-O file: one :class:`PeInfo`, or one :class:`MachOInfo` per
    architecture of a Mach-O file (a universal file holds several).

    Raises :class:`~labkit.errors.ElfError` (``reason`` ``not-foreign``) when the file is
    neither, and as :func:`read_pe` and :func:`read_macho` do."""
    p = existing_file(path)
    with open(p, "rb") as f:
        head = f.read(8)
    kind = format_of(head)
    if kind == "PE":
        return (read_pe(p),)
    if kind == "Mach-O":
        return read_macho(p)
    raise ElfError(f"{show(p)!r} is neither a Windows PE file nor a macOS Mach-O file: it "
                   f"begins with {head!r}", path=p, reason="not-foreign",
                   fix="point at a .dll, .exe, .dylib or .bundle built for Windows or macOS")


def _lief() -> Any:
    import lief

    lief.logging.disable()  # LIEF's own log would print to the notebook's stderr
    return lief


def read_pe(path: str | os.PathLike[str]) -> PeInfo:
    """Read a Windows PE file (a DLL or a program) without loading it.

    Raises :class:`~labkit.errors.ElfError` (``reason`` ``damaged-pe``) when LIEF cannot
    parse it."""
    p = existing_file(path)
    binary = _lief().PE.parse(str(p))
    if binary is None:
        raise _damaged(p, "a Windows PE file", "damaged-pe")
    needed = max((s.offset + s.size for s in binary.sections),
                 default=binary.optional_header.sizeof_headers)
    if p.stat().st_size < needed or len(binary.sections) != binary.header.numberof_sections:
        raise _truncated(p, needed)
    header = binary.header
    lief = _lief()
    dll = header.has_characteristic(lief.PE.Header.CHARACTERISTICS.DLL)
    magic = binary.optional_header.magic
    exports: list[PeExport] = []
    if binary.has_exports:
        for entry in binary.get_export().entries:
            forward = entry.forward_information
            exports.append(PeExport(
                entry.name, entry.ordinal,
                f"{forward.library}.{forward.function}" if entry.is_forwarded else ""))
    imports = [PeImport(i.name, _import_names(i.entries)) for i in binary.imports]
    imports += [PeImport(i.name, _import_names(i.entries), delayed=True)
                for i in binary.delay_imports]
    return PeInfo(
        path=p,
        machine=PE_MACHINES.get(header.machine.name, header.machine.name),
        kind="DLL" if dll else "program",
        subsystem=_subsystem(binary.optional_header.subsystem.name),
        pe32_plus=magic == lief.PE.PE_TYPE.PE32_PLUS,
        exports=tuple(exports),
        imports=tuple(imports),
    )


def _import_names(entries: Any) -> tuple[str, ...]:
    return tuple(f"#{e.ordinal}" if e.is_ordinal else e.name for e in entries)


def _subsystem(name: str) -> str:
    """``WINDOWS_GUI`` as ``Windows GUI``."""
    words = {"WINDOWS_GUI": "Windows GUI", "WINDOWS_CUI": "Windows console",
             "NATIVE": "native (drivers)", "EFI_APPLICATION": "EFI application"}
    return words.get(name, name.replace("_", " ").lower())


def read_macho(path: str | os.PathLike[str]) -> tuple[MachOInfo, ...]:
    """Read a Mach-O file without loading it: one :class:`MachOInfo` per architecture.

    Raises :class:`~labkit.errors.ElfError` (``reason`` ``damaged-macho``) when LIEF cannot
    parse it."""
    p = existing_file(path)
    fat = _lief().MachO.parse(str(p))
    if fat is None or fat.size == 0:
        raise _damaged(p, "a macOS Mach-O file", "damaged-macho")
    slices = [fat.at(i) for i in range(fat.size)]
    table = _fat_table(p)
    file_size = p.stat().st_size
    for offset, size in table:  # LIEF leaves out an architecture the file cuts short
        if offset + size > file_size:
            raise _truncated(p, offset + size)
    for binary, (_, size) in zip(slices, table or [(0, file_size)], strict=True):
        needed = max((s.file_offset + s.file_size for s in binary.segments), default=0)
        if size < needed:
            raise _truncated(p, needed)
    cpus = tuple(_cpu(b) for b in slices) if len(slices) > 1 else ()
    return tuple(_macho(p, b, cpus) for b in slices)


def _fat_table(p: Path) -> list[tuple[int, int]]:
    """Where a universal file's header places each architecture: ``(offset, size)`` each,
    or [] for a thin file."""
    with open(p, "rb") as f:
        head = f.read(8)
        if head[:4] not in _FAT_MAGICS:
            return []
        wide = head[:4] == _FAT_MAGICS[1]  # fat_arch_64: 64-bit offsets and sizes
        entry = struct.Struct(">iiQQII" if wide else ">iiIII")
        table = f.read(entry.size * struct.unpack(">I", head[4:8])[0])
    return [(offset, size) for _, _, offset, size, *_ in entry.iter_unpack(table)]


def _cpu(binary: Any) -> str:
    name = str(binary.header.cpu_type.name)
    return MACHO_CPUS.get(name, name.lower())


def _macho(p: Path, binary: Any, universal: tuple[str, ...]) -> MachOInfo:
    lief = _lief()
    install_name = ""
    dylibs = []
    for lib in binary.libraries:
        command = lib.command.name
        if command == "ID_DYLIB":
            install_name = lib.name
        elif command in DYLIB_COMMANDS:
            dylibs.append(MachODylib(lib.name, DYLIB_COMMANDS[command],
                                     _version(lib.current_version),
                                     _version(lib.compatibility_version)))
    flags = binary.header
    two_level = flags.has(lief.MachO.Header.FLAGS.TWOLEVEL)
    imports = []
    for symbol in binary.imported_symbols:
        library, lazy, weak = "", False, False
        if symbol.has_binding_info:
            bind = symbol.binding_info
            library = bind.library.name if two_level and bind.has_library else ""
            lazy = bind.binding_class.name == "LAZY"
            weak = bool(bind.weak_import)
        imports.append(MachOImport(symbol.name, library, lazy, weak))
    minimum = ""
    if binary.has_build_version:
        version = binary.build_version
        minimum = f"{_platform(version.platform.name)} {_version(version.minos, 2)}"
    return MachOInfo(
        path=p,
        cpu=_cpu(binary),
        kind=MACHO_TYPES.get(binary.header.file_type.name, binary.header.file_type.name.lower()),
        install_name=install_name,
        dylibs=tuple(dylibs),
        rpaths=tuple(r.path for r in binary.rpaths),
        exports=tuple(sorted({s.name for s in binary.exported_symbols})),
        imports=tuple(sorted(imports, key=lambda s: s.name)),
        two_level=two_level,
        minimum_os=minimum,
        universal=universal,
    )


def _version(parts: Any, count: int = 3) -> str:
    return ".".join(str(n) for n in list(parts)[:count])


def _platform(name: str) -> str:
    return {"MACOS": "macOS", "IOS": "iOS", "TVOS": "tvOS", "WATCHOS": "watchOS",
            "MACCATALYST": "Mac Catalyst"}.get(name, name)


def _truncated(p: Path, needed: int) -> ElfError:
    size = p.stat().st_size
    what = "a Windows PE file" if format_of(p.read_bytes()[:8]) == "PE" else "a macOS Mach-O file"
    return ElfError(
        f"{show(p)!r} begins like {what} but is truncated: its headers place data up to byte "
        f"{needed}, and it holds {size} bytes", path=p,
        reason="damaged-pe" if what.endswith("PE file") else "damaged-macho",
        fix="rebuild it, or copy it again in full",
    )


def _damaged(p: Path, what: str, reason: str) -> ElfError:
    size = p.stat().st_size
    return ElfError(
        f"{show(p)!r} begins like {what} but LIEF cannot read it ({size} bytes); it is "
        "probably truncated or damaged", path=p, reason=reason,
        fix="rebuild it, or copy it again in full",
    )
