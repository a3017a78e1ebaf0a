"""Static TLS: the room glibc's loader keeps for thread-local storage it must place at a
fixed distance from the thread pointer, and whether a library loaded later fits in it.

A library that uses the initial-exec TLS model (DF_STATIC_TLS in its DT_FLAGS, and
R_X86_64_TPOFF64 relocations) needs its TLS block inside the static TLS block of every
thread. The objects a program starts with are laid out there when it starts
(``_dl_determine_tlsoffset`` in glibc's elf/dl-tls.c); what dlopen brings in later gets a
place only in the *surplus* glibc adds at the end (``_dl_try_allocate_static_tls`` in
elf/dl-reloc.c), or the load fails with "cannot allocate memory in static TLS block". TLS
descriptors (``-mtls-dialect=gnu2``) also use the surplus, only its optional part
(glibc.rtld.optional_static_tls), and fall back to dynamic TLS when it is used up.

:class:`StaticTls` computes all of this from the files and from glibc's own constants
(:data:`STATIC_TLS_SURPLUS`, below): the surplus, from the tunables in
GLIBC_TUNABLES; the startup layout, from the TLS segments of the objects a process starts
with; the rseq area glibc 2.41 adds, from the kernel's auxiliary vector. With glibc's
defaults the surplus is 1664 bytes; what is free for a dlopen is that, plus the padding that
rounds the block to its alignment, minus what earlier loads took: 1712 bytes in Python 3.11
on Debian 12 (glibc 2.36), 1696 in Python 3.13 on Debian 13 (glibc 2.41), whose executable
has a TLS block of its own. x86_64's layout was checked against dlopen on both; aarch64's
follows the same source and is not tested here.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..inspect.elf import TlsSegment

#: glibc 2.41 puts the rseq area in the static TLS block after the startup objects'
#: blocks (elf/dl-tls.c, "extra TLS").
GLIBC_RSEQ_IN_STATIC_TLS = (2, 41)

#: The static TLS surplus of glibc's elf/dl-tls.c (2.32 and later): its size is
#: (nns - 1) * LIBC_IE_TLS + nns * OTHER_IE_TLS + optional_static_tls + LEGACY, with the
#: tunables glibc.rtld.nns (4, at most DL_NNS) and glibc.rtld.optional_static_tls (512); the
#: legacy part makes the default 1664 bytes, the size glibc always had.
STATIC_TLS_SURPLUS = {"LIBC_IE_TLS": 144, "OTHER_IE_TLS": 144, "DEFAULT_NNS": 4,
                      "OPTIONAL_TLS": 512, "DL_NNS": 16, "DEFAULT_SURPLUS": 1664}
#: How each machine lays out static TLS (glibc's tls.h): "tcb-at-tp" (x86_64: the blocks lie
#: below the thread pointer) or "dtv-at-tp" (aarch64: above it, after the TCB), with
#: TCB_ALIGNMENT (sysdeps/x86/nptl/pthreaddef.h: 64; nptl/descr.h's default: 32) and, for
#: dtv-at-tp, TLS_TCB_SIZE (aarch64: two pointers).
STATIC_TLS_LAYOUT = {"EM_X86_64": ("tcb-at-tp", 64, 0), "EM_AARCH64": ("dtv-at-tp", 32, 16)}
#: The rseq area glibc 2.41 adds to static TLS (sysdeps/unix/sysv/linux/rseq-internal.h):
#: at least 32 bytes, aligned to 32, or as the kernel asks through the auxiliary vector
#: (AT_RSEQ_FEATURE_SIZE 27, AT_RSEQ_ALIGN 28; a feature size of at least 20).
RSEQ = {"AREA_SIZE_INITIAL": 32, "AREA_SIZE_INITIAL_USED": 20, "MIN_ALIGN": 32,
        "AT_RSEQ_FEATURE_SIZE": 27, "AT_RSEQ_ALIGN": 28}


@dataclass
class StaticTls:
    """The static TLS block of one process, as glibc's loader keeps it.

    ``used`` is GL(dl_tls_static_used); ``size`` is GLRO(dl_tls_static_size), without the
    TCB where the TCB lies above the blocks (x86_64); ``align`` is GLRO(dl_tls_static_align);
    ``optional`` what is left of the optional surplus for TLS descriptors; ``surplus`` the
    surplus it started with. ``exact`` is False on a machine whose layout labkit does not
    know: then the whole surplus counts as free.
    """

    layout: str
    used: int
    size: int
    align: int
    optional: int
    surplus: int
    tunables: dict[str, int]
    exact: bool = True

    @classmethod
    def at_startup(
        cls,
        blocks: Iterable[TlsSegment],
        *,
        machine: str,
        env: Mapping[str, str],
        glibc: tuple[int, int],
        auxv: Mapping[int, int] | None = None,
    ) -> StaticTls:
        """The static TLS of a process that starts with the TLS ``blocks`` (in load order:
        the program's first), on ``machine`` (``EM_X86_64``...), with the environment
        ``env`` (GLIBC_TUNABLES) and glibc release ``glibc``. ``auxv`` is the auxiliary
        vector (this process's by default), for the rseq area of glibc 2.41 and later."""
        tunables = tunables_of(env)
        nns = tunables.get("glibc.rtld.nns", STATIC_TLS_SURPLUS["DEFAULT_NNS"])
        optional = tunables.get("glibc.rtld.optional_static_tls",
                                STATIC_TLS_SURPLUS["OPTIONAL_TLS"])
        surplus = surplus_size(nns, optional)
        layout, tcb_alignment, tcb_size = STATIC_TLS_LAYOUT.get(machine, ("", 64, 0))
        extra = (0, 1)
        if glibc >= (2, 41):
            extra = rseq_area(tunables.get("glibc.pthread.rseq", 1) != 0,
                              auxv if auxv is not None else read_auxv())
        known = dict(tunables)
        if layout == "dtv-at-tp":
            used, size, align = _dtv_at_tp(list(blocks), tcb_alignment, tcb_size, extra, surplus)
        else:
            used, size, align = _tcb_at_tp(list(blocks), tcb_alignment, extra, surplus)
        return cls(layout or "tcb-at-tp", used, size, align, optional, surplus, known,
                   exact=bool(layout))

    @property
    def free(self) -> int:
        """Bytes left for blocks dlopen places in static TLS (alignment aside)."""
        return self.size - self.used

    def fits(self, block: TlsSegment, *, optional: bool = False) -> bool:
        """Whether ``block`` would get a place now (see :meth:`allocate`), without taking it."""
        return self._place(block, optional) is not None

    def allocate(self, block: TlsSegment, *, optional: bool = False) -> bool:
        """Give ``block`` a place, as ``_dl_try_allocate_static_tls`` does: False when it
        does not fit, or is aligned more strictly than the static block. ``optional`` is for
        a TLS descriptor, which may use only the optional part of the surplus."""
        placed = self._place(block, optional)
        if placed is None:
            return False
        self.used, use = placed
        if optional:
            self.optional -= use
        return True

    def _place(self, block: TlsSegment, optional: bool) -> tuple[int, int] | None:
        if block.align > self.align:
            return None
        if self.layout == "dtv-at-tp":
            offset = _roundup(self.used - block.first_byte, block.align) + block.first_byte
            used = offset + block.size
            if used > self.size:
                return None
            use = used - self.used
        else:
            free = self.size - self.used
            needed = block.size + block.first_byte
            if free < needed:
                return None
            spare = (free - needed) // block.align
            use = free - spare * block.align - block.first_byte
            used = self.used + use
        if optional and use > self.optional:
            return None
        return used, use


def surplus_size(nns: int, optional: int) -> int:
    """The surplus of elf/dl-tls.c for ``nns`` namespaces and ``optional`` bytes for TLS
    descriptors: 1664 with the defaults (4 and 512)."""
    c = STATIC_TLS_SURPLUS
    nns = min(nns, c["DL_NNS"])
    legacy = c["DEFAULT_SURPLUS"] - _formula(c["DEFAULT_NNS"], c["OPTIONAL_TLS"])
    return _formula(nns, optional) + legacy


def _formula(nns: int, optional: int) -> int:
    c = STATIC_TLS_SURPLUS
    return (nns - 1) * c["LIBC_IE_TLS"] + nns * c["OTHER_IE_TLS"] + optional


def tunables_of(env: Mapping[str, str]) -> dict[str, int]:
    """The static-TLS tunables set in ``env``'s GLIBC_TUNABLES (``glibc.rtld.nns``,
    ``glibc.rtld.optional_static_tls``, ``glibc.pthread.rseq``), as glibc reads them:
    numbers in C syntax (``0x200``), a value out of the tunable's range ignored."""
    ranges = {"glibc.rtld.nns": (1, 16), "glibc.rtld.optional_static_tls": (0, 1 << 62),
              "glibc.pthread.rseq": (0, 1)}
    found: dict[str, int] = {}
    for item in env.get("GLIBC_TUNABLES", "").split(":"):
        name, _, text = item.partition("=")
        if name not in ranges:
            continue
        try:
            value = int(text, 0)
        except ValueError:
            continue
        low, high = ranges[name]
        if low <= value <= high:
            found[name] = value
    return found


def rseq_area(enabled: bool, auxv: Mapping[int, int]) -> tuple[int, int]:
    """(size, alignment) of the rseq area glibc 2.41 puts in static TLS: as the kernel asks
    (AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN) when rseq is on, else the 32-byte minimum."""
    if not enabled:
        return RSEQ["AREA_SIZE_INITIAL"], RSEQ["MIN_ALIGN"]
    size = max(auxv.get(RSEQ["AT_RSEQ_FEATURE_SIZE"], 0), RSEQ["AREA_SIZE_INITIAL_USED"])
    align = max(auxv.get(RSEQ["AT_RSEQ_ALIGN"], 0), RSEQ["MIN_ALIGN"])
    return _roundup(max(size, RSEQ["AREA_SIZE_INITIAL"]), align), align


def read_auxv() -> dict[int, int]:
    """This process's auxiliary vector (the kernel's, the same for its children)."""
    try:
        data = Path("/proc/self/auxv").read_bytes()
    except OSError:
        return {}
    word = struct.calcsize("L")
    usable = len(data) - len(data) % (2 * word)
    pairs = struct.iter_unpack("2L", data[:usable])
    return {key: value for key, value in pairs}


def glibc_version() -> tuple[int, int]:
    """The release of this process's glibc, (2, 36) for 2.36; (0, 0) if it is not glibc."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return (0, 0)
    name, _, number = text.partition(" ")
    parts = number.split(".")
    if name != "glibc" or len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return (0, 0)
    return int(parts[0]), int(parts[1])


def _tcb_at_tp(
    blocks: list[TlsSegment], tcb_alignment: int, extra: tuple[int, int], surplus: int,
) -> tuple[int, int, int]:
    """``_dl_determine_tlsoffset`` where the blocks lie below the thread pointer: returns
    (used, size without the TCB, alignment)."""
    offset = freetop = freebottom = 0
    max_align = tcb_alignment
    for block in blocks:
        firstbyte = -block.first_byte & (block.align - 1)
        max_align = max(max_align, block.align)
        if freebottom - freetop >= block.size:
            off = _roundup(freetop + block.size - firstbyte, block.align) + firstbyte
            if off <= freebottom:
                freetop = off
                continue
        off = _roundup(offset + block.size - firstbyte, block.align) + firstbyte
        if off > offset + block.size + (freebottom - freetop):
            freetop = offset
            freebottom = off - block.size
        offset = off
    extra_size, extra_align = extra
    max_align = max(max_align, extra_align)
    offset = _roundup(offset, extra_align) + extra_size
    return offset, _roundup(offset + surplus, max_align), max_align


def _dtv_at_tp(
    blocks: list[TlsSegment], tcb_alignment: int, tcb_size: int, extra: tuple[int, int],
    surplus: int,
) -> tuple[int, int, int]:
    """``_dl_determine_tlsoffset`` where the blocks follow the TCB: (used, size, alignment)."""
    offset = tcb_size
    freetop = freebottom = 0
    max_align = tcb_alignment
    for block in blocks:
        firstbyte = -block.first_byte & (block.align - 1)
        max_align = max(max_align, block.align)
        if block.size <= freetop - freebottom:
            off = _roundup(freebottom, block.align)
            if off - freebottom < firstbyte:
                off += block.align
            if off + block.size - firstbyte <= freetop:
                freebottom = off + block.size - firstbyte
                continue
        off = _roundup(offset, block.align)
        if off - offset < firstbyte:
            off += block.align
        if off - firstbyte - offset > freetop - freebottom:
            freebottom = offset
            freetop = off - firstbyte
        offset = off + block.size - firstbyte
    extra_size, extra_align = extra
    max_align = max(max_align, extra_align)
    offset = _roundup(offset, extra_align) + extra_size
    return offset, _roundup(offset + surplus, tcb_alignment), max_align


def _roundup(value: int, align: int) -> int:
    return -(-value // align) * align if align > 1 else value
