"""What a Go binary says about its own build, read from the file without running it.

Every Go binary since Go 1.18 carries a ``.go.buildinfo`` section: the toolchain version and
the module information that ``go version -m`` prints (main package, modules, build settings
such as ``-buildmode``, ``-trimpath``, ``-tags``, ``CGO_ENABLED``). :func:`go_info` reads it.

A binary that can load plugins, and every plugin, also carries one *fingerprint* per Go
package linked into it (``go:link.pkghashbytes.<package>``: a hash of the package's
compiled export data). When ``plugin.Open`` loads a plugin, the Go runtime compares the
plugin's fingerprint of each package with the host's, in the plugin's link order, and
refuses at the first difference: "plugin was built with a different version of package X".
:attr:`GoInfo.fingerprints` holds them, so the refusal can be predicted from the two files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ElfError
from ..paths import existing_file, show
from .elf import FileMemo, check_complete, open_binary, raw_symbols, section_named

#: The 14 bytes that open the build information block (``debug/buildinfo``).
BUILDINFO_MAGIC = b"\xff Go buildinf:"
_FLAG_INLINE = 0x2  # Go 1.18+: version and module info follow the header as strings
_HEADER = 32
_SENTINEL = 16  # the module info is wrapped in 16 bytes of sentinel on each side
_PKGNAME = re.compile(r"go:link\.pkgname\.(\d+)$")
_LINKHASH = re.compile(r"go:link\.pkglinkhash\.(\d+)$")
_HASHBYTES = "go:link.pkghashbytes."


@dataclass(frozen=True)
class Module:
    """One line ``mod`` or ``dep`` of the module information: path, version, checksum."""

    path: str
    version: str
    sum: str = ""
    replaced_by: Module | None = None


@dataclass(frozen=True)
class GoInfo:
    """The build of one Go binary, as recorded in it.

    ``settings`` are the ``build`` lines in order (``{"-buildmode": "plugin",
    "CGO_ENABLED": "1", ...}``). ``fingerprints`` maps each Go package linked in to its
    fingerprint (hex), in link order, for binaries that can load or be plugins (empty
    otherwise, and for a stripped binary).
    """

    path: Path
    go_version: str
    main_path: str
    main: Module | None
    deps: tuple[Module, ...]
    settings: dict[str, str]
    fingerprints: dict[str, str] = field(default_factory=dict)
    stripped: bool = False
    plugin_path: str = ""  # a plugin's identity in a process (go:link.thispluginpath)

    @property
    def buildmode(self) -> str:
        """``exe``, ``plugin``, ``c-shared``, ``pie``... (``exe`` when not recorded)."""
        return self.settings.get("-buildmode", "exe")

    @property
    def cgo(self) -> bool:
        """Whether it was built with ``CGO_ENABLED=1``."""
        return self.settings.get("CGO_ENABLED") == "1"

    def version_m(self) -> str:
        """The same text as ``go version -m FILE`` (path shown relative to the lab)."""
        lines = [f"{show(self.path)}: {self.go_version}"]
        if self.main_path:
            lines.append(f"\tpath\t{self.main_path}")
        if self.main is not None:
            lines.append(_module_line("mod", self.main))
        lines += [_module_line("dep", dep) for dep in self.deps]
        for key, value in self.settings.items():
            lines.append(f"\tbuild\t{key}={_quote(value)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.version_m()


def is_go(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ELF file built by the Go toolchain (it has build info)."""
    try:
        return _BLOBS(check_complete(path).path, _buildinfo_blob) is not None
    except (ElfError, OSError):
        return False


def go_info(path: str | os.PathLike[str]) -> GoInfo:
    """Read the Go build information and package fingerprints of ``path``.

    Raises :class:`~labkit.errors.ElfError` when ``path`` is not ELF or was not built by
    Go 1.18 or later, :class:`~labkit.errors.InputError` when it is missing.
    """
    p = existing_file(path)
    info = _GO_INFO(p, _read_go_info)
    return info if info.path == p else dataclasses.replace(info, path=p)


def _read_go_info(path: Path) -> GoInfo:
    p = check_complete(path).path
    blob = _BLOBS(p, _buildinfo_blob)
    if blob is None:
        raise ElfError(
            f"{show(p)!r} has no Go build information: it was not built by the Go "
            "toolchain (or by Go older than 1.18)",
            path=p, reason="not-go", fix="point at a Go program, plugin or c-shared library",
        )
    version, modinfo = _decode(p, blob)
    main_path, main, deps, settings = _parse_modinfo(modinfo)
    fingerprints, plugin_path, stripped = _fingerprints(p)
    return GoInfo(p, version, main_path, main, tuple(deps), settings, fingerprints, stripped,
                  plugin_path)


#: What :func:`go_info` has read, while each file is unchanged.
_GO_INFO: FileMemo[GoInfo] = FileMemo(64)
#: The build information's bytes (None: not a Go binary), so a file is asked once.
_BLOBS: FileMemo[bytes | None] = FileMemo(64)


