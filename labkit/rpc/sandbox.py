"""A real sandbox for an RPC plugin, with no root and no user namespaces: Landlock + seccomp.

A plugin process is not a sandbox: it runs with all its host's rights (read the learner's
files, write anywhere they may, open connections, signal the notebook's kernel). With
``PluginClient(..., sandbox=Sandbox())`` the plugin starts through the launcher
:mod:`labkit.rpc.confine`, which confines itself, then executes the plugin:

- **Landlock** (Linux 5.13+, unprivileged): the plugin may read and execute beneath the
  folders a plugin needs to start (:func:`default_reads`: ``/usr``, ``/lib*``, a few files
  of ``/etc``, the lab's Python and labkit, the plugin's own folder, ``plugins/proto`` and
  the protobuf stubs in labkit's cache), write only beneath its socket folder
  (``PLUGIN_UNIX_SOCKET_DIR``, also its ``TMPDIR``) and ``/dev/null``, plus the ``read``
  and ``write`` paths given. Each ABI adds rights, and the launcher handles all those of the
  running kernel (:func:`landlock_abi`): renames across folders (2; always refused before),
  truncation (3), TCP bind and connect (4), device ioctls (5), abstract Unix sockets and
  signals to processes outside the sandbox (6).
- **seccomp-BPF**: ``socket()`` and ``socketpair()`` of any family but ``AF_UNIX`` fail with
  ``EPERM`` (the network: IPv4, IPv6, netlink, raw packets...), ``io_uring_setup`` fails too,
  a system call of another architecture kills the plugin. Below Landlock ABI 6 it also
  keeps signals inside the plugin's own process (and group), below ABI 3 it refuses
  ``truncate(2)``.

:func:`describe` says in words what the running kernel enforces, :func:`enforcement` the
same as data. Without Landlock at all the plugin is not started (:class:`RPCPluginError`)
unless ``Sandbox(allow_without_landlock=True)`` accepts seccomp's network filter alone.

Known gaps:

- **Pathname Unix sockets.** The plugin must ``connect()`` Unix sockets: its host's broker
  (go-plugin's callbacks) listens on one, in the socket folder. seccomp sees only the
  address's pointer, not the path, so it cannot tell that socket from Docker's, the X
  server's, ssh-agent's, D-Bus's or systemd's (``systemd-run`` runs anything). Landlock
  restricts such connects from ABI 9 (Linux 7.1, ``LANDLOCK_ACCESS_FS_RESOLVE_UNIX``); the
  launcher uses it where the kernel has it, allowed only beneath the writable folders.
  Below ABI 9, any socket file the user may write to is reachable.
- Below ABI 6, abstract Unix sockets (X11's, some D-Bus buses) are reachable.
- Landlock does not fence metadata: ``stat``, ``access``, ``readlink`` work on any path, and
  so do ``chmod``, ``chown``, ``utime`` and ``setxattr`` (a confined plugin can make a secret
  file readable by all).
- The plugin inherits the host's environment, as with go-plugin unless its ``SkipHostEnv``
  is set: keep keys out of the host's environment, or pass ``env=`` what the plugin needs.
- No limits on CPU time, memory or processes (use rlimits or cgroups for those); a
  process the plugin forks is confined the same way.
- Below Landlock ABI 6, the seccomp signal fence takes the launcher's PID: a process the
  plugin forks cannot signal itself by PID (``kill(0, ...)``, its group, still works).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError, RPCPluginError
from ..paths import show
from . import confine

#: The launcher: :mod:`labkit.rpc.confine`'s file.
LAUNCHER = Path(confine.__file__).resolve()

#: The system folders a dynamically linked program (and Python) needs to read.
SYSTEM_READS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The files of ``/etc`` programs read at start: the loader's cache, certificates, names.
ETC_READS = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ld.so.preload", "ssl",
             "ca-certificates", "ca-certificates.conf", "pki", "crypto-policies",
             "localtime", "timezone", "passwd", "group", "nsswitch.conf", "hosts",
             "host.conf", "resolv.conf", "gai.conf", "services", "protocols", "mime.types")
#: Devices and kernel files: randomness, the CPU count, the process's own /proc entry.
DEVICE_READS = ("/dev/zero", "/dev/urandom", "/dev/random", "/proc/self",
                "/sys/devices/system/cpu", "/sys/kernel/mm/transparent_hugepage")


@dataclass(frozen=True)
class Sandbox:
    """How to confine an RPC plugin (see the module's docstring for what each part does).

    Parameters:
        read: more absolute paths (files or folders) the plugin may read and execute.
        write: more absolute paths the plugin may write, create and remove beneath.
        network: allow sockets of every family (and TCP); by default only ``AF_UNIX``.
        allow_without_landlock: start the plugin on a kernel without Landlock, confined by
            seccomp alone (no filesystem fence); by default such a start is refused.
        max_abi: use at most this Landlock ABI (to see what an older kernel would enforce);
            by default the kernel's.

    A path that is relative or does not exist is an :class:`InputError` at once.
    """

    read: Sequence[str | os.PathLike[str]] = ()
    write: Sequence[str | os.PathLike[str]] = ()
    network: bool = False
    allow_without_landlock: bool = False
    max_abi: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "read", _checked(self.read, "read"))
        object.__setattr__(self, "write", _checked(self.write, "write"))
        if self.max_abi is not None and (type(self.max_abi) is not int or self.max_abi < 1):
            raise InputError(f"Sandbox max_abi={self.max_abi!r} is not a Landlock ABI version",
                             fix="give a whole number from 1, or None for the kernel's")

    @property
    def abi(self) -> int:
        """The Landlock ABI this sandbox uses on this kernel (0: none)."""
        abi = min(landlock_abi(), confine.KNOWN_ABI)
        return min(abi, self.max_abi) if self.max_abi is not None else abi


def _checked(paths: Sequence[str | os.PathLike[str]], role: str) -> tuple[Path, ...]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise InputError(f"Sandbox {role}= takes a list of paths, not the single path "
                         f"{paths!r}", fix=f"write {role}=[{paths!r}]")
    checked = []
    for item in paths:
        path = Path(item)
        if not path.is_absolute():
            raise InputError(f"Sandbox {role} path {str(item)!r} is relative: the plugin "
                             "may run in another folder", fix="give an absolute path "
                             "(Path(...).resolve())", path=path)
        if not path.exists():
            raise InputError(f"Sandbox {role} path {show(path)!r} does not exist",
                             fix="create it first, or leave it out", path=path)
        checked.append(path)
    return tuple(checked)


def landlock_abi() -> int:
    """The running kernel's Landlock ABI version; 0 when it has no Landlock."""
    return confine.landlock_abi()[0]


def default_reads(command: Sequence[str], cwd: str | os.PathLike[str] | None = None,
                  ) -> list[str]:
    """The paths a confined ``command`` may read and execute by default: the system's
    folders, what it needs of ``/etc`` and ``/dev``, its program's folder, and for a Python
    plugin the lab's Python (``sys.prefix``, the base prefix, the site-packages folders on
    ``sys.path``: a user's ``pip install --user`` too), labkit, the ``.proto`` files
    and the protobuf stubs in labkit's cache (generated here, so that the plugin only reads
    them: its key is the ``.proto`` files' digest). Only paths that exist; relative ones are
    taken from ``cwd``, where the plugin starts."""
    paths = [*SYSTEM_READS, *(f"/etc/{name}" for name in ETC_READS), *DEVICE_READS]
    here = os.fspath(cwd) if cwd is not None else os.getcwd()
    program = shutil.which(command[0]) if "/" not in command[0] else command[0]
    if program:  # else the launcher says it found no such program
        paths.append(os.path.dirname(os.path.realpath(os.path.join(here, program))))
    if _is_python(command):
        from .stubs import PROTO_DIR, generate

        paths += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)),
                  *(p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")),
                  str(Path(__file__).resolve().parent.parent), str(PROTO_DIR), str(generate())]
        script = os.path.join(here, command[1]) if len(command) > 1 else ""
        if os.path.isfile(script):
            paths.append(os.path.dirname(os.path.realpath(script)))
    found: list[str] = []
    for path in paths:
        if path not in found and os.path.exists(path):
            found.append(path)
    return found


