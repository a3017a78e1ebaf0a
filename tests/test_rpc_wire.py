"""labkit.rpc.wire, gRPC over HTTP/2 written by hand, checked against the real thing: its
message codec against protobuf's, its server against grpcio's client, its client against
grpcio's server, and the plugin it serves one call at a time (``concurrent=True``: grpcio's
threaded server) against a host that calls from several threads."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.rpc import PluginClient, wire
from labkit.rpc.stubs import messages
from labkit.samples.rpc import python_plugin
from tests.test_rpc import start, watched  # noqa: F401 - watched is a fixture

pb = messages("transformer")
gp = messages("goplugin")

headers = st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=12)
services = st.integers(0, 2**32 - 1)


# -- the codec, against protobuf's ------------------------------------------------------------

@given(headers, services)
def test_a_request_written_by_hand_is_the_one_protobuf_reads(
    fields: dict[str, str], service: int,
) -> None:
    parsed = pb.TransformRequest.FromString(wire.encode_request(fields, service))
    assert dict(parsed.headers) == fields
    assert parsed.host_service == service


@given(headers, services)
def test_a_request_protobuf_writes_is_the_one_read_by_hand(
    fields: dict[str, str], service: int,
) -> None:
    data = pb.TransformRequest(headers=fields, host_service=service).SerializeToString()
    assert wire.decode_request(data) == (fields, service)


@given(headers)
def test_responses_go_both_ways_between_hand_and_protobuf(fields: dict[str, str]) -> None:
    assert dict(pb.TransformResponse.FromString(wire.encode_response(fields)).headers) == fields
    assert wire.decode_response(pb.TransformResponse(headers=fields).SerializeToString()) == fields


@given(st.sampled_from([1, 2]), st.binary(max_size=3000))
def test_stdio_chunks_written_by_hand_are_protobufs(channel: int, data: bytes) -> None:
    parsed = gp.StdioData.FromString(wire.encode_stdio(channel, data))
    assert (parsed.channel, parsed.data) == (channel, data)


@given(services, st.sampled_from(["", "unix", "tcp"]), st.text(max_size=120), st.booleans())
def test_conninfo_goes_both_ways_between_hand_and_protobuf(
    service_id: int, network: str, address: str, knock: bool,
) -> None:
    parsed = gp.ConnInfo.FromString(wire.encode_conninfo(service_id, network, address))
    assert (parsed.service_id, parsed.network, parsed.address) == (service_id, network, address)
    sent = gp.ConnInfo(service_id=service_id, network=network, address=address)
    if knock:
        sent.knock.knock = True
    assert wire.decode_conninfo(sent.SerializeToString()) == (service_id, network, address, knock)


@given(st.text(max_size=60))
def test_the_health_service_name_is_read_as_protobuf_wrote_it(name: str) -> None:
    data = health_pb2.HealthCheckRequest(service=name).SerializeToString()
    assert wire.health_service(data) == name


# -- the server, against grpcio's client --------------------------------------------------------

ECHO = "/test.Wire/Echo"
FAIL = "/test.Wire/Fail"
SLOW = "/test.Wire/Slow"


def echo(message: bytes) -> bytes:
    return message[::-1]


def fail(message: bytes) -> bytes:
    raise wire.AbortError(9, message.decode())  # FAILED_PRECONDITION, the request as its details


def slow(message: bytes) -> bytes:
    time.sleep(1)
    return message


@pytest.fixture
def wire_server() -> Iterator[str]:
    """An :class:`~labkit.rpc.wire.H2Server` on a Unix socket, in a thread: its address."""
    folder = Path(tempfile.mkdtemp(prefix="wire-"))
    server = wire.H2Server(unary={ECHO: (echo, False), FAIL: (fail, False), SLOW: (slow, False)}, sstreams={},
                           bidi={})
    server.listen(str(folder / "s"))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield f"unix:{folder / 's'}"
    server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert not (folder / "s").exists() or os.listdir(folder) == ["s"]
    (folder / "s").unlink(missing_ok=True)
    folder.rmdir()


def unary(channel: grpc.Channel, method: str) -> Callable[..., bytes]:
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


@pytest.mark.parametrize("size", [0, 1, 16_379, 16_380, 65_535, 70_000, 1 << 20, 4 << 20])
def test_the_server_answers_grpcio_with_messages_of_any_size(wire_server: str, size: int) -> None:
    """Beyond one frame (16 KiB) and beyond HTTP/2's first window (64 KiB) both ways: the
    server respects the client's windows and frame size, the client the server's."""
    message = os.urandom(size)
    with grpc.insecure_channel(wire_server) as channel:
        assert unary(channel, ECHO)(message, timeout=20) == message[::-1]


def test_the_server_answers_calls_from_many_threads_on_one_connection(wire_server: str) -> None:
    with grpc.insecure_channel(wire_server) as channel, \
            futures.ThreadPoolExecutor(8) as pool:
        call = unary(channel, ECHO)
        messages_ = [os.urandom(n) for n in range(0, 40_000, 997)]
        answers = list(pool.map(lambda m: call(m, timeout=20), messages_))
    assert answers == [m[::-1] for m in messages_]


def status_of(wire_server: str, method: str, message: bytes, **options: object) -> grpc.RpcError:
    with grpc.insecure_channel(wire_server) as channel, pytest.raises(grpc.RpcError) as caught:
        unary(channel, method)(message, timeout=20, **options)
    return caught.value


def test_a_status_and_its_details_reach_grpcio_intact(wire_server: str) -> None:
    details = "100% sûr: naïve ✓ Ünïcode, and a newline\nhere"
    error = status_of(wire_server, FAIL, details.encode())
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert error.details() == details  # type: ignore[attr-defined]


def test_an_unknown_method_is_unimplemented(wire_server: str) -> None:
    error = status_of(wire_server, "/test.Wire/Nope", b"x")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    assert "/test.Wire/Nope" in error.details()  # type: ignore[attr-defined]


def test_a_compressed_message_is_refused_with_a_status(wire_server: str) -> None:
    error = status_of(wire_server, ECHO, b"a" * 1000, compression=grpc.Compression.Gzip)
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    assert "compressed" in error.details()  # type: ignore[attr-defined]


def test_a_message_over_grpcs_default_limit_is_refused_and_the_server_goes_on(
    wire_server: str,
) -> None:
    error = status_of(wire_server, ECHO, bytes(wire.MAX_MESSAGE + 1))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert str(wire.MAX_MESSAGE + 1) in error.details()  # type: ignore[attr-defined]
    with grpc.insecure_channel(wire_server) as channel:
        assert unary(channel, ECHO)(b"still here", timeout=20) == b"ereh llits"


# -- the client, against grpcio's server --------------------------------------------------------

@pytest.fixture(scope="module")
def grpcio_server() -> Iterator[str]:
    """grpcio's server on a Unix socket, with the same two methods: its socket's path."""
    folder = Path(tempfile.mkdtemp(prefix="wire-"))

    def as_handler(fn: Callable[[bytes], bytes]) -> grpc.RpcMethodHandler:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return fn(request)
            except wire.AbortError as abort:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, abort.details)

        return grpc.unary_unary_rpc_method_handler(handle)

    methods = {"Echo": as_handler(echo), "Fail": as_handler(fail)}
    server = grpc.server(futures.ThreadPoolExecutor(2),
                         handlers=[grpc.method_handlers_generic_handler("test.Wire", methods)])
    server.add_insecure_port(f"unix:{folder / 's'}")
    server.start()
    yield str(folder / "s")
    server.stop(None).wait()
    (folder / "s").unlink(missing_ok=True)
    folder.rmdir()


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=wire.MIN_MAX_FRAME - 5))
def test_the_client_gets_grpcios_answers(grpcio_server: str, message: bytes) -> None:
    connection = wire.UnaryConnection(grpcio_server)
    try:
        for _ in range(3):  # the same connection, call after call
            assert connection.call(ECHO.encode(), message, 10) == message[::-1]
    finally:
        connection.close()


def test_the_client_reports_grpcios_status(grpcio_server: str) -> None:
    connection = wire.UnaryConnection(grpcio_server)
    with pytest.raises(wire.GrpcStatusError) as caught:
        connection.call(FAIL.encode(), "100% ✓".encode(), 10)
    connection.close()
    assert (caught.value.code, caught.value.message) == (9, "100% ✓")


def test_the_client_hands_back_what_does_not_fit_one_frame(grpcio_server: str) -> None:
    """Nothing is sent: the caller goes through grpcio's channel, which splits frames."""
    connection = wire.UnaryConnection(grpcio_server)
    try:
        assert connection.call(ECHO.encode(), bytes(wire.MIN_MAX_FRAME - 5), 10) is not None
        assert connection.call(ECHO.encode(), bytes(wire.MIN_MAX_FRAME - 4), 10) is None
        assert connection.call(ECHO.encode(), b"and on", 10) == b"no dna"
    finally:
        connection.close()


