"""A plugin started by hand, the way one is debugged: it serves until told to stop, prints
its reattach information, and any number of hosts attach to it in turn.

Terraform's providers do this with ``-debug`` (go-plugin's test mode): run under a debugger,
they print ``TF_REATTACH_PROVIDERS``, and Terraform attaches instead of starting them. The
lab's plugins take ``-debug`` (Go) and ``--debug`` (Python) for the same.
:func:`start_by_hand` plays the person at the terminal: it starts the command, reads the
reattach line, and keeps the process under labkit's supervision (its own process group, it
dies with the host, nothing left behind).
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import threading
from collections.abc import Sequence
from typing import IO

from ..errors import RPCPluginError
from .process import PluginProcess, command_line
from .protocol import ENV_SOCKET_DIR, MAX_HANDSHAKE_LINE, Reattach


class ByHand:
    """A plugin process started by :func:`start_by_hand`; a context manager that stops it."""

    def __init__(self, process: PluginProcess, reattach: Reattach,
                 lines: collections.deque[str]) -> None:
        self.process = process
        self.reattach = reattach
        self._lines = lines

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.alive

    def output(self) -> list[str]:
        """What it wrote on its own stdout and stderr after the reattach line."""
        return list(self._lines)

    def stop(self, grace: float = 3.0) -> str:
        """Ctrl-C (SIGINT), as at the terminal; SIGKILL after ``grace`` seconds. Returns how
        it ended."""
        if self.process.alive:
            os.kill(self.process.pid, signal.SIGINT)
            if self.process.wait(grace) is None:
                self.process.kill()
                how = f"ignored Ctrl-C for {grace:g} s and was killed (SIGKILL)"
            else:
                how = f"{self.process.describe()} after Ctrl-C"
        else:
            how = self.process.describe()
        self.process.kill()  # its group: whatever it started
        self.process.release()
        return how

    def __enter__(self) -> ByHand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_by_hand(command: Sequence[str | os.PathLike[str]], *,
                  timeout: float = 10.0) -> ByHand:
    """Start a plugin in debug mode (``command`` includes the flag that asks for it) and read
    the reattach information it prints first; raise :class:`RPCPluginError` if it prints
    none within ``timeout`` seconds (nothing is left running then)."""
    argv = command_line(command, "[go_plugin_path, '-debug']")
    process = PluginProcess.start(argv, env=dict(os.environ), folder_variable=ENV_SOCKET_DIR)
    lines: collections.deque[str] = collections.deque(maxlen=2000)
    first: queue.Queue[str | None] = queue.Queue()
    for stream in (process.stdout, process.stderr):
        threading.Thread(target=_drain, args=(stream, lines, first if stream is
                                               process.stdout else None), daemon=True).start()
    # reap it the moment it ends, as a shell reaps its job: a zombie still "exists", and
    # go-plugin's attached host waits for the PID to disappear
    threading.Thread(target=process.proc.wait, daemon=True).start()
    try:
        line = first.get(timeout=timeout)
    except queue.Empty:
        line = None
    try:
        if not line:
            process.wait(0.5)
            raise RPCPluginError(
                f"{argv[0]!r} printed no reattach information within {timeout:g} s; it "
                f"{process.describe()}", fix="start the plugin in its debug mode (-debug for "
                "the lab's Go plugin, --debug for a labkit.rpc.serve plugin)",
                stage="start", command=argv, stderr_tail=list(lines)[-8:])
        return ByHand(process, Reattach.from_json(line), lines)
    except BaseException:
        process.kill()
        process.release()
        raise


def _drain(stream: IO[bytes], lines: collections.deque[str],
           first: queue.Queue[str | None] | None) -> None:
    for raw in stream:
        text = raw.decode(errors="replace").rstrip("\n")[:MAX_HANDSHAKE_LINE]
        if first is not None:
            first.put(text)
            first = None
        else:
            lines.append(text)
    if first is not None:
        first.put(None)