def _labkit_path(folder: Path) -> str:
    """A folder in the plugin's own socket folder holding only a link to labkit, for the
    plugin's PYTHONPATH. Where labkit is found through PYTHONPATH (a source checkout, the
    class hub), Python would list the checkout's folder to find it, and Landlock refuses
    that listing: the plugin may read labkit, not the lab beside it."""
    path = folder / "pythonpath"
    path.mkdir(exist_ok=True)
    link = path / "labkit"
    if not link.exists():
        link.symlink_to(Path(__file__).resolve().parent.parent)
    return str(path)


def _is_python(command: Sequence[str]) -> bool:
    return Path(command[0]).name.startswith("python")


def confined_command(command: Sequence[str], folder: Path, sandbox: Sandbox,
                     cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """The command line that starts ``command`` (in ``cwd``) confined by ``sandbox``, writing
    beneath the existing socket ``folder`` only (and the sandbox's ``write`` paths).

    Raises :class:`RPCPluginError` (``stage="start"``) on a kernel without Landlock unless
    ``sandbox.allow_without_landlock``."""
    abi = landlock_abi()
    if abi == 0 and not sandbox.allow_without_landlock:
        raise RPCPluginError(
            f"cannot confine plugin {show(command[0])!r}: {_no_landlock()}",
            fix="run a kernel >= 5.13 with Landlock enabled (CONFIG_SECURITY_LANDLOCK=y, "
            "'landlock' in the lsm= boot parameter), or pass "
            "Sandbox(allow_without_landlock=True) to confine its network only",
            stage="start", command=command)
    argv = launcher_command()
    for path in [*default_reads(command, cwd), *map(str, sandbox.read)]:
        argv += ["--read", path]
    for path in [str(folder), "/dev/null", *map(str, sandbox.write)]:
        argv += ["--write", path]
    argv += ["--setenv", "PYTHONDONTWRITEBYTECODE=1", "--setenv", f"TMPDIR={folder}"]
    if _is_python(command):
        argv += ["--setenv", f"PYTHONPATH={_labkit_path(folder)}"]
    if sandbox.network:
        argv.append("--network")
    if sandbox.allow_without_landlock:
        argv.append("--allow-without-landlock")
    if sandbox.max_abi is not None:
        argv += ["--max-abi", str(sandbox.max_abi)]
    return [*argv, "--", *command]


def launcher_command() -> list[str]:
    """The command that runs the launcher: this Python without site (``-I -S``, about 10 ms
    less to start) and without writing bytecode (``-B``), importing the launcher as a plain
    module from its folder so that its cached bytecode is used."""
    code = (f"import sys; sys.path.append({str(LAUNCHER.parent)!r}); import confine; "
            "sys.exit(confine.main())")
    return [sys.executable, "-I", "-S", "-B", "-c", code]


def _no_landlock() -> str:
    errno = confine.landlock_abi()[1]
    return (f"this kernel (Linux {os.uname().release}) has no Landlock "
            f"(landlock_create_ruleset: {os.strerror(errno)})")


class Guard(NamedTuple):
    """One thing a sandbox keeps a plugin from: ``name`` (a short key), ``what`` in words,
    and ``by``, the mechanism that enforces it here (empty: not enforced on this kernel)."""

    name: str
    what: str
    by: str


def enforcement(sandbox: Sandbox | None = None) -> list[Guard]:
    """What ``sandbox`` (default: ``Sandbox()``) enforces on the running kernel, item by
    item, the gaps included."""
    box = sandbox if sandbox is not None else Sandbox()
    abi = box.abi

    def landlock(since: int, fallback: str = "") -> str:
        return f"Landlock ABI {since}" if abi >= since else fallback

    return [
        Guard("files", "reading, writing, creating and removing files outside the allowed "
              "folders", landlock(1)),
        Guard("refer", "linking and renaming files from one folder to another",
              landlock(2, "Landlock ABI 1 (always refused, even between allowed folders)"
                      if abi >= 1 else "")),
        Guard("truncate", "truncating files", landlock(3, "seccomp (truncate(2) refused)")),
        Guard("ioctl", "ioctl on devices", landlock(5)),
        Guard("network", "sockets other than AF_UNIX: IPv4, IPv6, netlink, raw",
              "" if box.network else "seccomp (EPERM)"),
        Guard("tcp", "TCP bind and connect", "" if box.network else landlock(4, "seccomp")),
        Guard("io_uring", "io_uring, which would bypass the system call filter",
              "seccomp (EPERM)"),
        Guard("abstract-unix", "connecting to abstract Unix sockets outside the sandbox",
              landlock(6)),
        Guard("signals", "signalling processes outside the sandbox",
              landlock(6, "seccomp (only its own PID or group)")),
        Guard("pathname-unix", "connecting to Unix socket files outside the writable folders",
              landlock(9)),
        Guard("metadata", "changing any file's metadata: mode, owner, times, extended "
              "attributes", ""),
        Guard("environment", "reading the host's environment variables, which it inherits",
              ""),
        Guard("resources", "using up CPU time, memory or processes", ""),
    ]


def describe(sandbox: Sandbox | None = None) -> str:
    """In words, what ``sandbox`` (default: ``Sandbox()``) enforces on this kernel and what
    it does not."""
    abi = landlock_abi()
    used = Sandbox().abi if sandbox is None else sandbox.abi
    head = (f"Linux {os.uname().release} ({os.uname().machine}): "
            + (f"Landlock ABI {abi}" if abi else _no_landlock())
            + (f", used as ABI {used}" if abi and used != abi else "")
            + "; a confined plugin is kept from:")
    lines = [head]
    for guard in enforcement(sandbox):
        mark = "yes" if guard.by else "NO "
        lines.append(f"  {mark} {guard.what}" + (f"  [{guard.by}]" if guard.by else ""))
    return "\n".join(lines)
