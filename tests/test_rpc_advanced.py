"""go-plugin beyond the basics, for real: SecureConfig, reattach, the broker; each against
the real hashicorp/go-plugin where it applies, and after each no process and no socket."""

from __future__ import annotations

import base64
import shutil
import time
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from labkit.errors import InputError, RPCPluginError
from labkit.rpc import Counter, PluginClient, Reattach, checksum, live_plugins, mtls, start_by_hand
from labkit.samples.rpc import (
    PY_CALLBACK,
    PY_TRANSFORMER,
    RpcSamples,
    python_plugin,
    response_headers,
)
from labkit.samples.rpc import run_go_rpc_host as go_host
from tests.test_rpc import (  # noqa: F401 - go_rpc and watched are fixtures
    go_rpc,
    gone,
    socket_folders,
    start,
    watched,
)

PY_DEBUG = python_plugin(PY_CALLBACK, "--debug")
PY_COUNTING = python_plugin(PY_CALLBACK)


def tampered(original: Path, folder: Path) -> Path:
    copy = folder / original.name
    shutil.copy2(original, copy)
    with copy.open("ab") as file:
        file.write(b"\n# one byte more\n" if copy.suffix == ".py" else b"\0")
    return copy


# -- SecureConfig -----------------------------------------------------------------------------

def test_labkit_starts_a_plugin_only_if_its_checksum_matches(
    go_rpc: RpcSamples, watched: list[PluginClient], tmp_path: Path,  # noqa: F811
) -> None:
    go = go_rpc.plugin.path
    assert start(watched, [str(go)], checksum=checksum(go)).transform({}) == {
        "x-plugin-lang": "go"}
    script = python_plugin(tampered(PY_TRANSFORMER, tmp_path))
    before = socket_folders()
    for command, trusted in [([str(tampered(go, tmp_path))], checksum(go)),
                             (script, checksum(PY_TRANSFORMER))]:
        client = PluginClient(command, checksum=trusted)
        watched.append(client)
        with pytest.raises(RPCPluginError, match="is not the file the host trusts") as caught:
            client.start()
        assert caught.value.stage == "verify" and client.pid is None
        assert "did not start it" in caught.value.what
    assert socket_folders() == before  # nothing was started, so no folder was made


def test_the_go_host_refuses_a_tampered_plugin(go_rpc: RpcSamples, tmp_path: Path) -> None:  # noqa: F811
    go = go_rpc.plugin.path
    good = go_host(go_rpc.host, [go], checksum=checksum(go))
    assert good.ok and response_headers(good)["x-plugin-lang"] == "go"
    bad = go_host(go_rpc.host, [tampered(go, tmp_path)], checksum=checksum(go))
    assert bad.returncode == 1 and "checksums did not match" in bad.stderr
    assert response_headers(bad) == {}


@pytest.mark.parametrize("text", ["", "abc", "g" * 64, "a" * 63, "a" * 65])
def test_a_checksum_that_is_not_a_sha256_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="64 hex digits"):
        PluginClient(python_plugin(), checksum=text)


