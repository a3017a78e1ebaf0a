"""The sandbox launcher: confine this process with Landlock and seccomp, then become the plugin.

:mod:`labkit.rpc.sandbox` starts every confined plugin through it::

    python -I -S -B .../labkit/rpc/confine.py [--read PATH]... [--write PATH]...
        [--setenv NAME=VALUE]... [--network] [--allow-without-landlock] [--max-abi N]
        -- COMMAND [ARG]...

(``python -m labkit.rpc.confine ...`` works too; :func:`labkit.rpc.sandbox.launcher_command`
imports it as a plain module, to use its cached bytecode.) In this order it

1. asks the kernel for its Landlock ABI (``landlock_create_ruleset(NULL, 0, VERSION)``);
   without Landlock (``ENOSYS``: too old, ``EOPNOTSUPP``: not enabled at boot) it refuses,
   unless ``--allow-without-landlock``;
2. sets ``PR_SET_NO_NEW_PRIVS`` (no set-uid program can gain rights; seccomp and Landlock
   need it from a process without ``CAP_SYS_ADMIN``);
3. builds a Landlock ruleset that handles every filesystem right the ABI knows, the TCP
   rights (ABI 4, unless ``--network``) and the abstract-Unix-socket and signal scopes
   (ABI 6); grants read and execute beneath each ``--read`` path and every right beneath
   each ``--write`` path, and restricts itself (Landlock and seccomp bind the calling thread;
   the launcher has only one, so they bind the whole process and all it starts): from then
   on nothing else can be opened, created, removed, renamed or truncated, whatever the file
   modes say;
4. installs a seccomp-BPF filter: a system call of another architecture (i386's
   ``socketcall`` among them) or of x32 kills the process; ``socket`` and ``socketpair``
   of any family but ``AF_UNIX`` fail with ``EPERM`` (unless ``--network``), and so does
   ``io_uring_setup`` (io_uring's requests would not pass the filter). Where the ABI lacks
   Landlock's signal scope (below 6), signals to other processes fail with ``EPERM``; where
   it lacks the truncate right (below 3), ``truncate(2)`` does;
5. executes the command (found in ``PATH`` before step 2) with ``--setenv`` added to its
   environment.

A problem before the exec is one line on stderr and exit status :data:`EXIT_CONFINE`. It
imports only ``ctypes``, ``os``, ``stat`` and ``sys``, and runs with ``-I -S``, so it adds a few
milliseconds to a plugin's start. The constants come from the kernel's uapi headers
(``linux/landlock.h``, ``linux/seccomp.h``, ``linux/filter.h``, ``linux/audit.h``,
``asm/unistd.h``).
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

TYPE_CHECKING = False  # typing itself takes milliseconds to import
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The exit status of a launcher that could not confine or start the command (as env(1)).
EXIT_CONFINE = 125
PROGRAM = "labkit.rpc.confine"

# -- Landlock: include/uapi/linux/landlock.h --------------------------------------------------

SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on x86_64 and aarch64 (asm-generic)
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2 (Linux 5.19): link and rename across folders
FS_TRUNCATE = 1 << 14  # ABI 3 (6.2)
FS_IOCTL_DEV = 1 << 15  # ABI 5 (6.10)
FS_RESOLVE_UNIX = 1 << 16  # ABI 9 (7.1): connect to a pathname Unix socket
NET_BIND_TCP = 1 << 0  # ABI 4 (6.7)
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6 (6.12)
SCOPE_SIGNAL = 1 << 1

#: The filesystem rights each ABI added (ABI 4, 6, 7 and 8 added none).
FS_RIGHTS_ADDED = {1: (1 << 13) - 1, 2: FS_REFER, 3: FS_TRUNCATE, 5: FS_IOCTL_DEV,
                   9: FS_RESOLVE_UNIX}
#: The rights a rule on a file (not a folder) may carry.
FS_FILE_RIGHTS = (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
                  | FS_RESOLVE_UNIX)
FS_READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
#: The newest ABI whose rights this launcher knows; a newer kernel is used as this one.
KNOWN_ABI = 9


def fs_rights(abi: int) -> int:
    """Every filesystem access right Landlock ABI ``abi`` handles."""
    rights = 0
    for added, bits in FS_RIGHTS_ADDED.items():
        if abi >= added:
            rights |= bits
    return rights


def net_rights(abi: int) -> int:
    """The TCP rights of ABI ``abi`` (from 4)."""
    return NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0


def scopes(abi: int) -> int:
    """The IPC scopes of ABI ``abi`` (from 6)."""
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64))


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)): 12 bytes
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


# -- seccomp: linux/seccomp.h, linux/filter.h, linux/audit.h ---------------------------------

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K
#: Offsets in struct seccomp_data {int nr; __u32 arch; __u64 ip; __u64 args[6];}; the low
#: half of args[0] (both architectures are little-endian).
DATA_NR, DATA_ARCH, DATA_ARG0 = 0, 4, 16
X32_SYSCALL_BIT = 0x40000000
AF_UNIX = 1
EPERM = 1

#: Per machine: its AUDIT_ARCH_* and the numbers of the system calls the filter names.
ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "socket": 41, "socketpair": 53, "io_uring_setup": 425, "truncate": 76, "kill": 62,
        "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "pidfd_send_signal": 424, "landlock_create_ruleset": SYS_LANDLOCK_CREATE_RULESET}),
    "aarch64": (0xC00000B7, {
        "socket": 198, "socketpair": 199, "io_uring_setup": 425, "truncate": 45, "kill": 129,
        "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_send_signal": 424, "landlock_create_ruleset": SYS_LANDLOCK_CREATE_RULESET}),
}


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int


class ConfineError(Exception):
    """Confinement failed before the exec: ``what`` went wrong, and the ``fix``."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


