"""The RPC plugin sandbox, for real: the snoop plugin tries to read, write, connect and signal,
plainly and confined by Landlock and seccomp on this kernel, and the errno the kernel gives is
checked; confined plugins (Python and Go) still serve and call their host back. After each
test no plugin process and no socket folder may remain (the ``watched`` fixture).

Where this kernel's Landlock ABI lacks a feature, its test is skipped with the ABI it needs,
and :func:`test_what_describe_calls_a_gap_is_one` checks that the gap is real."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.errors import InputError, RPCPluginError
from labkit.paths import PLUGINS_PY
from labkit.rpc import Counter, PluginClient, Reattach, Sandbox
from labkit.rpc import confine as launcher
from labkit.rpc.sandbox import describe, enforcement, landlock_abi, launcher_command
from labkit.rpc.stubs import generate
from labkit.samples.rpc import RpcSamples, python_plugin
from tests.test_rpc import (  # noqa: F401 - go_rpc and watched are fixtures
    go_rpc,
    gone,
    kill_host_of,
    socket_folders,
    watched,
)

SNOOP = python_plugin(PLUGINS_PY / "snoop_plugin.py")
ABI = landlock_abi()
#: What a default Sandbox enforces here: guard name -> mechanism ("" when it does not).
ENFORCED = {guard.name: guard.by for guard in enforcement()}
#: The Landlock ABI (and Linux release) each guard needs when seccomp does not provide it.
NEEDS = {"files": "ABI 1 (Linux 5.13)", "abstract-unix": "ABI 6 (Linux 6.12)",
         "pathname-unix": "ABI 9 (Linux 7.1)"}
WHAT = {guard.name: guard.what for guard in enforcement()}

needs_landlock = pytest.mark.skipif(
    ABI == 0, reason=f"Linux {os.uname().release} has no Landlock: a Sandbox() is refused")


def confined(clients: list[PluginClient], command: list[str],
             sandbox: Sandbox | None = None) -> PluginClient:
    client = PluginClient(command, sandbox=sandbox)
    clients.append(client)
    return client.start()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path, for Unix sockets (108 bytes at most)."""
    folder = Path(tempfile.mkdtemp(prefix="sbx-"))
    yield folder
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()


@dataclass
class Probe:
    """One thing the snoop plugin tries: its header, the value, and the errno a sandbox
    gives, named by the guard that gives it."""

    header: str
    value: str
    errno: int
    guard: str


@pytest.fixture
def targets(tmp_path: Path, short_dir: Path) -> Iterator[dict[str, Probe]]:
    """A secret file, a place to write, TCP listeners on 127.0.0.1 (and ::1 if there is
    IPv6), a pathname and an abstract Unix socket listening, and this process to signal."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the learner's secret\n")
    listeners = []

    def listen(family: int, address: object) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind(address)
        sock.listen(8)
        listeners.append(sock)
        return sock

    tcp4 = listen(socket.AF_INET, ("127.0.0.1", 0)).getsockname()[1]
    abstract = f"labkit-sbx-{os.getpid()}-{short_dir.name}"
    listen(socket.AF_UNIX, "\0" + abstract)
    listen(socket.AF_UNIX, str(short_dir / "s.sock"))
    probes = {
        "read": Probe("read", str(secret), errno.EACCES, "files"),
        "write": Probe("write", str(tmp_path / "planted.txt"), errno.EACCES, "files"),
        "tcp4": Probe("connect", f"127.0.0.1:{tcp4}", errno.EPERM, "network"),
        "signal": Probe("signal", str(os.getpid()), errno.EPERM, "signals"),
        "abstract-unix": Probe("unix", "@" + abstract, errno.EPERM, "abstract-unix"),
        "pathname-unix": Probe("unix", str(short_dir / "s.sock"), errno.EACCES,
                               "pathname-unix"),
        "metadata": Probe("chmod", str(secret), errno.EPERM, "metadata"),
        "environment": Probe("env", "HOME", errno.EPERM, "environment"),
    }
    try:
        tcp6 = listen(socket.AF_INET6, ("::1", 0)).getsockname()[1]
        probes["tcp6"] = Probe("connect", f"[::1]:{tcp6}", errno.EPERM, "network")
    except OSError:
        pass  # no IPv6 loopback here: its case skips
    yield probes
    for sock in listeners:
        sock.close()


PROBES = ["read", "write", "tcp4", "tcp6", "signal", "abstract-unix", "pathname-unix"]


def snoop(client: PluginClient, probe: Probe) -> str:
    return client.transform({probe.header: probe.value})[probe.header]


def refusal(code: int) -> str:
    """How the snoop plugin reports the kernel's refusal with ``code``."""
    return f"refused, PermissionError [Errno {code}] {os.strerror(code)}"