# -- reattach ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["go", "python"])
def test_hosts_attach_to_a_plugin_started_by_hand_and_leave_it_running(
    command: str, go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    argv = [str(go_rpc.plugin.path), "-debug"] if command == "go" else PY_DEBUG
    with start_by_hand(argv) as plugin:
        info = plugin.reattach
        assert info.pid == plugin.pid and info.test and info.protocol == "grpc"
        for given_as in (info.to_json(), info):  # the JSON the plugin printed, or read
            client = PluginClient.attach(given_as)
            watched.append(client)
            assert client.pid == plugin.pid and client.health() == "SERVING"
            assert client.transform({"a": "b"})["x-plugin-lang"] == command
            assert client.close() == "left running: it serves in test mode and ends itself"
            assert plugin.alive
        outcome = go_host(go_rpc.host, reattach=info)
        assert outcome.ok, outcome.stderr
        assert response_headers(outcome)["x-plugin-lang"] == command
        assert plugin.alive  # go-plugin's Kill leaves a test-mode plugin alone
        assert plugin.stop() == "exited with status 0 after Ctrl-C"
    assert gone(plugin.pid)


@pytest.mark.parametrize("command", ["go", "python"])
def test_a_host_that_attaches_outside_test_mode_owns_the_plugin(
    command: str, go_rpc: RpcSamples,  # noqa: F811
) -> None:
    for stopper in ("labkit", "go-plugin"):
        argv = [str(go_rpc.plugin.path), "-debug"] if command == "go" else PY_DEBUG
        with start_by_hand(argv) as plugin:
            owned = replace(plugin.reattach, test=False)
            if stopper == "labkit":
                assert PluginClient.attach(owned).close() == "has ended after Shutdown"
            else:
                assert go_host(go_rpc.host, reattach=owned).ok
            deadline = time.monotonic() + 5
            while plugin.alive and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not plugin.alive, stopper
    assert live_plugins() == []


def test_attaching_to_a_plugin_that_is_gone_says_so(go_rpc: RpcSamples) -> None:  # noqa: F811
    with start_by_hand([str(go_rpc.plugin.path), "-debug"]) as plugin:
        info = plugin.reattach
    with pytest.raises(RPCPluginError, match=f"cannot attach to the plugin at pid {info.pid}"):
        PluginClient.attach(info)
    assert live_plugins() == []


def test_a_command_that_prints_no_reattach_line_is_refused_and_stopped() -> None:
    with pytest.raises(RPCPluginError, match="printed no reattach information") as caught:
        start_by_hand(PY_COUNTING, timeout=3)  # no --debug: no cookie
    assert "it exited with status 1" in caught.value.what


@given(st.integers(1, 2**22), st.sampled_from(["unix", "tcp"]),
       st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40),
       st.integers(0, 99), st.booleans())
def test_reattach_information_reads_back_as_written(
    pid: int, network: str, address: str, version: int, test: bool,
) -> None:
    info = Reattach(pid, network, address, "grpc", version, test)
    assert Reattach.from_json(info.to_json()) == info


