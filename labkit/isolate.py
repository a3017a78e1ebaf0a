"""Running code that may crash, abort or hang in a child process, so the caller survives.

:func:`run` takes a snippet of Python (a ``str``, run in a fresh interpreter) or a callable
(run in a forked copy of this process) and returns an :class:`Outcome`: exit status, the
signal's name if one killed the child, its stdout and stderr, the faulthandler traceback,
and for a callable its return value or the exception it raised (as plain data). A timeout
kills the child and everything it started. The notebook's kernel always survives.

A child's output does not wait in buffers, whatever the environment says
(``PYTHONUNBUFFERED`` changes the buffering of Python's and of C's stdio in a Python process):
Python's ``sys.stdout`` is line-buffered and C's ``stdout`` unbuffered, so what the child
printed before it crashed is kept, and an outcome reads the same on every machine. C stdio is
flushed before the fork (else the child would print the parent's pending output again) and
before a forked child exits (``os._exit`` does not flush it).
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import re
import selectors
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError, IsolationError
from .paths import tidy

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


#: Runs in the child before the snippet: no core files, Python's stdout line-buffered and C's
#: unbuffered, then the snippet as "<snippet>".
_BOOT = (
    "import ctypes, resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "sys.stdout.reconfigure(line_buffering=True)\n"
    "_libc = ctypes.CDLL(None)\n"
    "_libc.setvbuf(ctypes.c_void_p.in_dll(_libc, 'stdout'), None, 2, 0)\n"  # 2: _IONBF
    "del _libc\n"
    "sys.argv = sys.argv[1:]\n"
    "exec(compile(sys.argv[0], '<snippet>', 'exec'), {'__name__': '__main__'})\n"
)
_OUTPUT_LIMIT = 1 << 20  # keep at most 1 MiB of each stream


@dataclass(frozen=True)
class Outcome:
    """What happened to a child run by :func:`run`."""

    returncode: int | None  # exit status when it exited, None when a signal killed it
    signal: str | None  # "SIGSEGV", "SIGABRT", ... when a signal killed it
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    value: Any = None  # what the callable returned
    error: Mapping[str, str] | None = None  # {"kind", "message", "traceback"} if it raised

    @property
    def ok(self) -> bool:
        """The child finished normally: exit status 0, no signal, no exception, in time."""
        return self.returncode == 0 and self.error is None and not self.timed_out

    @property
    def crashed(self) -> bool:
        """A signal killed the child (and would have killed the caller, in-process)."""
        return self.signal is not None and not self.timed_out

    @property
    def fault_traceback(self) -> str:
        """The Python frames faulthandler printed when the child crashed, addresses removed."""
        pattern = r"Fatal Python error:.*?(?=\n\s*\nExtension modules:|\Z)"
        match = re.search(pattern, self.stderr, re.S)
        if not match:
            return ""
        text = re.sub(r"(Current thread|Thread) 0x[0-9a-f]+", r"\1", match.group(0))
        text = re.sub(r'\n\s+File "<string>", line \d+ in <module>', "", text)  # _BOOT's frame
        text = re.sub(r" \(most recent call first\)", " (most recent call first)", text)
        return tidy(text.rstrip())

    def summary(self) -> str:
        """One line: how the child ended, in words."""
        if self.timed_out:
            return f"the child was still running at the timeout and was killed ({self.signal})"
        if self.signal is not None:
            meaning = SIGNAL_MEANINGS.get(signal.Signals[self.signal], "")
            return f"the child was killed by {self.signal}" + (f": {meaning}" if meaning else "")
        if self.error is not None and self.returncode is None:
            return f"the program could not start: {self.error['message']}"
        if self.error is not None:
            return f"the child raised {self.error['kind']}: {self.error['message']}"
        return f"the child exited with status {self.returncode}"

    def check(self) -> Outcome:
        """Return self if :attr:`ok`, else raise :class:`IsolationError` carrying self."""
        if self.ok:
            return self
        tail = "\n".join(tidy(self.stderr).strip().splitlines()[-8:])
        raise IsolationError(
            f"{self.summary()}." + (f"\nLast lines of its stderr:\n{tail}" if tail else ""),
            result=self,
        )


def run(
    target: str | Callable[..., Any],
    *args: Any,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> Outcome:
    """Run ``target`` in a child process and report how it ended.

    ``target`` is either Python source (a ``str``, run by a fresh interpreter with
    faulthandler on; ``env`` adds environment variables, and loader variables such as
    LD_LIBRARY_PATH work because the process starts with them) or a callable, run in a
    forked copy of this process with ``args``/``kwargs``; its return value comes back in
    :attr:`Outcome.value` (it must pickle). ``timeout`` seconds after the start the child
    and every process it started are killed with SIGKILL.

    Danger: nothing of the child's memory comes back but what it prints and returns. A
    callable runs in a fork of this process, which has only the forking thread: a target that
    needs a lock or a service another thread of this process holds (a Go runtime loaded here,
    a gRPC channel) may hang until the timeout. Give it a snippet instead; that starts fresh.
    """
    if timeout <= 0:
        raise InputError(f"timeout must be positive, not {timeout!r}",
                         fix="pass a number of seconds above 0")
    if isinstance(target, str):
        if args or kwargs:
            raise InputError("a snippet (a str) takes no args",
                             fix="format them into the source instead")
        return _run_snippet(target, timeout, env, cwd)
    if callable(target):
        if env is not None:
            raise InputError(
                "env= only works with a snippet (a str): the loader reads LD_LIBRARY_PATH "
                "and friends when a process starts, and a forked child does not start anew",
                fix="pass the code as a snippet (a str), or run a program with run_program")
        return _run_forked(target, args, kwargs, timeout, cwd)
    raise InputError(f"run() takes a str of Python or a callable, not {type(target).__name__}",
                     fix="pass a function (and its args), or Python source as a str")


def run_program(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Outcome:
    """Run a program (a Go host, a plugin's own binary) as a child and report how it ended.

    ``env`` adds environment variables. A program the kernel cannot start (a missing
    interpreter, as for a musl program on glibc) comes back with ``returncode`` None and
    :attr:`Outcome.error` ``{"kind": "FileNotFoundError", ...}``, the exec error as plain
    data. ``timeout`` seconds after the start the program and its children are killed.
    """
    if timeout <= 0:
        raise InputError(f"timeout must be positive, not {timeout!r}",
                         fix="pass a number of seconds above 0")
    if not argv:
        raise InputError("run_program needs a program to run: argv is empty",
                         fix="pass the program and its arguments, e.g. ['./host', 'plugin.so']")
    child_env = {**os.environ, **(env or {})}
    return _run_process([os.fspath(a) for a in argv], timeout, child_env, cwd)


def _run_snippet(
    code: str, timeout: float, env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None
) -> Outcome:
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["PYTHONFAULTHANDLER"] = "1"
    return _run_process([sys.executable, "-c", _BOOT, code], timeout, child_env, cwd)


def _run_process(
    argv: list[str], timeout: float, env: dict[str, str], cwd: str | os.PathLike[str] | None
) -> Outcome:
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True,
        )
    except OSError as exc:  # exec failed: the kernel's answer is the lesson, keep it as data
        error = {"kind": type(exc).__name__, "message": f"[Errno {exc.errno}] {exc.strerror}: "
                 f"{tidy(str(argv[0]))!r}", "traceback": ""}
        return Outcome(None, None, "", "", False, time.monotonic() - start, None, error)
    with proc:
        (out, err), timed_out = _collect(proc.pid, [proc.stdout, proc.stderr], start + timeout)
        status = proc.wait()
    code_, sig = (status, None) if status >= 0 else (None, signal.Signals(-status).name)
    return Outcome(code_, sig, out.decode(errors="replace"), err.decode(errors="replace"),
                   timed_out, time.monotonic() - start)


def _run_forked(
    target: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    timeout: float, cwd: str | os.PathLike[str] | None,
) -> Outcome:
    pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, result
    sys.stdout.flush()
    sys.stderr.flush()
    _c_stdio().flush()
    start = time.monotonic()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock the child. A
        # notebook's kernel always has threads (ipykernel's, a wasm plugin's watchdog); the
        # child runs only the target and then os._exit()s, so it never needs a lock another
        # thread held, unless the target itself calls into code those threads were using.
        warnings.filterwarnings("ignore", r"This process .* is multi-threaded",
                                DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(target, args, kwargs, pipes, cwd)
    for _, w in pipes:
        os.close(w)
    files = [os.fdopen(r, "rb", buffering=0) for r, _ in pipes]
    (out, err, result), timed_out = _collect(pid, files, start + timeout, whole=2)
    for f in files:
        f.close()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        code, sig = None, signal.Signals(os.WTERMSIG(status)).name
    else:
        code, sig = os.WEXITSTATUS(status), None
    value, error = None, None
    if result:
        try:
            kind, payload = pickle.loads(result)
        except Exception as exc:  # a result we cannot read is reported, not raised
            kind, payload = "error", {"kind": "ResultError", "message": str(exc), "traceback": ""}
        if kind == "value":
            value = payload
        else:
            error = payload
    return Outcome(code, sig, out.decode(errors="replace"), err.decode(errors="replace"),
                   timed_out, time.monotonic() - start, value, error)


def _child(
    target: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    pipes: list[tuple[int, int]], cwd: str | os.PathLike[str] | None,
) -> None:
    status = 70
    try:
        import faulthandler
        import resource

        os.setsid()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for r, _ in pipes:
            os.close(r)
        (_, w_out), (_, w_err), (_, w_res) = pipes
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        _c_stdio().unbuffer_stdout()
        faulthandler.enable(file=sys.stderr)
        if cwd is not None:
            os.chdir(cwd)
        try:
            payload: tuple[str, Any] = ("value", target(*args, **kwargs))
            status = 0
        except BaseException as exc:  # everything the target raises is reported
            payload = ("error", {"kind": type(exc).__name__, "message": str(exc),
                                 "traceback": traceback.format_exc()})
            status = 1
        try:
            data = pickle.dumps(payload)
        except Exception as exc:  # an unpicklable value is reported as such
            data = pickle.dumps(("error", {"kind": "ResultError", "message":
                                f"the return value cannot be sent back: {exc}", "traceback": ""}))
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        _c_stdio().flush()  # what C code printed (puts, printf) is still in stdio's buffer
        view = memoryview(data)
        while view:
            view = view[os.write(w_res, view):]
    finally:
        os._exit(status)


class _CStdio:
    """This process's C stdio (glibc or musl), through ctypes."""

    _IONBF = 2  # setvbuf's mode for no buffering, the same in glibc and musl

    def __init__(self) -> None:
        import ctypes

        self._libc = ctypes.CDLL(None)
        self._stdout = ctypes.c_void_p.in_dll(self._libc, "stdout")

    def flush(self) -> None:
        """``fflush(NULL)``: write out every C stream's buffer."""
        self._libc.fflush(None)

    def unbuffer_stdout(self) -> None:
        """``setvbuf(stdout, NULL, _IONBF, 0)``. glibc flushes and resets the stream first, so
        this works after output too, where ``_IOLBF`` would only take effect at the next
        flush."""
        self._libc.setvbuf(self._stdout, None, self._IONBF, 0)


@functools.cache
def _c_stdio() -> _CStdio:
    return _CStdio()


def _collect(
    pid: int, streams: list[Any], deadline: float, whole: int | None = None
) -> tuple[list[bytes], bool]:
    """Read the child's pipes until they close or the deadline passes (then kill it).

    Each stream keeps at most 1 MiB, except stream number ``whole`` (the pickled result).
    Returns the bytes of each stream and whether the deadline passed."""
    buffers = [bytearray() for _ in streams]
    selector = selectors.DefaultSelector()
    for index, stream in enumerate(streams):
        selector.register(stream, selectors.EVENT_READ, index)
    timed_out = False
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            _kill_group(pid)
            break
        for key, _ in selector.select(timeout=min(remaining, 0.5)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            buf = buffers[key.data]
            if len(buf) < _OUTPUT_LIMIT or key.data == whole:
                buf.extend(chunk)
    selector.close()
    if timed_out:  # drain what is left without blocking
        for index, stream in enumerate(streams):
            try:
                os.set_blocking(stream.fileno(), False)
                buffers[index].extend(os.read(stream.fileno(), _OUTPUT_LIMIT) or b"")
            except (BlockingIOError, OSError, ValueError):
                pass
    return [bytes(b) for b in buffers], timed_out


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, signal.SIGKILL)