def landlock_abi() -> tuple[int, int]:
    """The kernel's Landlock ABI version and 0, or 0 and the errno that says why there is
    none (``ENOSYS``: a kernel before 5.13 or built without it; ``EOPNOTSUPP``: not enabled
    at boot)."""
    abi = _syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                   ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return (int(abi), 0) if abi >= 0 else (0, ctypes.get_errno())


def restrict(abi: int, read: Sequence[str], write: Sequence[str], *, network: bool) -> None:
    """Landlock this process (and what it executes) with ABI ``abi``'s rights: read and
    execute beneath ``read``, everything beneath ``write``, nothing elsewhere; TCP and the
    IPC scopes as the ABI allows. Needs ``PR_SET_NO_NEW_PRIVS`` set."""
    handled = fs_rights(abi)
    attr = _RulesetAttr(handled, 0 if network else net_rights(abi), scopes(abi))
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct as this ABI knows it
    ruleset = _syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                       ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        errno = ctypes.get_errno()
        raise ConfineError(f"landlock_create_ruleset refused the ruleset of ABI {abi}: "
                           f"{os.strerror(errno)}", "report this kernel's version to the lab")
    try:
        for paths, rights in ((read, FS_READ_RIGHTS & handled), (write, handled)):
            for path in paths:
                _allow(int(ruleset), path, rights)
        if _syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                    ctypes.c_uint32(0)) < 0:
            errno = ctypes.get_errno()
            raise ConfineError(f"landlock_restrict_self failed: {os.strerror(errno)}",
                               "set PR_SET_NO_NEW_PRIVS first")
    finally:
        os.close(ruleset)


def _allow(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfineError(f"cannot open {path!r} to allow it: {exc.strerror}",
                           "name folders that exist in Sandbox(read=..., write=...)") from None
    try:
        if not stat.S_ISDIR(os.stat(fd).st_mode):
            rights &= FS_FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        if _syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                    ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                    ctypes.c_uint32(0)) < 0:
            errno = ctypes.get_errno()
            raise ConfineError(f"landlock_add_rule refused {path!r}: {os.strerror(errno)}",
                               "name a folder or a file on a file system Landlock supports")
    finally:
        os.close(fd)