@pytest.mark.parametrize(("text", "match"), [
    ("", "is not JSON"), ("{}", "has no 'transformer'"),
    ('{"transformer": {"Pid": 1}}', "has no 'Addr'"),
    ('{"transformer": {"Pid": 0, "Addr": {"Network": "unix", "String": "/x"}}}', "pid 0"),
    ('{"transformer": {"Pid": 5, "Addr": {"Network": "pipe", "String": "/x"}}}', "'pipe'"),
    ('{"transformer": []}', "wrong type"),
])
def test_bad_reattach_information_is_an_input_error(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Reattach.from_json(text)


# -- the broker: the plugin calls the host back -------------------------------------------------

@pytest.mark.parametrize("command", ["go", "python"])
def test_labkits_host_serves_its_counter_to_the_plugin_through_the_broker(
    command: str, go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    counter = Counter()
    argv = [str(go_rpc.plugin.path)] if command == "go" else PY_COUNTING
    for process in (1, 2):  # the count lives in the host, across plugin processes
        client = start(watched, argv)
        for call in (1, 2, 3):
            reply = client.transform({"a": "b"}, counter=counter)
            assert reply["x-call-number"] == str(3 * (process - 1) + call)
        assert "x-call-number" not in client.transform({"a": "b"})  # offered per call
        client.close()
    assert counter.counts == {"transform": 6}


@pytest.mark.parametrize("command", ["go", "python"])
def test_the_go_hosts_counter_is_called_back_by_either_plugin(
    command: str, go_rpc: RpcSamples,  # noqa: F811
) -> None:
    argv = [go_rpc.plugin.path] if command == "go" else PY_COUNTING
    outcome = go_host(go_rpc.host, argv, counter=True, times=3)
    assert outcome.ok, outcome.stderr
    assert response_headers(outcome)["x-call-number"] == "3"
    assert response_headers(go_host(go_rpc.host, argv, times=3)).get("x-call-number") is None


def test_go_plugins_broker_serves_only_the_first_host_that_attaches(
    go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    """go-plugin closes a plugin's broker when the first host's stream ends (grpc_broker.go,
    StartStream's deferred Close); labkit's plugin takes the next host's stream."""
    for argv, second in ([[str(go_rpc.plugin.path), "-debug"], None], [PY_DEBUG, "2"]):
        counter = Counter()
        with start_by_hand(argv) as plugin:
            first = PluginClient.attach(plugin.reattach)
            watched.append(first)
            assert first.transform({}, counter=counter)["x-call-number"] == "1"
            first.close()
            later = PluginClient.attach(plugin.reattach, call_timeout=15)
            watched.append(later)
            if second is None:
                with pytest.raises(RPCPluginError, match="timeout waiting for connection info"):
                    later.transform({}, counter=counter)
            else:
                assert later.transform({}, counter=counter)["x-call-number"] == second
            assert later.transform({})["x-plugin-lang"] in ("go", "python")  # still serving
            later.close()


def test_a_plugin_that_dials_an_id_nobody_offered_gets_a_clear_error(
    watched: list[PluginClient],  # noqa: F811
) -> None:
    from labkit.rpc.broker import Broker

    broker = Broker()
    try:
        with pytest.raises(RPCPluginError, match="no connection information for it "
                                                 r"arrived within 0\.2 s"):
            broker.dial(7, timeout=0.2)
    finally:
        broker.close()


def test_no_broker_socket_outlives_its_host(
    go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    client = start(watched, [str(go_rpc.plugin.path)])
    client.transform({}, counter=Counter())
    folder = client.socket_folder
    assert folder is not None and any(folder.glob("broker-*/*.sock"))
    client.close()
    assert not folder.exists()


# -- AutoMTLS ------------------------------------------------------------------------------------

P521 = bytes.fromhex("06052b81040023")  # DER of the OID 1.3.132.0.35, secp521r1


def test_go_plugins_automtls_go_to_go_trades_p521_certificates(
    go_rpc: RpcSamples, tmp_path: Path,  # noqa: F811
) -> None:
    """The host's certificate goes to the plugin in PLUGIN_CLIENT_CERT (PEM), the plugin's
    comes back as the handshake line's sixth field (base64 DER, unpadded): both P-521."""
    wrapper = tmp_path / "recording-plugin"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s" "$PLUGIN_CLIENT_CERT" > "{tmp_path}/client.pem"\n'
        f'"{go_rpc.plugin.path}" | (IFS= read -r line; printf "%s\\n" "$line" > '
        f'"{tmp_path}/line"; printf "%s\\n" "$line"; cat)\n')
    wrapper.chmod(0o755)
    outcome = go_host(go_rpc.host, [wrapper], automtls=True)
    assert outcome.ok, outcome.stderr
    assert response_headers(outcome)["x-plugin-lang"] == "go"
    client_pem = (tmp_path / "client.pem").read_text()
    assert client_pem.startswith("-----BEGIN CERTIFICATE-----")
    body = "".join(client_pem.strip().splitlines()[1:-1])
    server_b64 = (tmp_path / "line").read_text().strip().split("|")[5]
    padded = server_b64 + "=" * (-len(server_b64) % 4)
    for der in (base64.b64decode(body), base64.b64decode(padded)):
        assert der[0] == 0x30 and P521 in der  # an X.509 certificate on P-521


P256 = bytes.fromhex("06082a8648ce3d030107")  # DER of the OID 1.2.840.10045.3.1.7, prime256v1


def test_labkit_peers_speak_automtls_with_the_broker_too(
    watched: list[PluginClient],  # noqa: F811
) -> None:
    client = start(watched, PY_COUNTING, automtls=True)
    line = client.line
    assert line is not None and line.server_cert
    der = base64.b64decode(line.server_cert + "=" * (-len(line.server_cert) % 4))
    assert der[0] == 0x30 and P256 in der and mtls.curve(mtls.from_line_field(
        line.server_cert)) == "secp256r1"
    counter = Counter()
    assert client.transform({}, counter=counter)["x-call-number"] == "1"  # over TLS too
    assert client.transform({}, counter=counter)["x-call-number"] == "2"
    folder = client.socket_folder
    assert folder is not None
    plugin_socket = f"unix:{line.address}"
    broker_socket = f"unix:{next(folder.glob('broker-*/*.sock'))}"
    stranger = mtls.MutualTLS(mtls.Identity.generate(), mtls.from_line_field(line.server_cert))
    for target in (plugin_socket, broker_socket):
        # without TLS, and with TLS but a certificate the other side does not trust: refused
        for channel in (grpc.insecure_channel(target),
                        grpc.secure_channel(target, stranger.channel_credentials(),
                                            options=mtls.CHANNEL_OPTIONS)):
            with channel, pytest.raises(grpc.RpcError) as caught:
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="plugin"), timeout=5)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("curve,works", [("secp256r1", True), ("secp384r1", True),
                                         ("secp521r1", False)])
def test_which_curves_grpcio_can_do_mutual_tls_with(curve: str, works: bool,
                                                     tmp_path: Path) -> None:
    """The claim behind labkit's AutoMTLS, measured on grpcio itself: both sides on the same
    curve, Python to Python."""
    server_id, client_id = mtls.Identity.generate(curve), mtls.Identity.generate(curve)
    assert mtls.curve(server_id.certificate) == curve
    assert (mtls.unusable(server_id.certificate) == "") is works
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    target = f"unix:{tmp_path}/tls.sock"
    server.add_secure_port(target, mtls.MutualTLS(server_id, client_id.certificate)
                           .server_credentials())
    server.start()
    try:
        with grpc.secure_channel(target, mtls.MutualTLS(client_id, server_id.certificate)
                                 .channel_credentials(), options=mtls.CHANNEL_OPTIONS) as ch:
            try:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                     timeout=5)
                outcome = "ok"
            except grpc.RpcError as exc:
                outcome = exc.details() or ""
    finally:
        server.stop(grace=None)
    assert (outcome == "ok") is works, outcome
    if not works:  # the server's BoringSSL finds no common signature algorithm and hangs up
        assert "Handshake read failed" in outcome


