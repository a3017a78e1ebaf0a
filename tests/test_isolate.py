"""labkit.isolate with real child processes: crashes, aborts, hangs, exceptions, output."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cffi
import pytest

import labkit
from labkit.isolate import run

CRASH_C = "int crash(int *p) { return *p; }\nint fine(void) { return 3; }\n"


def _segfault(path: str) -> None:
    lib = labkit.load(path)
    print("about to crash", flush=True)
    lib.function("crash", "int(int *)")(cffi.FFI().NULL)


def test_segfault_in_a_callable_is_reported_and_caller_survives(workdir: Path) -> None:
    art = labkit.build_shared(CRASH_C, "crash")
    out = run(_segfault, str(art.path.resolve()))
    assert out.crashed and out.signal == "SIGSEGV" and out.returncode is None
    assert out.summary().startswith("the child was killed by SIGSEGV: segmentation fault")
    assert "about to crash" in out.stdout
    assert "Fatal Python error: Segmentation fault" in out.fault_traceback
    assert "in _segfault" in out.fault_traceback and "0x" not in out.fault_traceback
    assert os.getpid() > 0  # still here
    with pytest.raises(labkit.IsolationError, match="killed by SIGSEGV") as info:
        out.check()
    assert info.value.result is out


def test_segfault_in_a_snippet(workdir: Path) -> None:
    art = labkit.build_shared(CRASH_C, "crash2")
    out = run(f"import labkit, cffi\nlib = labkit.load({str(art.path.resolve())!r})\n"
              "lib.function('crash', 'int(int *)')(cffi.FFI().NULL)\n")
    assert out.signal == "SIGSEGV"
    assert 'File "<snippet>", line 3 in <module>' in out.fault_traceback


def test_abort() -> None:
    out = run("import os\nos.abort()\n")
    assert out.signal == "SIGABRT" and "abort()" in out.summary()


def test_timeout_kills_the_child_and_its_children() -> None:
    start = time.monotonic()
    out = run("import subprocess, time\n"
              "p = subprocess.Popen(['sleep', '60'])\n"
              "print(p.pid, flush=True)\n"
              "time.sleep(60)\n", timeout=1.5)
    assert out.timed_out and out.signal == "SIGKILL" and not out.ok
    assert time.monotonic() - start < 10
    grandchild = int(out.stdout.split()[0])
    time.sleep(0.2)
    status = Path(f"/proc/{grandchild}/status")
    assert not status.exists() or "zombie" in status.read_text() or "(dead)" in status.read_text()
    assert "still running at the timeout" in out.summary()


def test_hanging_callable_times_out() -> None:
    out = run(time.sleep, 30, timeout=1)
    assert out.timed_out and out.signal == "SIGKILL"


def test_return_value_and_output() -> None:
    def work(a: int, b: int, *, scale: int) -> dict[str, int]:
        print("working")
        libc = ctypes.CDLL(None)
        libc.puts(b"from C")  # C writes to fd 1 directly: captured too
        return {"sum": (a + b) * scale}

    out = run(work, 2, 3, scale=10)
    assert out.ok and out.value == {"sum": 50}
    assert "working" in out.stdout and "from C" in out.stdout
    assert out.check() is out


def test_exception_travels_as_plain_data() -> None:
    def fail() -> None:
        raise KeyError("plugin-x")

    out = run(fail)
    assert out.error is not None and out.error["kind"] == "KeyError"
    assert "plugin-x" in out.error["message"] and "raise KeyError" in out.error["traceback"]
    assert out.returncode == 1 and out.summary() == "the child raised KeyError: 'plugin-x'"


def test_exit_status_of_a_snippet() -> None:
    out = run("import sys\nprint('bye')\nsys.exit(4)\n")
    assert (out.returncode, out.stdout, out.signal) == (4, "bye\n", None)
    assert out.summary() == "the child exited with status 4"


def test_env_reaches_the_loader_of_a_snippet(workdir: Path) -> None:
    dep = labkit.build_shared("int seven(void) { return 7; }\n", "seven", out_dir="libs")
    user = labkit.build_shared("int seven(void);\nint call(void) { return seven(); }\n", "callseven",
                               libs=[dep.path])
    code = f"import labkit\nprint(labkit.load({str(user.path.resolve())!r}).function('call', 'int(void)')())\n"
    assert run(code, env={"LD_LIBRARY_PATH": str(workdir / "libs")}).stdout == "7\n"
    failed = run(code, env={"LD_LIBRARY_PATH": ""})
    assert failed.returncode == 1 and "needs 'libseven.so'" in failed.stderr


@pytest.mark.parametrize(
    ("target", "options", "message"),
    [
        pytest.param(len, {"env": {"A": "1"}}, "env= only works with a snippet", id="env-with-callable"),
        pytest.param("print(1)", {"timeout": 0}, "timeout must be positive", id="zero-timeout"),
        pytest.param(42, {}, "takes a str of Python or a callable, not int", id="not-callable"),
    ],
)
def test_bad_arguments(target: object, options: dict[str, object], message: str) -> None:
    with pytest.raises(labkit.InputError, match=message):
        run(target, **options)  # type: ignore[arg-type]


#: Runs in a fresh interpreter, so that the buffering of C stdio is the one a kernel started
#: in that environment has: it prints what each child printed, as JSON.
STDIO_PROBE = r"""
import json, sys
import cffi, labkit
from labkit.isolate import run