def skip_unless_enforced(guard: str) -> None:
    if not ENFORCED[guard]:
        pytest.skip(f"Linux {os.uname().release} has Landlock ABI {ABI}; keeping a plugin "
                    f"from {WHAT[guard]} needs Landlock {NEEDS[guard]}")


# -- a plugin process is not a sandbox ---------------------------------------------------------

def test_a_plain_plugin_process_reaches_everything(
    targets: dict[str, Probe], watched: list[PluginClient], tmp_path: Path,  # noqa: F811
) -> None:
    client = confined(watched, SNOOP)
    answers = {name: snoop(client, probe) for name, probe in targets.items()}
    assert answers.pop("read") == "ok, 21 bytes"
    assert answers.pop("write") == "ok, 27 bytes"
    assert (tmp_path / "planted.txt").read_text() == "written by snoop_plugin.py\n"
    assert answers.pop("signal") == f"ok, process {os.getpid()} can be signalled"
    mode = Path(targets["metadata"].value).stat().st_mode & 0o7777
    assert answers.pop("metadata") == f"ok, mode {mode:o} set again"
    assert answers.pop("environment") == f"ok, {len(os.environ['HOME'])} characters"
    assert all(answer.startswith("ok, connected to ") for answer in answers.values()), answers


# -- the confined plugin -------------------------------------------------------------------------

@needs_landlock
@pytest.mark.parametrize("name", PROBES)
def test_the_confined_plugin_is_refused_with_the_kernels_errno(
    name: str, targets: dict[str, Probe], watched: list[PluginClient], tmp_path: Path,  # noqa: F811
) -> None:
    if name not in targets:
        pytest.skip("this machine has no IPv6 loopback (::1) to listen on")
    probe = targets[name]
    skip_unless_enforced(probe.guard)
    client = confined(watched, SNOOP, Sandbox())
    assert snoop(client, probe).startswith(refusal(probe.errno))
    assert not (tmp_path / "planted.txt").exists()
    assert client.transform({"a": "b"})["x-transformed-by"] == "snoop_plugin.py"


