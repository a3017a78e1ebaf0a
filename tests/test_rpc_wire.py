"""labkit.rpc.wire, gRPC over HTTP/2 written by hand, checked against the real thing: its
message codec against protobuf's, its server against grpcio's client, its client against
grpcio's server, and the plugin it serves one call at a time (``concurrent=True``: grpcio's
threaded server) against a host that calls from several threads."""

from __future__ import annotations

import os
import socket
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
BUGGY = "/test.Wire/Buggy"
STREAM = "/test.Wire/Stream"


def echo(message: bytes) -> bytes:
    return message[::-1]


def fail(message: bytes) -> bytes:
    raise wire.AbortError(9, message.decode())  # FAILED_PRECONDITION, the request as its details


def slow(message: bytes) -> bytes:
    time.sleep(1)
    return message


def buggy(message: bytes) -> bytes:
    raise ValueError(message.decode("utf-8", "surrogateescape"))  # not an AbortError


def two_then_bug(request: bytes, active: Callable[[], bool]) -> Iterator[bytes]:
    yield b"one"
    yield b"two"
    raise KeyError("a streaming method's bug")


@pytest.fixture
def wire_server() -> Iterator[str]:
    """An :class:`~labkit.rpc.wire.H2Server` on a Unix socket, in a thread: its address."""
    folder = Path(tempfile.mkdtemp(prefix="wire-"))
    server = wire.H2Server(unary={ECHO: (echo, False), FAIL: (fail, False), SLOW: (slow, False),
                                  BUGGY: (buggy, False)},
                           sstreams={STREAM: two_then_bug}, bidi={})
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


def still_serving(wire_server: str) -> bool:
    with grpc.insecure_channel(wire_server) as channel:
        return unary(channel, ECHO)(b"still here", timeout=20) == b"ereh llits"


@pytest.mark.parametrize("text", ["plain words", "lone \udce9 surrogate", "long " * 20_000])
def test_a_handler_that_raises_ends_its_call_with_internal_and_the_server_goes_on(
    wire_server: str, text: str,
) -> None:
    error = status_of(wire_server, BUGGY, text.encode("utf-8", "surrogateescape"))
    assert error.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
    details = error.details()  # type: ignore[attr-defined]
    assert details.startswith("ValueError: ")
    assert text[:10].encode("utf-8", "replace").decode() in details  # a lone surrogate: "?"
    assert len(details) <= wire.MAX_STATUS_MESSAGE + len("ValueError: ")  # one HEADERS frame
    assert still_serving(wire_server)


def test_a_streaming_method_that_raises_ends_with_unknown_after_its_messages(
    wire_server: str,
) -> None:
    got = []
    with grpc.insecure_channel(wire_server) as channel, pytest.raises(grpc.RpcError) as caught:
        for message in channel.unary_stream(STREAM)(b"", timeout=20):
            got.append(message)
    assert got == [b"one", b"two"]
    assert caught.value.code() == grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    assert "a streaming method's bug" in caught.value.details()  # type: ignore[attr-defined]


def test_headers_too_big_for_the_server_fail_that_call_only(wire_server: str) -> None:
    metadata = [("x-big", "x" * 70_000)]
    with pytest.raises(grpc.RpcError):
        status_of_call = grpc.insecure_channel(wire_server)
        try:
            unary(status_of_call, ECHO)(b"x", timeout=20, metadata=metadata)
        finally:
            status_of_call.close()
    assert still_serving(wire_server)


def test_a_request_without_a_message_gets_internal(wire_server: str) -> None:
    """HEADERS that end the stream, no DATA: answered at once, not left open."""
    from hpack import Decoder, Encoder

    path = wire_server.removeprefix("unix:")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.settimeout(10)
        block = Encoder().encode([(":method", "POST"), (":scheme", "http"), (":path", ECHO),
                                  (":authority", "x"), ("content-type", "application/grpc"),
                                  ("te", "trailers")])
        sock.sendall(wire.PREFACE + wire.frame(wire.SETTINGS, 0, 0)
                     + wire.frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 1, block))
        decoder, buf, fields = Decoder(), b"", {}
        while "grpc-status" not in fields:
            buf += sock.recv(65536)
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                length, kind = int.from_bytes(buf[:3], "big"), buf[3]
                payload, buf = buf[9:9 + length], buf[9 + length:]
                if kind == wire.HEADERS:
                    fields.update(decoder.decode(payload))
    assert fields["grpc-status"] == "13"
    assert "without a message" in fields["grpc-message"]


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


@pytest.mark.parametrize(("seconds", "sent"), [
    (0.0001, b"1m"), (1.5, b"1500m"), (99_999.999, b"99999999m"), (100_000, b"100000S"),
    (1e9, b"16666666M"), (1e11, b"27777777H"), (1e20, b"99999999H")])
def test_grpc_timeout_fits_in_eight_digits(seconds: float, sent: bytes) -> None:
    assert wire.grpc_timeout(seconds) == sent


def test_a_long_timeout_reaches_grpcio_as_a_valid_deadline(grpcio_server: str) -> None:
    connection = wire.UnaryConnection(grpcio_server)
    try:
        assert connection.call(ECHO.encode(), b"abc", 100_000) == b"cba"
    finally:
        connection.close()


def test_the_client_answers_pings_that_came_while_idle_and_sees_a_server_go() -> None:
    """A server pings an idle connection (grpc-go's keepalive closes it after two hours
    without an ACK); the next call takes the PING first and goes through. A server that
    said GOAWAY and closed: the next call finds out before it sends anything."""
    folder = Path(tempfile.mkdtemp(prefix="wire-"))
    options = [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_permit_without_calls", 1),
               ("grpc.http2.max_pings_without_data", 0)]
    methods = {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, _: echo(request))}
    server = grpc.server(futures.ThreadPoolExecutor(2), options=options,
                         handlers=[grpc.method_handlers_generic_handler("test.Wire", methods)])
    server.add_insecure_port(f"unix:{folder / 's'}")
    server.start()
    connection = wire.UnaryConnection(str(folder / "s"))
    try:
        assert connection.call(ECHO.encode(), b"ab", 10) == b"ba"
        time.sleep(1)  # pinged meanwhile
        pending = connection.sock.recv(65536, socket.MSG_PEEK)
        assert pending[3] == wire.PING and not pending[4] & wire.ACK
        assert connection.call(ECHO.encode(), b"cd", 10) == b"dc"
        server.stop(None).wait()
        time.sleep(0.2)
        with pytest.raises(wire.StaleConnectionError):
            connection.call(ECHO.encode(), b"ef", 10)
    finally:
        connection.close()
        server.stop(None).wait()
        (folder / "s").unlink(missing_ok=True)
        folder.rmdir()


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