def test_labkit_and_go_plugin_cannot_share_automtls_and_say_why(
    go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    outcome = go_host(go_rpc.host, python_plugin(), automtls=True)
    assert outcome.returncode == 1
    assert ("[ERROR] host.python: the host asked for go-plugin's AutoMTLS" in outcome.stderr
            and "P-521" in outcome.stderr)
    client = PluginClient([str(go_rpc.plugin.path)], automtls=True)
    watched.append(client)
    with pytest.raises(RPCPluginError, match="labkit's host cannot do TLS with it: its "
                                             "certificate is on P-521") as caught:
        client.start()
    assert caught.value.stage == "handshake"
    insisting = PluginClient([str(go_rpc.plugin.path)], automtls="insist")
    watched.append(insisting)
    with pytest.raises(RPCPluginError, match="failed the TLS handshake") as caught:
        insisting.start()
    assert caught.value.stage == "connect"
    assert "SSLV3_ALERT_HANDSHAKE_FAILURE" in caught.value.what  # grpcio's side
    assert any("peer doesn't support any of the certificate's signature algorithms" in line
               for line in caught.value.stderr_tail)  # the Go plugin's side


def test_labkit_refuses_tls_it_did_not_ask_for_and_a_plugin_without_tls(
    go_rpc: RpcSamples, watched: list[PluginClient],  # noqa: F811
) -> None:
    client = PluginClient([str(go_rpc.plugin.path)], env={"PLUGIN_CLIENT_CERT": "any"})
    watched.append(client)
    with pytest.raises(RPCPluginError, match=r"serves TLS: its handshake line carries a server "
                                             r"certificate.*did not ask for it") as caught:
        client.start()
    assert caught.value.stage == "handshake"
    plain = python_plugin()  # a shell between host and plugin drops the certificate
    wrapper = [*plain[:1], "-c", "import os, sys; os.environ.pop('PLUGIN_CLIENT_CERT'); "
               "sys.argv = sys.argv[1:]; exec(open(sys.argv[0]).read())", *plain[1:]]
    client = PluginClient(wrapper, automtls=True)
    watched.append(client)
    with pytest.raises(RPCPluginError, match="serves without TLS: this host asked for "
                                             "AutoMTLS"):
        client.start()
    with pytest.raises(InputError, match="cannot be attached with automtls"):
        PluginClient.attach(Reattach(1, "unix", "/x", "grpc", 1, True), automtls=True)
    with pytest.raises(InputError, match="automtls='yes' is not an AutoMTLS mode"):
        PluginClient(plain, automtls="yes")  # type: ignore[arg-type]