@needs_landlock
@pytest.mark.parametrize("command", ["python", "go"])
def test_confined_plugins_still_serve_and_call_their_host_back(
    command: str, go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    argv = [str(go_rpc.plugin.path)] if command == "go" else SNOOP
    counter = Counter()
    client = confined(watched, argv, Sandbox())
    assert client.health() == "SERVING"
    for call in (1, 2, 3):
        reply = client.transform({"host": "example.com", "x-trace": "1"}, counter=counter)
        assert reply["x-call-number"] == str(call)
        assert reply["host"] == "example.com" and reply["x-plugin-lang"] == command
    assert counter.counts == {"transform": 3}
    if command == "go":  # the Go plugin's stdout still travels go-plugin's stdio stream
        assert "stdout: go plugin: transforming 2 header(s)" in client.output()
    assert client.close() == "exited with status 0 after Shutdown"


@needs_landlock
def test_the_lab_its_cache_and_the_socket_folder(
    targets: dict[str, Probe], watched: list[PluginClient],  # noqa: F811
) -> None:
    """The plugin reads the stubs in labkit's cache and its own code but writes neither;
    its socket folder is the one place it writes (its TMPDIR too)."""
    client = confined(watched, SNOOP, Sandbox())
    stub = generate() / "transformer_pb2.py"
    assert snoop(client, Probe("read", str(stub), 0, "")).startswith("ok, ")
    for target in (stub.parent / "planted.py", PLUGINS_PY / "planted.py"):
        assert snoop(client, Probe("write", str(target), 0, "")).startswith(
            refusal(errno.EACCES))
        assert not target.exists()
    assert client.socket_folder is not None
    inside = client.socket_folder / "scratch.txt"
    assert snoop(client, Probe("write", str(inside), 0, "")) == "ok, 27 bytes"


@needs_landlock
def test_the_sandbox_opens_what_it_is_given(
    targets: dict[str, Probe], watched: list[PluginClient], tmp_path: Path,  # noqa: F811
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    secret = Path(targets["read"].value)
    client = confined(watched, SNOOP, Sandbox(read=[secret], write=[out], network=True))
    assert snoop(client, targets["read"]) == "ok, 21 bytes"
    assert snoop(client, Probe("write", str(out / "result.txt"), 0, "")) == "ok, 27 bytes"
    assert snoop(client, targets["write"]).startswith(refusal(errno.EACCES))
    assert snoop(client, targets["tcp4"]).startswith("ok, connected to 127.0.0.1:")


@needs_landlock
@pytest.mark.parametrize("name", ["pathname-unix", "abstract-unix", "metadata",
                                  "environment"])
def test_what_describe_calls_a_gap_is_one(
    name: str, targets: dict[str, Probe], watched: list[PluginClient],  # noqa: F811
) -> None:
    """Each guard that :func:`describe` says this kernel lacks really is missing: the
    plugin reaches what it would be kept from with a newer ABI, or by no Landlock at all."""
    probe = targets[name]
    if ENFORCED[probe.guard]:
        pytest.skip(f"enforced here ({ENFORCED[probe.guard]}): "
                    "test_the_confined_plugin_is_refused_with_the_kernels_errno checks it")
    client = confined(watched, SNOOP, Sandbox())
    assert snoop(client, probe).startswith("ok, ")
    assert f"NO  {WHAT[probe.guard]}" in describe()


@needs_landlock
@pytest.mark.parametrize("abi", [1, 2, 5])
def test_an_older_abi_keeps_signals_fenced_by_seccomp_and_says_what_it_lacks(
    abi: int, targets: dict[str, Probe], watched: list[PluginClient],  # noqa: F811
) -> None:
    """``max_abi`` shows what Binder's older kernels give: no Landlock signal scope below 6,
    so seccomp keeps signals inside the plugin; abstract Unix sockets are open."""
    sandbox = Sandbox(max_abi=abi)
    client = confined(watched, SNOOP, sandbox)
    assert snoop(client, targets["signal"]).startswith(refusal(errno.EPERM))
    assert snoop(client, targets["abstract-unix"]).startswith("ok, connected to @")
    assert snoop(client, targets["read"]).startswith(refusal(errno.EACCES))
    assert snoop(client, targets["tcp4"]).startswith(refusal(errno.EPERM))
    guards = {g.name: g.by for g in enforcement(sandbox)}
    assert guards["signals"].startswith("seccomp") and guards["abstract-unix"] == ""
    assert guards["truncate"] == ("Landlock ABI 3" if abi >= 3 else "seccomp (truncate(2) refused)")
    assert f"used as ABI {abi}" in describe(sandbox)


@needs_landlock
def test_a_relative_script_is_found_from_the_plugins_folder(
    watched: list[PluginClient],  # noqa: F811
) -> None:
    client = PluginClient([sys.executable, "snoop_plugin.py"], cwd=PLUGINS_PY, sandbox=Sandbox())
    watched.append(client)
    assert client.start().transform({})["x-transformed-by"] == "snoop_plugin.py"


@needs_landlock
def test_a_killed_host_takes_its_confined_plugin_with_it() -> None:
    """PR_SET_PDEATHSIG outlives the launcher's exec: the confined plugin dies with its host."""
    pid, folder = kill_host_of(f"PluginClient({SNOOP!r}, sandbox=Sandbox())")
    assert gone(pid)
    shutil.rmtree(folder, ignore_errors=True)  # what the next host's sweep does (any labkit host)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "match"), [
    ({"read": ["plugins/data"]}, r"Sandbox read path 'plugins/data' is relative"),
    ({"write": ["/no/such/folder"]}, r"Sandbox write path '/no/such/folder' does not exist"),
    ({"read": "/usr"}, r"Sandbox read= takes a list of paths, not the single path '/usr'"),
    ({"max_abi": 0}, r"Sandbox max_abi=0 is not a Landlock ABI version"),
], ids=["relative", "missing", "one-string", "abi-0"])
def test_bad_sandbox_arguments_are_input_errors_naming_them(
    arguments: dict[str, object], match: str,
) -> None:
    with pytest.raises(InputError, match=match) as info:
        Sandbox(**arguments)  # type: ignore[arg-type]
    assert "Fix: " in str(info.value)


