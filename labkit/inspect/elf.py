"""Reading ELF files with pyelftools: what a loader needs to know before it maps a file.

:func:`read_elf` returns an :class:`ElfInfo` (class, machine, type, interpreter, needed
libraries, soname, rpath/runpath, the flags of the dynamic section, the TLS segment, dynamic
symbols with binding, visibility and version, the symbol versions the file requires and
defines). :func:`peek` reads only the identification bytes and works on any file.
:mod:`labkit.inspect.dynamic` reads the dynamic section and relocations alone, cheaply. Bad input
raises :class:`~labkit.errors.ElfError` naming the cause.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import os
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, TypeVar

from ..errors import ElfError, InputError
from ..paths import existing_file, show

if TYPE_CHECKING:
    import pandas


#: pyelftools' e_machine names mapped to the names people use (uname -m, zig targets).
MACHINE_NAMES = {
    "EM_X86_64": "x86_64",
    "EM_386": "i386",
    "EM_AARCH64": "aarch64",
    "EM_ARM": "arm",
    "EM_RISCV": "riscv",
    "EM_PPC64": "ppc64",
    "EM_S390": "s390x",
    "EM_LOONGARCH": "loongarch64",
}

#: ``platform.machine()`` values mapped to the ELF e_machine that this host runs natively.
HOST_MACHINES = {
    "x86_64": "EM_X86_64",
    "amd64": "EM_X86_64",
    "aarch64": "EM_AARCH64",
    "arm64": "EM_AARCH64",
    "i686": "EM_386",
    "riscv64": "EM_RISCV",
    "ppc64le": "EM_PPC64",
    "s390x": "EM_S390",
}


#: Bits of the dynamic section's DT_FLAGS and DT_FLAGS_1 (glibc's <elf.h>) the loader acts on.
DF_STATIC_TLS = 0x10  # DT_FLAGS: the object uses the initial-exec TLS model
DF_1_NOOPEN = 0x40  # DT_FLAGS_1: dlopen refuses it (ld -z nodlopen)
DF_1_NODEFLIB = 0x800  # DT_FLAGS_1: ld.so.cache and the system folders are not searched
DF_1_PIE = 0x08000000  # DT_FLAGS_1: a position-independent executable


ELF_MAGIC = b"\x7fELF"
_VERSYM_HIDDEN = 0x8000
_VER_FLG_WEAK = 0x2
# e_machine numbers for peek(): the few a learner meets, the rest shown as numbers
_E_MACHINE = {3: "EM_386", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV",
              21: "EM_PPC64", 22: "EM_S390", 258: "EM_LOONGARCH"}
# pyelftools names STT_GNU_IFUNC by its range start, STT_LOOS; readelf says IFUNC
_SYMBOL_TYPES = {"STT_LOOS": "IFUNC", "STT_GNU_IFUNC": "IFUNC"}
# pyelftools names binding 10 STB_LOOS or STB_GNU_UNIQUE, whichever its table lists last
_SYMBOL_BINDINGS = {"STB_LOOS": "GNU_UNIQUE", "STB_GNU_UNIQUE": "GNU_UNIQUE"}
_E_TYPE = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core"}


@dataclass(frozen=True)
class Header:
    """The identification of an ELF file, read from its first 20 bytes."""

    path: Path
    elf_class: int  # 32 or 64
    endianness: str  # "little" or "big"
    e_machine: str  # pyelftools' name, e.g. "EM_X86_64"
    e_type: str  # "shared object", "executable", ...

    @property
    def machine(self) -> str:
        """The machine as people name it (``x86_64``, ``aarch64``)."""
        return MACHINE_NAMES.get(self.e_machine, self.e_machine)


@dataclass(frozen=True)
class Symbol:
    """One entry of the dynamic symbol table (what ``readelf --dyn-syms`` lists)."""

    name: str
    type: str  # FUNC, OBJECT, NOTYPE, TLS, GNU_IFUNC
    binding: str  # GLOBAL, WEAK, LOCAL, GNU_UNIQUE
    visibility: str  # DEFAULT, HIDDEN, PROTECTED, INTERNAL
    defined: bool
    version: str | None = None
    default_version: bool = False  # name@@VER (default) rather than name@VER
    size: int = 0
    hidden: bool = False  # the versym's hidden bit: name@VER, which only name@VER binds to

    @property
    def versioned_name(self) -> str:
        """``puts@GLIBC_2.2.5`` as readelf and nm write it."""
        if not self.version:
            return self.name
        return f"{self.name}{'@@' if self.default_version else '@'}{self.version}"


@dataclass(frozen=True)
class Section:
    """One section header: name, type (``PROGBITS``, ``DYNSYM``...), flags (``AX``), size."""

    name: str
    type: str
    flags: str
    size: int


@dataclass(frozen=True)
class VersionNeed:
    """Versions of one needed library's symbols that a file requires (``GLIBC_2.34``...);
    ``weak`` are those marked VER_FLG_WEAK, which the loader does not insist on."""

    library: str
    versions: tuple[str, ...]
    weak: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsSegment:
    """The PT_TLS program header: the file's thread-local block. ``size`` is p_memsz,
    ``align`` p_align, ``first_byte`` p_vaddr modulo p_align (the loader keeps it)."""

    size: int
    align: int
    first_byte: int


@dataclass(frozen=True)
class ElfInfo:
    """Everything :func:`read_elf` learned about one ELF file."""

    path: Path
    elf_class: int
    endianness: str
    e_machine: str
    type: str
    interpreter: str | None
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    symbols: tuple[Symbol, ...]
    version_needs: tuple[VersionNeed, ...]
    version_defs: tuple[str, ...]
    sections: tuple[Section, ...] = field(repr=False)
    flags: int = 0  # DT_FLAGS
    flags_1: int = 0  # DT_FLAGS_1
    tls: TlsSegment | None = None
    versioned: bool = False  # it has a DT_VERDEF section, so versions can be missing from it
    symbol_versions: bool = False  # it has a DT_VERSYM section: its symbols carry versions

    @property
    def pie(self) -> bool:
        """DF_1_PIE: a position-independent executable, which dlopen refuses (glibc 2.30+)."""
        return bool(self.flags_1 & DF_1_PIE)

    @property
    def no_dlopen(self) -> bool:
        """DF_1_NOOPEN (``ld -z nodlopen``): dlopen refuses it."""
        return bool(self.flags_1 & DF_1_NOOPEN)

    @property
    def static_tls(self) -> bool:
        """DF_STATIC_TLS: the linker saw the initial-exec TLS model in it."""
        return bool(self.flags & DF_STATIC_TLS)

    @property
    def machine(self) -> str:
        return MACHINE_NAMES.get(self.e_machine, self.e_machine)

    @property
    def defined_symbols(self) -> tuple[Symbol, ...]:
        return tuple(s for s in self.symbols if s.defined)

    @property
    def undefined_symbols(self) -> tuple[Symbol, ...]:
        return tuple(s for s in self.symbols if not s.defined)

    @property
    def exported(self) -> tuple[str, ...]:
        """Names another object can bind to: defined, global or weak, default or protected."""
        return tuple(
            s.name for s in self.symbols
            if s.defined and s.binding in ("GLOBAL", "WEAK", "GNU_UNIQUE")
            and s.visibility in ("DEFAULT", "PROTECTED")
        )

    def symbol(self, name: str) -> Symbol | None:
        """The dynamic symbol called ``name``, or None."""
        return next((s for s in self.symbols if s.name == name), None)

    def section_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections)

    def symbols_frame(self, names: list[str] | None = None) -> pandas.DataFrame:
        """The dynamic symbols as a table; ``names`` keeps only those (in that order). When
        a name is a mangled C++ one, a ``C++ name`` column says it as ``nm -C`` does."""
        import pandas as pd

        from .binutils import demangle

        rows = [s for s in self.symbols if names is None or s.name in names]
        if names is not None:
            rows.sort(key=lambda s: names.index(s.name))
        frame = pd.DataFrame(
            [(s.name, s.type, s.binding, s.visibility, "yes" if s.defined else "no (UND)",
              s.version or "") for s in rows],
            columns=["name", "type", "binding", "visibility", "defined", "version"],
        )
        cxx = demangle(s.name for s in rows)
        if cxx:
            frame.insert(1, "C++ name", [cxx.get(s.name, "") for s in rows])
        return frame

    def sections_frame(self, names: list[str] | None = None) -> pandas.DataFrame:
        """The section headers as a table; ``names`` keeps only those (in file order)."""
        import pandas as pd

        rows = [s for s in self.sections if names is None or s.name in names]
        return pd.DataFrame(
            [(s.name, s.type, s.flags) for s in rows], columns=["section", "type", "flags"]
        )

    def summary(self) -> str:
        """A few lines a learner can read: what this file is and what it asks of a loader."""
        lines = [
            f"{show(self.path)}: ELF{self.elf_class} {self.endianness}-endian {self.type} "
            f"for {self.machine}",
            f"  interpreter: {self.interpreter or '(none)'}",
            f"  soname:      {self.soname or '(none)'}",
            f"  needed:      {', '.join(self.needed) or '(none)'}",
        ]
        if self.rpath:
            lines.append(f"  rpath:       {':'.join(self.rpath)}")
        if self.runpath:
            lines.append(f"  runpath:     {':'.join(self.runpath)}")
        return "\n".join(lines)


def host_e_machine() -> str:
    """The e_machine this machine runs natively (``EM_X86_64`` on a PC)."""
    machine = os.uname().machine
    return HOST_MACHINES.get(machine, machine)


#: The files being read once (see :func:`read_once`): resolved path to its bytes, None until
#: the first reader asks.
_ONCE: contextvars.ContextVar[dict[Path, bytes | None] | None] = contextvars.ContextVar(
    "labkit_read_once", default=None)


@contextlib.contextmanager
def read_once(*paths: str | os.PathLike[str]) -> Iterator[None]:
    """Within this block, each of ``paths`` is read from disk at most once: the first reader
    (header, program headers, sections, dynamic table, Go build information) reads the whole
    file, and every other reader of it gets those bytes. Other files are read as usual, in
    parts, so the libraries a process maps are not read whole. Nested blocks add paths."""
    outer = _ONCE.get()
    pinned: dict[Path, bytes | None] = dict(outer or {})
    for path in paths:
        pinned.setdefault(Path(path).resolve(), None)
    token = _ONCE.set(pinned)
    try:
        yield
    finally:
        _ONCE.reset(token)


def open_binary(p: Path) -> BinaryIO:
    """``open(p, "rb")``, or the bytes already read of a file inside :func:`read_once`."""
    pinned = _ONCE.get()
    if pinned is not None:
        key = p.resolve()
        if key in pinned:
            data = pinned[key]
            if data is None:
                data = pinned[key] = key.read_bytes()
            return io.BytesIO(data)
    return open(p, "rb")


def peek(path: str | os.PathLike[str]) -> Header:
    """Read only the ELF identification and header fields of ``path``, once while the file
    is unchanged.

    Raises :class:`ElfError` for an empty file, a file that is not ELF, or one too short to
    hold an ELF header; :class:`InputError` for a missing path or a directory.
    """
    p = existing_file(path)
    header = _PEEKED(p, _peek)
    return header if header.path == p else dataclasses.replace(header, path=p)


def _peek(p: Path) -> Header:
    try:
        with open_binary(p) as f:
            head = f.read(64)
    except OSError as exc:
        raise InputError(
            f"{show(p)!r} cannot be read: {exc.strerror or exc}", fix="check its permissions "
            "(ls -l), or copy it somewhere readable", path=p,
        ) from None
    _check_magic(p, head)
    if len(head) < 20:
        raise ElfError(
            f"{show(p)!r} is truncated: {len(head)} bytes, shorter than an ELF header",
            path=p, reason="truncated", fix="rebuild it, or copy it again in full",
        )
    elf_class = {1: 32, 2: 64}.get(head[4], 0)
    endianness = {1: "little", 2: "big"}.get(head[5], "unknown")
    fmt = "<HH" if endianness == "little" else ">HH"
    e_type, e_machine = struct.unpack(fmt, head[16:20])
    return Header(
        p, elf_class, endianness, _E_MACHINE.get(e_machine, f"EM_{e_machine}"),
        _E_TYPE.get(e_type, f"type {e_type}"),
    )


def check_complete(path: str | os.PathLike[str]) -> Header:
    """Check that every loadable segment of ``path`` lies inside the file.

    The loader maps segments straight from the file; touching a page past the end of a
    truncated file kills the process with SIGBUS. labkit checks this before any dlopen.
    Raises :class:`ElfError` (reason ``truncated``) when a segment runs past the end.
    """
    header = peek(path)
    _COMPLETE(header.path, _check_segments)
    return header


def _check_segments(p: Path) -> bool:
    header = peek(p)
    size = p.stat().st_size
    with open_binary(p) as f:
        data = f.read(64)
        end = "<" if header.endianness == "little" else ">"
        if header.elf_class == 64:
            phoff, = struct.unpack(end + "Q", data[32:40])
            phentsize, phnum = struct.unpack(end + "HH", data[54:58])
            entry = struct.Struct(end + "IIQQQQQQ")  # type, flags, offset, vaddr, paddr, filesz
        else:
            phoff, = struct.unpack(end + "I", data[28:32])
            phentsize, phnum = struct.unpack(end + "HH", data[42:46])
            entry = struct.Struct(end + "IIIIIIII")  # type, offset, vaddr, paddr, filesz
        table_end = phoff + phentsize * phnum
        if len(data) < 58 or table_end > size:
            raise _truncated(p, size, table_end, "its program header table")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        fields = entry.unpack_from(table, i * phentsize)
        if header.elf_class == 64:
            p_type, p_offset, p_filesz = fields[0], fields[2], fields[5]
        else:
            p_type, p_offset, p_filesz = fields[0], fields[1], fields[4]
        if p_type == 1 and p_offset + p_filesz > size:  # PT_LOAD
            raise _truncated(p, size, p_offset + p_filesz, f"loadable segment {i}")
    return True


def _truncated(p: Path, size: int, needed: int, what: str) -> ElfError:
    return ElfError(
        f"{show(p)!r} is truncated: {what} ends at byte {needed}, but the file has only "
        f"{size} bytes (mapping it would kill the process with SIGBUS)",
        path=p, reason="truncated", fix="rebuild it, or copy it again in full",
    )


def read_soname(path: str | os.PathLike[str]) -> str | None:
    """Only the DT_SONAME of ``path`` (None if it has none): reads the dynamic section
    alone, so it is cheap enough to ask of every library mapped into a process.

    Raises :class:`ElfError` or :class:`InputError` as :func:`read_elf` does.
    """
    from elftools.common.exceptions import ELFError, ELFParseError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    p = check_complete(path).path
    try:
        with open_binary(p) as f:
            for sec in sections_of(ELFFile(f), "SHT_DYNAMIC"):
                if isinstance(sec, DynamicSection):
                    tag: Any  # pyelftools sets .soname at run time
                    for tag in sec.iter_tags("DT_SONAME"):
                        return str(tag.soname)
    except (ELFError, ELFParseError, struct.error, ValueError) as exc:
        raise damaged(p, exc) from exc
    return None


def section_headers(elf: Any) -> Iterator[tuple[int, str, Any]]:
    """Each section of ``elf`` (a pyelftools ``ELFFile``) as its index, name and header, without
    building the section: pyelftools builds every section whenever it iterates or looks one up
    by name, and builds a hash section by parsing its whole table, which in a Go plugin costs
    more than all the rest."""
    for index in range(elf.num_sections()):
        header = elf._get_section_header(index)
        yield index, elf._get_section_name(header), header


def sections_of(elf: Any, *types: str) -> Iterator[Any]:
    """The sections of ``elf`` whose type is one of ``types`` (``"SHT_DYNAMIC"``), built one by
    one; the others are only their headers (see :func:`section_headers`)."""
    for index, _, header in section_headers(elf):
        if header["sh_type"] in types:
            yield elf.get_section(index)


def section_named(elf: Any, name: str) -> tuple[int, Any] | None:
    """The index and section of ``elf`` called ``name`` (the first), or None; only that section
    is built."""
    for index, found, _ in section_headers(elf):
        if found == name:
            return index, elf.get_section(index)
    return None


T = TypeVar("T")


class FileMemo(Generic[T]):
    """What was read from a file, kept while it is the same file: the key is its resolved
    path, device, inode, size and modification time, so an edited or replaced file is read
    again. A lookup costs a ``stat``; the oldest entry goes beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self._found: dict[tuple[str, int, int, int, int], T] = {}
        self._limit = limit

    def __call__(self, path: Path, read: Callable[[Path], T]) -> T:
        """``read(path)``, or what it returned for this very file before."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key not in self._found:
            if len(self._found) >= self._limit:
                del self._found[next(iter(self._found))]  # the oldest
            self._found[key] = read(path)
        return self._found[key]


def read_elf(path: str | os.PathLike[str]) -> ElfInfo:
    """Read ``path`` with pyelftools, once while the file is unchanged (explain and the
    loader model ask for a file often). See :class:`ElfInfo` for what comes back.

    Raises :class:`ElfError` (not ELF, empty, truncated, damaged) or :class:`InputError`
    (missing path, directory).
    """
    p = existing_file(path)
    info = _READ(p, _read_elf)
    return info if info.path == p else dataclasses.replace(info, path=p)


def _read_elf(path: Path) -> ElfInfo:
    from elftools.common.exceptions import ELFError, ELFParseError

    p = check_complete(path).path
    try:
        with open_binary(p) as f:
            return _parse(p, f)
    except (ELFError, ELFParseError, struct.error, ValueError, KeyError, IndexError,
            AttributeError, TypeError) as exc:
        raise damaged(p, exc) from exc
    except Exception as exc:  # construct's StreamError and friends on a cut-off file
        if type(exc).__module__.startswith(("construct", "elftools")):
            raise damaged(p, exc) from exc
        raise


_READ: FileMemo[ElfInfo] = FileMemo(256)
_PEEKED: FileMemo[Header] = FileMemo(1024)
_COMPLETE: FileMemo[bool] = FileMemo(1024)  # the files whose segments all lie inside them


def damaged(p: Path, exc: BaseException) -> ElfError:
    """The error for a file that starts like ELF and then cannot be read."""
    size = p.stat().st_size
    return ElfError(
        f"{show(p)!r} starts like an ELF file but cannot be read ({size} bytes; "
        f"pyelftools: {exc}); it is probably truncated or damaged",
        path=p, reason="truncated", fix="rebuild it, or copy it again in full",
    )


def _check_magic(p: Path, head: bytes) -> None:
    if not head:
        raise ElfError(
            f"{show(p)!r} is empty (0 bytes), not an ELF file",
            path=p, reason="empty",
            fix="the build or copy that produced it failed: make it again",
        )
    if not head.startswith(ELF_MAGIC):
        from .foreign import format_of

        foreign = format_of(head)
        if foreign is not None:
            platform = "Windows" if foreign == "PE" else "macOS"
            what = (f"a {platform} {foreign} file, which only the {platform} loader reads "
                    "(`python -m labkit explain` says what it would do with it)")
        elif head.startswith(b"\0asm"):
            what = "a WebAssembly module (load it with a wasm runtime such as wasmtime)"
        elif head.startswith(b"#!"):
            what = "a script"
        elif head.startswith(b"!<arch>"):
            what = "a static archive (.a): link it into a program, it cannot be loaded"
        elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
            what = "a text file"
        else:
            what = "some other binary format"
        raise ElfError(
            f"{show(p)!r} is not an ELF file: it begins with {head[:8]!r}, {what}",
            path=p, reason="not-elf",
            fix="point at the real shared object (ELF files begin with b'\\x7fELF')",
        )


#: The sections :func:`read_elf` reads beyond their headers.
_READ_WHOLE = ("SHT_DYNAMIC", "SHT_GNU_versym", "SHT_GNU_verneed", "SHT_GNU_verdef")


def _parse(p: Path, f: Any) -> ElfInfo:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection

    elf = ELFFile(f)
    interpreter, tls = interpreter_and_tls(elf)
    dynamic = DynamicTags()
    versym = verneed = verdef = None
    sections: list[Section] = []
    for index, name, header in section_headers(elf):
        sections.append(
            Section(name, str(header["sh_type"]).removeprefix("SHT_"),
                    _section_flags(header["sh_flags"]), header["sh_size"])
        )
        if header["sh_type"] not in _READ_WHOLE:
            continue
        sec = elf.get_section(index)
        if isinstance(sec, DynamicSection):
            dynamic.read(sec)
        elif isinstance(sec, GNUVerSymSection):
            versym = sec
        elif isinstance(sec, GNUVerNeedSection):
            verneed = sec
        elif isinstance(sec, GNUVerDefSection):
            verdef = sec

    names = _version_names(verneed, verdef)
    symbols = tuple(_dynamic_symbols(elf, versym, names))
    needs = []
    for vn, auxes in (verneed.iter_versions() if verneed is not None else ()):
        listed = [(aux.name, aux["vna_flags"]) for aux in auxes]
        needs.append(VersionNeed(vn.name or "", tuple(name for name, _ in listed),
                                 tuple(name for name, flags in listed if flags & _VER_FLG_WEAK)))
    defs = tuple(
        next(auxes).name
        for vd, auxes in (verdef.iter_versions() if verdef is not None else ())
        if not vd["vd_flags"] & 0x1  # VER_FLG_BASE names the file itself
    )
    e_type = {"ET_DYN": "shared object", "ET_EXEC": "executable", "ET_REL": "relocatable",
              "ET_CORE": "core"}.get(elf["e_type"], str(elf["e_type"]))
    if e_type == "shared object" and dynamic.flags_1 & DF_1_PIE:
        e_type = "pie executable"  # as readelf says: libc.so.6 has an interpreter, and is a library
    return ElfInfo(
        path=p,
        elf_class=elf.elfclass,
        endianness="little" if elf.little_endian else "big",
        e_machine=str(elf["e_machine"]),
        type=e_type,
        interpreter=interpreter,
        needed=tuple(dynamic.needed),
        soname=dynamic.soname,
        rpath=tuple(dynamic.rpath),
        runpath=tuple(dynamic.runpath),
        symbols=symbols,
        version_needs=tuple(needs),
        version_defs=defs,
        sections=tuple(sections),
        flags=dynamic.flags,
        flags_1=dynamic.flags_1,
        tls=tls,
        versioned=verdef is not None,
        symbol_versions=versym is not None,
    )


class DynamicTags:
    """The tags of a dynamic section that the loader acts on, as read from pyelftools (for
    :func:`read_elf` and :func:`labkit.inspect.dynamic.read_dynamic`)."""

    def __init__(self) -> None:
        self.needed: list[str] = []
        self.soname: str | None = None
        self.rpath: list[str] = []
        self.runpath: list[str] = []
        self.flags = 0
        self.flags_1 = 0

    def read(self, section: Any) -> None:
        tag: Any  # pyelftools sets .needed, .soname, .rpath, .runpath at run time
        for tag in section.iter_tags():
            kind = tag.entry.d_tag
            if kind == "DT_NEEDED":
                self.needed.append(tag.needed)
            elif kind == "DT_SONAME":
                self.soname = tag.soname
            elif kind == "DT_RPATH":
                self.rpath.extend(tag.rpath.split(":"))
            elif kind == "DT_RUNPATH":
                self.runpath.extend(tag.runpath.split(":"))
            elif kind == "DT_FLAGS":
                self.flags = tag.entry.d_val
            elif kind == "DT_FLAGS_1":
                self.flags_1 = tag.entry.d_val


def interpreter_and_tls(elf: Any) -> tuple[str | None, TlsSegment | None]:
    """The interpreter (PT_INTERP) and the TLS block (PT_TLS, when it is not empty)."""
    interpreter = tls = None
    seg: Any  # pyelftools adds get_interp_name() to PT_INTERP segments at run time
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_INTERP":
            interpreter = seg.get_interp_name()
        elif seg["p_type"] == "PT_TLS" and seg["p_memsz"]:
            align = max(int(seg["p_align"]), 1)
            tls = TlsSegment(int(seg["p_memsz"]), align, int(seg["p_vaddr"]) & (align - 1))
    return interpreter, tls


def _version_names(verneed: Any, verdef: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    if verneed is not None:
        for _, auxes in verneed.iter_versions():
            for aux in auxes:
                names[aux["vna_other"]] = aux.name
    if verdef is not None:
        for vd, auxes in verdef.iter_versions():
            names[vd["vd_ndx"]] = next(auxes).name
    return names


def _dynamic_symbols(elf: Any, versym: Any, names: dict[int, str]) -> Iterator[Symbol]:
    """The dynamic symbols, unpacked from the section's bytes with :mod:`struct` (what
    pyelftools would say, symbol by symbol, in a fraction of the time: a Go program has
    thousands); names as pyelftools gives them (``STT_LOOS`` is ``IFUNC``)."""
    from elftools.elf.enums import ENUM_ST_INFO_BIND, ENUM_ST_INFO_TYPE, ENUM_ST_VISIBILITY

    types, binds, visibilities = (_reverse(e) for e in (ENUM_ST_INFO_TYPE, ENUM_ST_INFO_BIND,
                                                        ENUM_ST_VISIBILITY))
    order = "<" if elf.little_endian else ">"
    versions = versym.data() if versym is not None else b""
    for table in sections_of(elf, "SHT_DYNSYM"):
        for index, name, info, other, shndx, _, sym_size in raw_symbols(elf, table):
            kind = types.get(info & 0xF, str(info & 0xF))
            version, default, hidden = None, False, False
            if 2 * index + 2 <= len(versions):
                (ndx,) = struct.unpack_from(order + "H", versions, 2 * index)
                if ndx not in _VERSYM_SPECIAL:
                    hidden = bool(ndx & _VERSYM_HIDDEN)
                    number = ndx & ~_VERSYM_HIDDEN
                    # 0 and 1 are VER_NDX_LOCAL and VER_NDX_GLOBAL: unversioned
                    version = names.get(number) if number > 1 else None
                    if version == name:  # the symbol that names a version definition
                        version = None
                    default = shndx != 0 and not hidden
            yield Symbol(
                name=name,
                type=_SYMBOL_TYPES.get(kind, kind.removeprefix("STT_")),
                binding=_SYMBOL_BINDINGS.get(bind := binds.get(info >> 4, str(info >> 4)),
                                             bind.removeprefix("STB_")),
                visibility=visibilities.get(other & 0x7, str(other & 0x7)).removeprefix("STV_"),
                defined=shndx != 0,  # SHN_UNDEF
                version=version,
                default_version=default,
                size=sym_size,
                hidden=hidden,
            )


def raw_symbols(elf: Any, table: Any) -> Iterator[tuple[int, str, int, int, int, int, int]]:
    """Each entry of a symbol table section but the first (index 0, always empty), unpacked
    from its bytes with :mod:`struct`: (index, name, st_info, st_other, st_shndx, st_value,
    st_size). pyelftools parses a symbol at a time, which takes seconds for a Go program."""
    order = "<" if elf.little_endian else ">"
    wide = elf.elfclass == 64
    # Elf64_Sym: name, info, other, shndx, value, size; Elf32_Sym: name, value, size, info,
    # other, shndx
    entry = struct.Struct(order + ("IBBHQQ" if wide else "IIIBBH"))
    data = table.data()
    strings = elf.get_section(table["sh_link"]).data()
    size = table["sh_entsize"] or entry.size
    for index in range(1, len(data) // size):
        fields = entry.unpack_from(data, index * size)
        if wide:
            name_at, info, other, shndx, value, sym_size = fields
        else:
            name_at, value, sym_size, info, other, shndx = fields
        end = strings.find(b"\0", name_at)
        name = strings[name_at:end if end != -1 else len(strings)].decode("utf-8", "replace")
        yield index, name, info, other, shndx, value, sym_size


#: Version indexes pyelftools names rather than numbers: VER_NDX_LOCAL, VER_NDX_GLOBAL,
#: VER_NDX_LORESERVE, VER_NDX_ELIMINATE.
_VERSYM_SPECIAL = frozenset({0, 1, 0xFF00, 0xFF01})


def _reverse(enum: Mapping[str, Any]) -> dict[int, str]:
    """A pyelftools enum from value to name; of two names for one value the last wins, as
    pyelftools decodes it."""
    return {value: name for name, value in enum.items() if isinstance(value, int)}


def _section_flags(value: int) -> str:
    # the letters readelf uses for the flags a learner meets
    letters = ((0x1, "W"), (0x2, "A"), (0x4, "X"), (0x10, "M"), (0x20, "S"), (0x400, "T"))
    return "".join(letter for bit, letter in letters if value & bit)
