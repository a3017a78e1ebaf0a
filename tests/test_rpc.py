"""RPC plugins for real: go-plugin's protocol in both roles, interop with the real
hashicorp/go-plugin both ways, and every fault with a real misbehaving process, after which
no plugin process and no socket may remain."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.errors import HandshakeError, InputError, RPCPluginError
from labkit.rpc import (
    LAB_HANDSHAKE,
    HandshakeLine,
    PluginClient,
    live_plugins,
    negotiate,
    parse_handshake,
)
from labkit.rpc.hclog import format_line, parse_line
from labkit.rpc.stubs import generate_go
from labkit.samples.rpc import (
    FAULTS,
    GOPLUGIN_MODULE,
    PY_TRANSFORMER,
    RpcSamples,
    build_rpc_samples,
    faulty_plugin,
    python_plugin,
    response_headers,
    run_go_rpc_host,
)
from tests.conftest import run_cli


@pytest.fixture(scope="session")
def go_rpc(tmp_path_factory: pytest.TempPathFactory) -> RpcSamples:
    return build_rpc_samples(tmp_path_factory.mktemp("rpc"))


def gone(pid: int) -> bool:
    """No process is left in the plugin's process group (it leads its own session)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def socket_folders() -> list[Path]:
    """This process's socket folders (``plugin-lab-PID-*``) that exist on disk."""
    return sorted(Path(tempfile.gettempdir()).glob(f"plugin-lab-{os.getpid()}-*"))


@pytest.fixture
def watched() -> Iterator[list[PluginClient]]:
    """Clients a test makes; afterwards each must have left no process and no socket."""
    clients: list[PluginClient] = []
    yield clients
    for client in clients:
        client.close()
        assert client.pid is None or gone(client.pid), client.command
    assert socket_folders() == []
    assert live_plugins() == []


def start(clients: list[PluginClient], command: list[str], **options: object) -> PluginClient:
    client = PluginClient(command, **options)  # type: ignore[arg-type]
    clients.append(client)
    return client.start()


# -- the handshake line -------------------------------------------------------------------

lines = st.builds(
    HandshakeLine,
    core_version=st.just(1),
    app_version=st.integers(0, 999_999_999),
    network=st.sampled_from(["unix", "tcp"]),
    address=st.text(st.characters(blacklist_characters="|\r\n", blacklist_categories=["Z", "C"]),
                    min_size=1, max_size=60),
    protocol=st.sampled_from(["grpc", "netrpc"]),
    server_cert=st.text("ABCDEFabcdef0123456789+/", max_size=80),
    multiplex=st.sampled_from([None, True, False]),
)


@given(lines)
def test_every_valid_line_reads_back_as_written(line: HandshakeLine) -> None:
    assert parse_handshake(str(line)) == line
    assert parse_handshake(f"  {line}\r\n") == line


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_any_text_is_a_line_or_a_handshake_error_naming_it(text: str) -> None:
    try:
        line = parse_handshake(text)
    except HandshakeError as exc:
        assert exc.reason in {"empty", "too-long", "garbage", "core-version", "network", "protocol"}
        assert exc.line == text
        assert "Fix: " in str(exc)
    else:
        assert line.core_version == 1 and line.network in ("unix", "tcp")
        assert line.protocol in ("grpc", "netrpc")


@given(st.lists(st.text("0123456789|,tx ", max_size=12), max_size=8).map("|".join))
@settings(max_examples=500)
def test_near_misses_are_refused_or_read_back_the_same(text: str) -> None:
    try:
        line = parse_handshake(text)
    except HandshakeError as exc:
        assert exc.reason in {"empty", "garbage", "core-version", "network", "protocol"}
        return
    assert parse_handshake(str(line)) == line