def filter_program(machine: str, deny: Mapping[str, int], only: Mapping[str, tuple[int, ...]],
                   ) -> list[tuple[int, int, int, int]]:
    """The seccomp-BPF program, as (code, jt, jf, k) instructions: kill a system call of
    another architecture (or x32), fail each call named in ``deny`` with its errno, and fail
    each call named in ``only`` with ``EPERM`` unless its first argument (its low 32 bits)
    is one of the values given; allow the rest."""
    if machine not in ARCHES:
        raise ConfineError(f"the seccomp filter does not know the machine {machine!r}",
                           f"run the lab on {' or '.join(ARCHES)}")
    arch, numbers = ARCHES[machine]
    prog = [(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
            (BPF_JEQ_K, 1, 0, arch),
            (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
            (BPF_LD_W_ABS, 0, 0, DATA_NR)]
    if machine == "x86_64":
        prog += [(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS)]
    for name, errno in deny.items():
        prog += [(BPF_JEQ_K, 0, 1, numbers[name]), (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno)]
    for name, values in only.items():
        n = len(values)
        prog += [(BPF_JEQ_K, 0, n + 3, numbers[name]), (BPF_LD_W_ABS, 0, 0, DATA_ARG0)]
        prog += [(BPF_JEQ_K, n - i, 0, value & 0xFFFFFFFF) for i, value in enumerate(values)]
        prog += [(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
                 (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]
    prog.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return prog


def install_filter(program: Sequence[tuple[int, int, int, int]]) -> None:
    """Install a seccomp-BPF ``program`` on this process; needs ``PR_SET_NO_NEW_PRIVS``.
    Warning: it stays for this process and everything it executes."""
    instructions = (_SockFilter * len(program))(*(_SockFilter(*i) for i in program))
    fprog = _SockFprog(len(program), instructions)
    if _prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
              ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        errno = ctypes.get_errno()
        raise ConfineError(f"the kernel refused the seccomp filter: {os.strerror(errno)}",
                           "run a kernel with CONFIG_SECCOMP_FILTER (distributions' have it)")


def no_new_privs() -> None:
    """Set ``PR_SET_NO_NEW_PRIVS``: no exec from here on can gain rights."""
    if _prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0),
              ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        why = os.strerror(ctypes.get_errno())
        raise ConfineError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {why}", "run on Linux 3.5 or later")


def confine(read: Sequence[str], write: Sequence[str], *, network: bool,
            allow_without_landlock: bool, max_abi: int | None) -> int:
    """Confine this process (the steps in the module's docstring) and return the Landlock
    ABI used (0: none). Raises :class:`ConfineError`."""
    abi, errno = landlock_abi()
    if abi == 0 and not allow_without_landlock:
        why = os.strerror(errno)
        raise ConfineError(
            f"Landlock is not available on this kernel (Linux {os.uname().release}: "
            f"landlock_create_ruleset says {why!r}), so the plugin's files cannot be fenced in",
            "run a kernel >= 5.13 with CONFIG_SECURITY_LANDLOCK=y and 'landlock' in its lsm= "
            "boot parameter, or accept a sandbox without Landlock (seccomp's network filter "
            "only) with Sandbox(allow_without_landlock=True)")
    abi = min(abi, KNOWN_ABI, max_abi if max_abi is not None else abi)
    no_new_privs()
    if abi:
        restrict(abi, read, write, network=network)
    numbers = ARCHES.get(os.uname().machine, (0, {}))[1]
    deny = {"io_uring_setup": EPERM}
    only: dict[str, tuple[int, ...]] = {}
    if not network:
        only |= {"socket": (AF_UNIX,), "socketpair": (AF_UNIX,)}
    if abi < 3:  # no Landlock truncate right: truncate(2) by path would reach any file
        deny["truncate"] = EPERM
    if abi < 6 and numbers:  # no Landlock signal scope: signal only this process (group)
        me = os.getpid()
        deny |= {"tkill": EPERM, "pidfd_send_signal": EPERM}
        only |= {"kill": (me, 0, -me), "tgkill": (me,), "rt_sigqueueinfo": (me,),
                 "rt_tgsigqueueinfo": (me,)}
    install_filter(filter_program(os.uname().machine, deny, only))
    return abi


def parse(argv: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, str], set[str],
                                        int | None, list[str]]:
    """The launcher's command line: (paths by --read/--write, --setenv, flags, --max-abi,
    command)."""
    paths: dict[str, list[str]] = {"--read": [], "--write": []}
    env: dict[str, str] = {}
    flags: set[str] = set()
    max_abi: int | None = None
    args = list(argv)
    while args:
        option = args.pop(0)
        if option == "--":
            if not args:
                break
            return paths, env, flags, max_abi, args
        if option in ("--network", "--allow-without-landlock"):
            flags.add(option)
        elif option in ("--read", "--write", "--setenv", "--max-abi") and args:
            value = args.pop(0)
            if option == "--setenv":
                name, sep, text = value.partition("=")
                if not sep or not name:
                    raise ConfineError(f"--setenv takes NAME=VALUE, not {value!r}",
                                       "write NAME=VALUE")
                env[name] = text
            elif option == "--max-abi":
                if not value.isdigit() or int(value) < 1:
                    raise ConfineError(
                        f"--max-abi takes a Landlock ABI version from 1, not {value!r}",
                        "write e.g. --max-abi 3")
                max_abi = int(value)
            else:
                paths[option].append(value)
        else:
            raise ConfineError(f"unknown or incomplete option {option!r}",
                               "see the usage in labkit/rpc/confine.py's docstring")
    raise ConfineError("no command after '--'", "end the options with -- COMMAND [ARG]...")


def find_program(name: str, search: str) -> str:
    """``name`` as execvp(3) finds it in ``search`` (a PATH), found before the sandbox closes
    (``os.execvpe`` imports a module, which a confined Python may not read)."""
    if "/" in name:
        return name
    for folder in search.split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ConfineError(f"no program {name!r} in PATH", "give the program's full path")


def main(argv: Sequence[str] | None = None) -> int:
    """Confine, then exec the command; on any problem one line on stderr and
    :data:`EXIT_CONFINE`."""
    command: list[str] = []
    try:
        paths, env, flags, max_abi, command = parse(sys.argv[1:] if argv is None else argv)
        environment = {**os.environ, **env}
        program = find_program(command[0], environment.get("PATH", os.defpath))
        confine(paths["--read"], paths["--write"], network="--network" in flags,
                allow_without_landlock="--allow-without-landlock" in flags, max_abi=max_abi)
        try:
            os.execve(program, command, environment)
        except OSError as exc:
            raise ConfineError(
                f"cannot execute {program!r}: {exc.strerror}", "a confined program (and its "
                "interpreter) must lie in a folder the sandbox reads: add it to "
                "Sandbox(read=[...])") from None
    except ConfineError as exc:
        named = f" {command[0]!r}" if command else ""
        sys.stderr.write(f"{PROGRAM}: cannot confine{named}: {exc.what}. Fix: {exc.fix}\n")
        sys.stderr.flush()
    return EXIT_CONFINE


if __name__ == "__main__":
    sys.exit(main())