lib = sys.argv[1]

def say_then(crash):
    import ctypes
    libc = ctypes.CDLL(None)
    libc.puts(b"from C puts")
    libc.printf(b"from C printf, no newline")
    if crash:
        libc.puts(b"")
        labkit.load(lib).function("crash", "int(int *)")(cffi.FFI().NULL)

import ctypes
ctypes.CDLL(None).printf(b"the parent's pending output\n")  # sits in the parent's buffer
print(json.dumps({
    "callable": run(say_then, False).stdout,
    "callable-crash": run(say_then, True).stdout,
    "snippet-crash": run("import cffi, ctypes, labkit\n"
                         "ctypes.CDLL(None).puts(b'from C puts')\n"
                         "print('from print')\n"
                         f"lib = labkit.load({lib!r})\n"
                         "lib.function('crash', 'int(int *)')(cffi.FFI().NULL)\n").stdout,
}), flush=True)
"""


@pytest.mark.parametrize("unbuffered", [False, True], ids=["plain", "PYTHONUNBUFFERED=1"])
def test_what_c_code_printed_comes_back_in_any_environment(workdir: Path, unbuffered: bool) -> None:
    """puts and printf in a child: kept when it returns and when it crashes, not copied from
    the parent's buffer, the same with and without PYTHONUNBUFFERED (which makes C stdio
    unbuffered in a Python process, and so once hid a lost-output bug)."""
    art = labkit.build_shared(CRASH_C, "crash_stdio")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run([sys.executable, "-c", STDIO_PROBE, str(art.path.resolve())],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    pending, report = proc.stdout.split("\n", 1)
    assert pending == "the parent's pending output"
    seen = json.loads(report)
    assert seen["callable"] == "from C puts\nfrom C printf, no newline"
    assert seen["callable-crash"] == "from C puts\nfrom C printf, no newline\n"
    assert seen["snippet-crash"] == "from C puts\nfrom print\n"


def test_a_callable_runs_in_a_child_of_a_threaded_process() -> None:
    """A kernel always has threads; Python 3.12+ warns on fork() then (an error under this
    suite's filterwarnings): run() forks knowingly and says nothing."""
    import threading

    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait, daemon=True)
    waiter.start()
    try:
        assert run(lambda: 6 * 7).value == 42
    finally:
        stop.set()
        waiter.join()