@pytest.mark.parametrize(("text", "reason", "match"), [
    ("", "empty", "empty"),
    ("hello", "garbage", "1 field, at least 4"),
    ("1|1|unix|/s|grpc||true|extra", "garbage", "8 fields, at most 7"),
    ("1|one|unix|/s|grpc|", "garbage", "version numbers"),
    ("1|+1|unix|/s|grpc|", "garbage", "version numbers"),
    ("1|1|unix||grpc|", "garbage", "address is empty"),
    ("1|1|unix|/s|grpc||maybe", "garbage", "true or false"),
    ("2|1|unix|/s|grpc|", "core-version", "core protocol 2, labkit speaks 1"),
    ("1|1|udp|/s|grpc|", "network", "'udp'"),
    ("1|1|unix|/s|http|", "protocol", "'http'"),
    ("x" * 20000, "too-long", "longer than 16384 characters"),
], ids=["empty", "text", "eight-fields", "word-version", "signed-version", "no-address",
        "bad-bool", "core-2", "udp", "http", "too-long"])
def test_bad_lines_are_refused_with_the_reason(text: str, reason: str, match: str) -> None:
    with pytest.raises(HandshakeError, match=match) as info:
        parse_handshake(text)
    assert info.value.reason == reason


def test_a_four_field_line_means_netrpc_and_seven_fields_carry_multiplexing() -> None:
    assert parse_handshake("1|3|tcp|127.0.0.1:1234").protocol == "netrpc"
    line = parse_handshake("1|1|unix|/s|grpc||true")
    assert (line.protocol, line.server_cert, line.multiplex) == ("grpc", "", True)


@pytest.mark.parametrize(("offered", "supported", "chosen", "agreed", "bad"), [
    ("1", (1,), 1, True, []),
    ("1,2,3", (1, 2), 2, True, []),
    ("3, 2", (1, 2, 3), 3, True, []),
    ("", (1, 2), 1, False, []),
    ("5", (1, 2), 1, False, []),
    ("x,2", (1, 2), 2, True, ["x"]),
])
def test_the_plugin_picks_the_newest_common_version_as_go_plugin_does(
    offered: str, supported: tuple[int, ...], chosen: int, agreed: bool, bad: list[str],
) -> None:
    assert negotiate(offered, supported) == (chosen, agreed, bad)


def test_hclog_lines_read_back() -> None:
    line = format_line("warn", "disk low", "plugin", free=3, where="/tmp")
    data = json.loads(line)
    assert data["@level"] == "warn" and data["@timestamp"].endswith("Z")
    record = parse_line(line)
    assert record is not None
    assert (record.level, record.message, record.module) == ("warn", "disk low", "plugin")
    assert record.fields == {"free": 3, "where": "/tmp"}
    assert parse_line("panic: runtime error") is None
    assert parse_line("{not json") is None


# -- the plugin side ----------------------------------------------------------------------

