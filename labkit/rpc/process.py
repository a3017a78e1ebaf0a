"""Process supervision for a plugin host: start a plugin process that cannot outlive its host,
say how it ended, and leave nothing behind.

:class:`PluginProcess` starts the plugin in its own session and process group, with a private
socket folder (mode 0700) named in its environment, and ``PR_SET_PDEATHSIG`` so that the
kernel kills it when the thread that started it goes away (a killed notebook kernel too). It
says how the process ended in words, kills the whole group, closes the pipes and removes the
folder. :func:`sweep_stale` removes the folders a killed host left behind. Nothing here knows
gRPC: :class:`~labkit.rpc.client.PluginClient` speaks the protocol over such a process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from ..errors import InputError
from ..isolate import SIGNAL_MEANINGS
from .sandbox import Sandbox, confined_command

_PR_SET_PDEATHSIG = 1
FOLDER_PREFIX = "plugin-lab-"  # then the host's PID and a random part


def command_line(command: Sequence[str | os.PathLike[str]], example: str) -> list[str]:
    """``command`` as the list of strings a plugin is started with; :class:`InputError` for a
    single string or an empty list (``example`` shows a good one)."""
    if isinstance(command, (str, bytes, os.PathLike)) or not command:
        raise InputError(f"command must be a non-empty list of arguments, not {command!r}",
                         fix=f"pass e.g. {example}")
    return [os.fspath(part) for part in command]


class PluginProcess:
    """One plugin process and its socket folder, from start to clean-up.

    :meth:`start` raises :class:`OSError` (with nothing left behind) when the command cannot
    be started; every other method is safe to call in any state, and twice.
    """

    def __init__(self, proc: subprocess.Popen[bytes], folder: Path) -> None:
        self.proc = proc
        self.folder: Path | None = folder

    @classmethod
    def start(cls, command: Sequence[str], *, env: Mapping[str, str], folder_variable: str,
              cwd: str | os.PathLike[str] | None = None,
              sandbox: Sandbox | None = None) -> PluginProcess:
        """Start ``command`` with ``env`` plus ``folder_variable`` naming a fresh private
        folder; stdin is empty, stdout and stderr are pipes the caller reads. With
        ``sandbox``, the command runs confined, writing in that folder only
        (:func:`~labkit.rpc.sandbox.confined_command`, whose errors it raises)."""
        sweep_stale()
        folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        try:
            argv = list(command)
            if sandbox is not None:
                argv = confined_command(argv, folder, sandbox, cwd)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env={**env, folder_variable: str(folder)}, cwd=cwd,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(proc, folder)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    @property
    def stderr(self) -> IO[bytes]:
        assert self.proc.stderr is not None
        return self.proc.stderr

    def wait(self, seconds: float) -> int | None:
        """Its exit status, waiting up to ``seconds``; None while it runs."""
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def signal_name(self) -> str | None:
        """The name of the signal that ended it, if one did."""
        code = self.proc.returncode
        if code is None or code >= 0:
            return None
        return signal.Signals(-code).name

    def describe(self) -> str:
        """How it ended, in words: ``exited with status 2``, ``was killed by SIGSEGV (...)``."""
        code = self.proc.returncode
        if code is None:
            return "is still running"
        if code >= 0:
            return f"exited with status {code}"
        sig = signal.Signals(-code)
        meaning = SIGNAL_MEANINGS.get(sig, "")
        return f"was killed by {sig.name}" + (f" ({meaning})" if meaning else "")

    def kill(self) -> bool:
        """SIGKILL its whole process group (whatever it started, too) and reap it. Returns
        whether it was still running."""
        running = self.proc.poll() is None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if running:
            self.proc.wait()
        return running

    def release(self) -> None:
        """Close its pipes and remove its socket folder."""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def sweep_stale() -> None:
    """Remove the socket folders of hosts that died without cleaning up (a killed kernel):
    ``plugin-lab-PID-*`` in the temporary folder, ours, whose PID is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        owner = folder.name.split("-")[2]
        if not owner.isdigit() or folder.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass


def _die_with_parent() -> None:
    """In the child, before exec: die with SIGKILL when the host goes away."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork


class AttachedProcess:
    """A plugin process this host did not start (it attached with reattach information):
    the same questions as :class:`PluginProcess`, answered through a pidfd, since only its
    parent can read its exit status. It has no pipes and no socket folder of ours; when
    ``owned`` is false (go-plugin's test mode) :meth:`kill` leaves it running."""

    folder: Path | None = None

    def __init__(self, pid: int, *, owned: bool) -> None:
        self._pid = pid
        self.owned = owned
        self._fd: int | None = os.pidfd_open(pid)  # ProcessLookupError: no such process

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def alive(self) -> bool:
        return self.wait(0) is None

    @property
    def returncode(self) -> int | None:
        return None  # its parent's to read

    def wait(self, seconds: float) -> int | None:
        """None while it runs; -1 once it ended (its status is not ours to read)."""
        if self._fd is None:
            return -1
        ready, _, _ = select.select([self._fd], [], [], seconds)
        return -1 if ready else None

    def signal_name(self) -> str | None:
        return None

    def describe(self) -> str:
        return "is still running" if self.alive else "has ended"

    def kill(self) -> bool:
        """SIGKILL the process if this host owns it; returns whether it was killed."""
        if not self.owned or not self.alive or self._fd is None:
            return False
        signal.pidfd_send_signal(self._fd, signal.SIGKILL)
        self.wait(5.0)
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