@needs_landlock
def test_a_path_gone_before_the_start_is_a_start_error_from_the_launcher(
    tmp_path: Path, watched: list[PluginClient],  # noqa: F811
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    sandbox = Sandbox(read=[folder])
    folder.rmdir()
    with pytest.raises(RPCPluginError, match="exited with status 125") as info:
        confined(watched, SNOOP, sandbox)
    assert info.value.stage == "start"
    assert list(info.value.stderr_tail) == [
        f"labkit.rpc.confine: cannot confine {sys.executable!r}: cannot open {str(folder)!r} "
        "to allow it: No such file or directory. Fix: name folders that exist in "
        "Sandbox(read=..., write=...)"]


def test_a_plugin_attached_to_cannot_be_sandboxed() -> None:
    with pytest.raises(InputError, match="cannot sandbox the plugin at pid 4242: it runs "
                                         "already"):
        PluginClient.attach(Reattach(4242, "unix", "/tmp/x.sock"), sandbox=Sandbox())


# -- the launcher itself -----------------------------------------------------------------------

def run_launcher(*args: str, before: Callable[[], None] | None = None,
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*launcher_command(), *args],
                          capture_output=True, text=True, timeout=30, preexec_fn=before)


@pytest.mark.parametrize(("args", "line"), [
    (["--", ], "no command after '--'. Fix: end the options with -- COMMAND [ARG]..."),
    (["--bogus", "--", "true"], "unknown or incomplete option '--bogus'."),
    (["--", "no-such-program-here"], "cannot confine 'no-such-program-here': no program "
                                     "'no-such-program-here' in PATH."),
], ids=["no-command", "bad-option", "no-program"])
def test_the_launcher_says_what_is_wrong_in_one_line_and_exits_125(
    args: list[str], line: str,
) -> None:
    done = run_launcher(*args)
    assert done.returncode == launcher.EXIT_CONFINE
    assert len(done.stderr.splitlines()) == 1 and line in done.stderr, done.stderr


#: A seccomp filter that makes landlock_create_ruleset fail with ENOSYS, as a kernel
#: before 5.13 does.
NO_LANDLOCK = launcher.filter_program(os.uname().machine,
                                      {"landlock_create_ruleset": errno.ENOSYS}, {})


def _without_landlock() -> None:
    """In the child before exec: the kernel's Landlock hidden by :data:`NO_LANDLOCK`."""
    launcher.no_new_privs()
    launcher.install_filter(NO_LANDLOCK)


TRY_TCP = ("import socket, sys\n"
           "print(open(sys.argv[1]).read().strip())\n"
           "try:\n    socket.socket()\nexcept OSError as exc:\n    print(exc)\n")


def test_without_landlock_the_launcher_refuses_unless_seccomp_alone_is_accepted(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("readable without Landlock\n")
    command = ["--", sys.executable, "-I", "-c", TRY_TCP, str(secret)]
    refused = run_launcher(*command, before=_without_landlock)
    assert refused.returncode == launcher.EXIT_CONFINE
    assert (f"Landlock is not available on this kernel (Linux {os.uname().release}: "
            "landlock_create_ruleset says 'Function not implemented')") in refused.stderr
    assert "Sandbox(allow_without_landlock=True)" in refused.stderr
    accepted = run_launcher("--allow-without-landlock", *command, before=_without_landlock)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines() == ["readable without Landlock",
                                            "[Errno 1] Operation not permitted"]


def test_describe_names_the_kernel_and_each_guard() -> None:
    text = describe()
    assert text.startswith(f"Linux {os.uname().release} ({os.uname().machine}): ")
    assert (f"Landlock ABI {ABI};" if ABI else "has no Landlock") in text
    assert len(text.splitlines()) == 1 + len(enforcement())
    assert "NO  using up CPU time, memory or processes" in text


def test_a_confined_python_plugin_finds_labkit_through_its_own_folder(tmp_path: Path) -> None:
    # where labkit comes from PYTHONPATH (a checkout, the class hub), Python would list the
    # checkout's folder to find it, which Landlock refuses: the plugin's PYTHONPATH is a
    # folder of its own holding one link, to labkit
    from labkit.rpc.sandbox import confined_command

    folder = tmp_path / "sock"
    folder.mkdir()
    argv = confined_command([sys.executable, "plugin.py"], folder, Sandbox(
        allow_without_landlock=True))
    setenv = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--setenv"]
    path = Path(next(s for s in setenv if s.startswith("PYTHONPATH=")).split("=", 1)[1])
    assert path.parent == folder and [p.name for p in path.iterdir()] == ["labkit"]
    assert (path / "labkit").resolve() == Path(launcher.__file__).resolve().parent.parent