def test_run_by_hand_without_the_cookie_the_plugin_says_so_and_exits_1() -> None:
    env = {k: v for k, v in os.environ.items() if k != LAB_HANDSHAKE.cookie_key}
    done = subprocess.run(python_plugin(), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "is a Plugin Lab plugin: a host starts it" in done.stderr
    assert "PLUGIN_LAB_COOKIE=plugin-lab-v1" in done.stderr


def test_the_socket_sits_in_a_private_folder_inside_the_hosts(watched: list[PluginClient]) -> None:
    client = start(watched, python_plugin())
    assert client.line is not None and client.socket_folder is not None
    socket_path = Path(client.line.address)
    assert socket_path.parent.parent == client.socket_folder  # PLUGIN_UNIX_SOCKET_DIR honoured
    assert stat.S_ISSOCK(socket_path.stat().st_mode)
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(client.socket_folder.stat().st_mode) == 0o700
    assert str(client.line) == f"1|1|unix|{socket_path}|grpc|"


def test_the_python_host_calls_the_python_plugin(watched: list[PluginClient]) -> None:
    client = start(watched, python_plugin())
    assert client.health() == "SERVING"
    assert client.transform({"host": "example.com"}) == {
        "host": "example.com", "x-plugin-lang": "python",
        "x-transformed-by": "transformer_plugin.py"}
    assert client.transform({"x-trace": "1"})["x-plugin-lang"] == "python"
    assert client.output() == ["stdout: python plugin: transforming 1 header(s)"]
    assert [r.message for r in client.logs if r.level == "info"] == ["serving"]
    assert client.close() == "exited with status 0 after Shutdown"
    assert "the host asked for shutdown" in [r.message for r in client.logs]


def test_the_plugins_stderr_writes_travel_the_stream_while_crashes_use_the_real_stderr(
    watched: list[PluginClient], tmp_path: Path,
) -> None:
    script = tmp_path / "both.py"
    script.write_text(
        "import sys\nfrom labkit.rpc import serve\n"
        "def t(h):\n    print('to stdout')\n    print('to stderr', file=sys.stderr)\n    return h\n"
        "serve(t)\n")
    client = start(watched, python_plugin(script))
    client.transform({})
    assert sorted(client.output()) == ["stderr: to stderr", "stdout: to stdout"]
    assert client.stderr_tail == []


# -- interop with the real go-plugin ------------------------------------------------------

def test_the_go_host_loads_the_python_plugin(go_rpc: RpcSamples) -> None:
    outcome = run_go_rpc_host(go_rpc.host, python_plugin(), headers={"host": "example.com"})
    assert outcome.ok, outcome.stderr
    assert outcome.stdout.splitlines() == [
        "host: example.com", "x-plugin-lang: python", "x-request-from: go-host",
        "x-transformed-by: transformer_plugin.py"]
    assert "[ERROR]" not in outcome.stderr and "[WARN]" not in outcome.stderr


def test_the_go_host_sees_the_python_plugins_stdout_over_go_plugins_stream(
    go_rpc: RpcSamples,
) -> None:
    # the host waits for the plugin's stdout: go-plugin copies it from a goroutine nothing
    # waits for, so a host that stops the plugin at once may not print it (seen under load)
    outcome = run_go_rpc_host(go_rpc.host, python_plugin(), headers={"x-trace": "yes"},
                              await_stdout=True)
    assert outcome.ok, outcome.stderr
    assert "python plugin: transforming 2 header(s)" in outcome.stderr  # SyncStdout
    assert "did not arrive" not in outcome.stderr


def test_the_python_host_loads_the_go_plugin(
    go_rpc: RpcSamples, watched: list[PluginClient],
) -> None:
    client = start(watched, [str(go_rpc.plugin.path)])
    assert client.line is not None and client.line.protocol == "grpc"
    assert client.health() == "SERVING"
    assert client.transform({"host": "example.com", "x-trace": "1"}) == {
        "host": "example.com", "x-plugin-lang": "go", "x-trace": "1"}
    assert client.output() == ["stdout: go plugin: transforming 2 header(s)"]
    assert ("info", "transform") in [(r.level, r.message) for r in client.logs]
    assert client.close() == "exited with status 0 after Shutdown"


def test_the_go_host_loads_the_go_plugin(go_rpc: RpcSamples) -> None:
    outcome = run_go_rpc_host(go_rpc.host, [go_rpc.plugin], bench=10)
    assert outcome.ok, outcome.stderr
    assert response_headers(outcome) == {"x-plugin-lang": "go", "x-request-from": "go-host"}
    assert "bench: 10 calls," in outcome.stdout


def test_the_go_host_refuses_a_plugin_run_without_its_protocol(go_rpc: RpcSamples) -> None:
    outcome = run_go_rpc_host(go_rpc.host, faulty_plugin("junk"), timeout=120)
    assert outcome.returncode == 1
    assert "Unrecognized remote plugin message" in outcome.stderr


def test_the_go_stubs_are_current(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in generate_go(tmp_path)}
    committed = {p.name: p.read_text() for p in (GOPLUGIN_MODULE / "proto").glob("*.go")}
    assert fresh == committed, "run `make protos` and commit plugins/go/goplugin/proto"


# -- faults: each with a real process ------------------------------------------------------

@pytest.mark.parametrize(("mode", "stage", "match"), [
    ("exit-early", "start", r"exited before its handshake\. It exited with status 3\.\n"
                            r"Its stderr:\n  faulty plugin: giving up before the handshake"),
    ("junk", "handshake", r"'Hello from a plugin that forgot the protocol' is not a go-plugin"),
    ("silent", "handshake", r"printed no handshake line within 2 s"),
    ("flood", "handshake", r"first line on stdout is longer than 16384 characters"),
    ("wrong-core", "handshake", r"core protocol 2, labkit speaks 1"),
    ("netrpc", "handshake", r"speaks go-plugin's netrpc protocol; labkit's host speaks only grpc"),
], ids=["exits-first", "junk", "never-prints", "floods-stdout", "wrong-core", "netrpc"])
def test_a_plugin_that_fails_to_start_gives_a_clear_error_in_time(
    watched: list[PluginClient], mode: str, stage: str, match: str,
) -> None:
    began = time.monotonic()
    with pytest.raises(RPCPluginError, match=match) as info:
        start(watched, faulty_plugin(mode), start_timeout=2.0)
    assert time.monotonic() - began < 2.0 + 3.0
    assert info.value.stage == stage
    client = watched[0]
    assert not client.alive and gone(client.pid or 0)
    assert socket_folders() == []


def test_a_plugin_that_dies_during_a_call_is_reported_and_the_host_carries_on(
    watched: list[PluginClient],
) -> None:
    client = start(watched, faulty_plugin("crash-on-call"))
    crashed_pid = client.pid
    with pytest.raises(RPCPluginError, match="died during Transform: was killed by SIGSEGV") as info:
        client.transform({"a": "1"})
    error = info.value
    assert (error.stage, error.signal, error.returncode) == ("call", "SIGSEGV", -signal.SIGSEGV)
    assert "Fatal Python error: Segmentation fault" in str(error)
    assert gone(crashed_pid or 0) and socket_folders() == []
    with pytest.raises(RPCPluginError, match="is not started"):
        client.transform({})
    client.restart()
    assert client.pid != crashed_pid and client.health() == "SERVING"


def test_a_plugin_killed_between_calls_is_cleaned_up_when_started_again(
    watched: list[PluginClient],
) -> None:
    client = start(watched, python_plugin())
    first = client.pid or 0
    os.killpg(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while client.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    client.start()
    assert client.pid != first and len(socket_folders()) == 1  # the dead one's was removed


def test_the_plugin_ignores_sigint_as_go_plugin_plugins_do(watched: list[PluginClient]) -> None:
    client = start(watched, python_plugin())
    os.kill(client.pid or 0, signal.SIGINT)  # what Ctrl-C in a terminal would send
    time.sleep(0.3)
    assert client.alive and client.transform({})["x-plugin-lang"] == "python"


def test_a_plugin_that_ignores_shutdown_is_killed_after_the_grace_period(
    watched: list[PluginClient],
) -> None:
    client = start(watched, faulty_plugin("ignore-shutdown"), grace=1.0)
    began = time.monotonic()
    assert client.close() == "ignored Shutdown for 1 s and was killed (SIGKILL)"
    assert 1.0 <= time.monotonic() - began < 4.0
    assert gone(client.pid or 0)


def test_a_plugin_that_floods_stdout_during_a_call_cannot_swamp_the_host(
    watched: list[PluginClient],
) -> None:
    client = start(watched, faulty_plugin("chatty"))
    assert client.transform({"a": "1"}) == {"a": "1", "x-plugin-lang": "python"}
    kept = client.output(wait=10)
    assert len(kept) == 2000 and kept[-1] == "stdout: chatty line 19999"
    assert client.dropped_lines == 18000
    assert client.close() == "exited with status 0 after Shutdown"


def test_a_plugin_that_raises_answers_with_a_status_and_stays_up(
    watched: list[PluginClient],
) -> None:
    client = start(watched, faulty_plugin("raise"))
    with pytest.raises(RPCPluginError, match="answered Transform with INTERNAL: ValueError") as info:
        client.transform({"a": "1"})
    assert info.value.status == "INTERNAL" and client.alive
    assert ("error", "transform failed") in [(r.level, r.message) for r in client.logs]


def test_a_version_the_host_does_not_accept_is_refused(watched: list[PluginClient]) -> None:
    with pytest.raises(RPCPluginError, match="speaks app protocol version 1; this host accepts 2"):
        start(watched, python_plugin(), versions=(2,))


def test_a_missing_program_is_a_start_error(watched: list[PluginClient], tmp_path: Path) -> None:
    with pytest.raises(RPCPluginError, match="cannot start plugin") as info:
        start(watched, [str(tmp_path / "no-such-plugin")])
    assert info.value.stage == "start"


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(InputError, match="non-empty list"):
        PluginClient("python plugin.py")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown fault 'nope'"):
        faulty_plugin("nope")
    assert set(FAULTS) >= {"exit-early", "junk", "silent", "flood", "crash-on-call"}


def kill_host_of(start: str) -> tuple[int, str]:
    """Run a host that starts a plugin with the Python expression ``start`` (a PluginClient
    of labkit.rpc's names), SIGKILL it (no atexit, no close()) and wait up to 5 s for its
    plugin to go; the plugin's pid and socket folder."""
    host = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom labkit.rpc import PluginClient, Sandbox\n"
         f"c = {start}.start()\n"
         "print(c.pid, c.socket_folder, flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    assert host.stdout is not None
    pid, folder = host.stdout.readline().split()
    host.kill()
    host.wait()
    host.stdout.close()
    deadline = time.monotonic() + 5
    while not gone(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(pid), folder


def test_a_killed_host_takes_its_plugin_with_it() -> None:
    pid, folder = kill_host_of(f"PluginClient([sys.executable, {str(PY_TRANSFORMER)!r}])")
    assert gone(pid)
    assert Path(folder).exists()  # a SIGKILL leaves no time to clean up ...
    with PluginClient(python_plugin()):
        assert not Path(folder).exists()  # ... so the next host sweeps it


def test_the_exit_hook_leaves_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom labkit.rpc import PluginClient\n"
         f"c = PluginClient([sys.executable, {str(PY_TRANSFORMER)!r}]).start()\n"
         "print(c.pid, c.socket_folder, flush=True)\n"],  # exits without close(): atexit
        capture_output=True, text=True, timeout=60)
    pid, folder = done.stdout.split()
    assert gone(int(pid)) and not Path(folder).exists()


def test_bench_rpc_reports_every_host_with_every_plugin() -> None:
    """The references, then each host with each plugin, in rounds of --calls calls: timed in
    Python but for go-plugin's own host, which times itself in Go; then the start-ups."""
    from labkit.lab.benchrpc import PLUGINS, RPC_FIGURES, RPC_STARTS

    done = run_cli("bench", "rpc", "--calls", "20", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == [*RPC_FIGURES, *RPC_STARTS]
    calls = [r for r in rows if r["kind"] == "call"]
    assert all(r["seconds"] > 0 and r["number"] == 20 and r["repeats"] == 5 for r in calls)
    assert all(r["seconds"] > 0 and r["number"] == 1 for r in rows if r["kind"] == "start")
    by_name = {r["name"]: r["timed_in"] for r in rows}
    for (py_call, py_start), (go_call, go_start) in PLUGINS.values():
        assert by_name[py_call] == by_name[py_start] == "Python"
        assert by_name[go_call] == by_name[go_start] == "Go"
    table = run_cli("bench", "rpc", "--calls", "20")
    assert table.returncode == 0, table.stderr
    grid = table.stdout.splitlines()[2:5]
    assert [line.split("  ")[0] for line in grid] == list(PLUGINS)
    assert all(len(re.findall(r"\d+(?:\.\d+)? [mµn]?s \(", line)) == 2 for line in grid)
    assert len(re.findall(r"^labkit against pyvider-rpcplugin, .*: (faster|slower), ",
                          table.stdout, re.M)) == 4