def test_the_client_gives_up_at_its_timeout(wire_server: str) -> None:
    connection = wire.UnaryConnection(wire_server.removeprefix("unix:"))
    try:
        with pytest.raises(TimeoutError):
            connection.call(SLOW.encode(), b"", 0.2)
    finally:
        connection.close()


# -- one call at a time, or grpcio's threads ----------------------------------------------------

MEETING = """
import sys, threading
from labkit.rpc import serve

both = threading.Barrier(2, timeout=float(sys.argv[2]))


def transform(headers):
    try:
        both.wait()  # returns once two calls are in the plugin at the same time
        return {"met": "yes"}
    except threading.BrokenBarrierError:
        return {"met": "no"}


serve(transform, concurrent=sys.argv[1] == "concurrent")
"""


@pytest.mark.parametrize(("mode", "met"), [("concurrent", "yes"), ("serial", "no")])
def test_two_calls_meet_in_the_plugin_only_when_it_serves_concurrently(
    watched: list[PluginClient], tmp_path: Path, mode: str, met: str,  # noqa: F811
) -> None:
    (tmp_path / "meeting.py").write_text(MEETING)
    wait = "20" if mode == "concurrent" else "1"  # serial: the first call waits alone, in vain
    client = start(watched, python_plugin(tmp_path / "meeting.py", mode, wait))
    with futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: client.transform({}, timeout=30), range(2)))
    assert [answer["met"] for answer in answers] == [met, met]