def _buildinfo_blob(p: Path) -> bytes | None:
    """The bytes from the build info header on: from ``.go.buildinfo`` when the section
    table is there, else found by scanning for the magic at a 16-byte boundary."""
    from elftools.elf.elffile import ELFFile

    with open_binary(p) as f:
        try:
            elf = ELFFile(f)
            named = section_named(elf, ".go.buildinfo")
            section = named[1] if named is not None else None
        except Exception:  # a damaged file: fall back to the scan below
            section = None
        if section is not None:
            data: bytes = section.data()
            if data.startswith(BUILDINFO_MAGIC):
                return data
        f.seek(0)
        whole = f.read()
    at = whole.find(BUILDINFO_MAGIC)
    while at != -1 and at % 16:
        at = whole.find(BUILDINFO_MAGIC, at + 1)
    return whole[at:at + 64 * 1024] if at != -1 else None


def _decode(p: Path, blob: bytes) -> tuple[str, str]:
    flags = blob[15] if len(blob) > 15 else 0
    if not flags & _FLAG_INLINE:
        raise ElfError(
            f"{show(p)!r} was built by a Go older than 1.18, whose build information labkit "
            "does not read", path=p, reason="old-go", fix="rebuild it with a current Go",
        )
    version, at = _varstring(blob, _HEADER)
    modinfo, _ = _varstring(blob, at)
    if len(modinfo) >= 2 * _SENTINEL + 1 and modinfo[-_SENTINEL - 1] == "\n":
        modinfo = modinfo[_SENTINEL:-_SENTINEL]
    return version, modinfo


def _varstring(blob: bytes, at: int) -> tuple[str, int]:
    length, shift = 0, 0
    while at < len(blob):
        byte = blob[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return blob[at:at + length].decode("utf-8", errors="replace"), at + length


def _parse_modinfo(text: str) -> tuple[str, Module | None, list[Module], dict[str, str]]:
    main_path, main = "", None
    deps: list[Module] = []
    settings: dict[str, str] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        words = rest.split("\t")
        if kind == "path":
            main_path = rest
        elif kind in ("mod", "dep"):
            module = Module(words[0], words[1] if len(words) > 1 else "",
                            words[2] if len(words) > 2 else "")
            if kind == "mod":
                main = module
            else:
                deps.append(module)
        elif kind == "=>" and deps:
            last = deps[-1]
            replacement = Module(words[0], words[1] if len(words) > 1 else "",
                                 words[2] if len(words) > 2 else "")
            deps[-1] = Module(last.path, last.version, last.sum, replacement)
        elif kind == "build":
            key, _, value = rest.partition("=")
            settings[key] = _unquote(value)
    return main_path, main, deps, settings


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        try:
            return str(json.loads(value))  # Go's strconv.Quote output, as go version -m uses
        except ValueError:
            return value[1:-1]
    return value


def _quote(value: str) -> str:
    """Go quotes a setting that holds a space, tab, newline, quote or backquote."""
    if not any(c in value for c in " \t\r\n\"`"):
        return value
    return json.dumps(value, ensure_ascii=False)


def _module_line(kind: str, module: Module) -> str:
    line = f"\t{kind}\t{module.path}\t{module.version}\t{module.sum}"
    if module.replaced_by is not None:
        r = module.replaced_by
        line += f"\n\t=>\t{r.path}\t{r.version}\t{r.sum}"
    return line


def _fingerprints(p: Path) -> tuple[dict[str, str], str, bool]:
    """Each package's fingerprint, in the order the runtime checks them, and a plugin's
    path (its identity: the runtime refuses a second plugin with the same one).

    A plugin lists its packages as ``go:link.pkgname.N`` / ``go:link.pkglinkhash.N``
    (N is the link order); a host that can load plugins has ``go:link.pkghashbytes.<pkg>``
    (kept in address order, which is its link order). Read from ``.symtab``; a stripped
    binary has none and reports ``stripped``.
    """
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open_binary(p) as f:
        elf = ELFFile(f)
        named = section_named(elf, ".symtab")
        table = named[1] if named is not None else None
        if not isinstance(table, SymbolTableSection):
            return {}, "", True
        plugin_path = ""
        names: dict[int, Any] = {}
        hashes: dict[int, Any] = {}
        own: list[tuple[int, str, Any]] = []
        for _, name, _, _, _, value, size in raw_symbols(elf, table):
            sym = {"st_value": value, "st_size": size}  # what _read needs of it
            if name == "go:link.thispluginpath":
                plugin_path = _read(elf, sym).decode("utf-8", errors="replace")
            if not name.startswith("go:link.pkg"):
                continue
            if m := _PKGNAME.match(name):
                names[int(m.group(1))] = sym
            elif m := _LINKHASH.match(name):
                hashes[int(m.group(1))] = sym
            elif name.startswith(_HASHBYTES):
                own.append((sym["st_value"], name[len(_HASHBYTES):], sym))
        result: dict[str, str] = {}
        if names:  # a plugin: its own list, in the order plugin.Open checks it
            for index in sorted(names):
                if index in hashes:
                    package = _read(elf, names[index]).decode("utf-8", errors="replace")
                    result[package] = _read(elf, hashes[index]).hex()
        else:
            for _, package, sym in sorted(own, key=lambda item: item[0]):
                result[package] = _read(elf, sym).hex()
        return result, plugin_path, False


def _read(elf: Any, sym: Any) -> bytes:
    """The bytes a symbol covers, found through the segment that maps its address."""
    address, size = sym["st_value"], sym["st_size"]
    for seg in elf.iter_segments():
        if seg["p_type"] != "PT_LOAD":
            continue
        start = seg["p_vaddr"]
        if start <= address and address + size <= start + seg["p_filesz"]:
            elf.stream.seek(seg["p_offset"] + address - start)
            data: bytes = elf.stream.read(size)
            return data
    return b""
