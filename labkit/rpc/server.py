"""The plugin side of go-plugin's gRPC protocol: serve a transformer written in Python.

:func:`serve` turns a function ``transform(headers) -> headers`` into a plugin that any
go-plugin host can start, a Go host built with hashicorp/go-plugin as well as
:class:`labkit.rpc.PluginClient`. It does what go-plugin's ``plugin.Serve`` does:

- refuses to run without the magic cookie (message on stderr, exit status 1);
- negotiates the app protocol version from ``PLUGIN_PROTOCOL_VERSIONS``;
- listens on a Unix socket in a private folder (mode 0700) inside
  ``PLUGIN_UNIX_SOCKET_DIR`` (else the temporary folder);
- prints and flushes the handshake line before anything else on stdout;
- serves gRPC health (``plugin`` is SERVING), ``GRPCController/Shutdown``,
  ``GRPCStdio/StreamStdio``, ``GRPCBroker/StartStream`` and the transformer;
- on a plain socket, serves them with :mod:`~labkit.rpc.wire`, gRPC over HTTP/2 written by
  hand on one thread: a call costs about a quarter of grpcio's server's CPU, and the plugin
  starts without importing grpcio. Transforms are then served one at a time, in the order
  they arrive (a Python transform holds the GIL anyway, unless it waits on I/O); with
  ``concurrent=True``, or with AutoMTLS, grpcio's threaded server serves instead;
- from then on, ``print`` and ``sys.stderr`` writes travel to the host over StreamStdio,
  while logs (hclog JSON) and crash reports go to the real stderr;
- ignores SIGINT (the host decides when the plugin ends) and exits cleanly on Shutdown,
  or when its host process is gone;
- serves mutual TLS when the host asks for go-plugin's AutoMTLS (``PLUGIN_CLIENT_CERT``) with
  a certificate grpcio can use (:mod:`~labkit.rpc.mtls`: a labkit host's, not a Go host's);
- answers the host's broker stream: a ``transform`` that takes a second argument gets a
  :class:`Call`, whose ``counter`` reaches the host's counter when the request offers one.

With ``debug=True`` it serves as go-plugin's test mode does (Terraform's providers under a
debugger): no cookie is needed, it prints its reattach information as one line of JSON
(:class:`~labkit.rpc.protocol.Reattach`) instead of the handshake, keeps its own stdout, and
serves until Shutdown, SIGINT or SIGTERM, whoever attaches.
"""

from __future__ import annotations

import faulthandler
import io
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .broker import Broker, HostCounter
from .hclog import Logger
from .protocol import (
    CORE_PROTOCOL_VERSION,
    ENV_CLIENT_CERT,
    ENV_SOCKET_DIR,
    ENV_VERSIONS,
    HEALTH_SERVICE,
    LAB_HANDSHAKE,
    LANG_HEADER,
    MAX_SOCKET_PATH,
    TRANSFORM_SERVICE,
    Handshake,
    HandshakeLine,
    Reattach,
    negotiate,
)

if TYPE_CHECKING:
    import grpc

    from .mtls import MutualTLS

Transform = Callable[..., Mapping[str, str]]

_STDIO_LIMIT = 8 << 20  # bytes of stdout/stderr held for a host that is not reading
_PARENT_POLL = 0.5


def serve(
    transform: Transform,
    *,
    handshake: Handshake = LAB_HANDSHAKE,
    name: str | None = None,
    lang: str | None = "python",
    debug: bool = False,
    concurrent: bool = False,
) -> None:
    """Serve ``transform`` as a go-plugin gRPC plugin until the host shuts it down.

    ``transform`` receives the request's headers (and, if it takes a second argument, the
    :class:`Call`) and returns the response's; when ``lang`` is set, :data:`LANG_HEADER` is
    set to it in every response. ``name`` names the plugin in its logs (default: the
    script's file name). ``debug``: serve for a host that attaches (see above).
    ``concurrent``: serve with grpcio's server, up to 8 calls at once (a transform that waits
    on I/O and a host that calls from several threads), at grpcio's cost per call. Returns when
    the host called Shutdown or went away; raises ``SystemExit(1)`` when the magic cookie
    is missing, as go-plugin does, or when the host asks for AutoMTLS with a certificate
    grpcio cannot use (a Go host's P-521).
    """
    label = name or Path(sys.argv[0] or "plugin").name
    if not debug and os.environ.get(handshake.cookie_key) != handshake.cookie_value:
        sys.stderr.write(
            f"{label} is a Plugin Lab plugin: a host starts it, it is not run by hand.\n"
            f"It found no {handshake.cookie_key}={handshake.cookie_value} in its environment.\n"
            "Start it from a host instead: labkit.rpc.PluginClient([...]) in Python, or the "
            "lab's Go host (plugins/go/goplugin/host).\n")
        sys.stderr.flush()
        raise SystemExit(1)
    tls = _automtls(label) if os.environ.get(ENV_CLIENT_CERT) and not debug else None
    real_stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8")
    faulthandler.enable(file=real_stderr)
    log = Logger(real_stderr, label)
    version, agreed, ignored = negotiate(os.environ.get(ENV_VERSIONS), handshake.versions)
    if ignored:
        log.warn("ignoring app protocol versions that are not numbers", entries=",".join(ignored))
    if not agreed:
        log.warn("no app protocol version in common with the host; serving the oldest",
                 version=version, host=os.environ.get(ENV_VERSIONS, ""))
    stop = threading.Event()
    if debug:
        for ending in (signal.SIGINT, signal.SIGTERM):
            signal.signal(ending, lambda *_: stop.set())
    else:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    folder, socket_path = _socket_place(label)
    stdio = _Stdio()
    broker = Broker(folder, tls)
    # plain socket: gRPC over HTTP/2 by hand (labkit.rpc.wire), one thread, no grpcio;
    # AutoMTLS or concurrent: grpcio's server (it does the TLS; it runs calls in threads)
    server: _WireServing | grpc.Server
    if tls is None and not concurrent:
        server = _WireServing(transform, lang, stdio, stop, log, broker)
    else:
        from concurrent import futures

        import grpc

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="rpc"))
        _add_services(server, transform, lang, stdio, stop, log, broker)
    try:
        if tls is None:
            server.add_insecure_port(f"unix:{socket_path}")
        else:
            assert not isinstance(server, _WireServing)
            server.add_secure_port(f"unix:{socket_path}", tls.server_credentials())
        server.start()
        line = HandshakeLine(CORE_PROTOCOL_VERSION, version, "unix", str(socket_path), "grpc",
                             tls.own.line_field() if tls is not None else "")
        log.debug("plugin address", network="unix", address=socket_path)
        if debug:
            reattach = Reattach.from_line(line, os.getpid(), test=True)
            os.write(1, f"{reattach.to_json()}\n".encode())
        else:
            # first the writers, then the line: the host may call at once, and the server's
            # thread must not print to the pipe the handshake used (seen under load)
            sys.stdout = stdio.writer(1)
            sys.stderr = stdio.writer(2)
            os.write(1, f"{line}\n".encode())
        log.info("serving", version=version, pid=os.getpid())
        if not debug:
            _watch_parent(stop, log)
        while not stop.wait(0.5 if debug else None):
            pass  # in debug mode, wake now and then so that a signal's handler runs
        log.info("shutting down")
        stdio.close()  # ends StreamStdio, so the graceful stop need not wait for it
        broker.close()
        server.stop(grace=1).wait()
    finally:
        stdio.close()
        broker.close()
        shutil.rmtree(folder, ignore_errors=True)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _automtls(label: str) -> MutualTLS:
    """The host asked for AutoMTLS: a fresh identity that trusts the host's certificate;
    ``SystemExit(1)`` with an hclog error record (a go-plugin host shows it at its level)
    when grpcio cannot use that certificate (a Go host's, on P-521)."""
    from .mtls import Identity, MutualTLS, curve, unusable

    host = os.environ[ENV_CLIENT_CERT].encode()
    try:
        problem = unusable(host)
    except InputError as exc:
        problem = f"its {ENV_CLIENT_CERT} is {exc.what}"
    if problem:
        Logger(sys.stderr, label).error(
            f"the host asked for go-plugin's AutoMTLS ({ENV_CLIENT_CERT} is set), and this "
            f"labkit plugin cannot serve TLS to it: {problem}. Fix: start it from a host "
            "without AutoMTLS, or from labkit's host with automtls=True")
        sys.stderr.flush()
        raise SystemExit(1)
    return MutualTLS(Identity.generate(curve(host)), host)


def _socket_place(label: str) -> tuple[Path, Path]:
    base = os.environ.get(ENV_SOCKET_DIR) or tempfile.gettempdir()
    folder = Path(tempfile.mkdtemp(prefix="plugin-", dir=base))  # mkdtemp: mode 0700
    path = folder / "plugin.sock"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        shutil.rmtree(folder, ignore_errors=True)
        sys.stderr.write(
            f"{label}: the socket path {str(path)!r} is {len(os.fsencode(path))} bytes; a Unix "
            f"socket allows {MAX_SOCKET_PATH}. Fix: set {ENV_SOCKET_DIR} to a shorter folder.\n")
        raise SystemExit(1)
    return folder, path


def _watch_parent(stop: threading.Event, log: Logger) -> None:
    """Stop when the host process is gone (a killed kernel never calls Shutdown)."""
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(_PARENT_POLL):
            if os.getppid() != parent:
                log.warn("the host process is gone; exiting", host_pid=parent)
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _takes_two(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a second positional argument (the :class:`Call`)."""
    code = getattr(function, "__code__", None)
    if code is not None and not hasattr(function, "__self__") and not code.co_kwonlyargcount:
        return code.co_argcount >= 2 or bool(code.co_flags & 0x04)  # 0x04: *args
    import inspect  # bound methods, callables, partials: ~5 ms of import, so only for them

    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin such as dict: one argument
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


class Call:
    """What a plugin's ``transform`` may reach besides the headers: the host's counter,
    when the request offers one through the broker (``None`` otherwise)."""

    def __init__(self, counter: HostCounter | None) -> None:
        self.counter = counter


class _PluginBug(Exception):  # noqa: N818 - the plugin's exception, as its status says it
    """``transform`` raised: ``str()`` is what the host is told (the exception's type and
    words), and the plugin's log has it already."""


def _runner(transform: Transform, lang: str | None, log: Logger,
            broker: Broker) -> Callable[[dict[str, str], int], dict[str, str]]:
    """``run(headers, host_service)``: ``transform``'s answer with :data:`LANG_HEADER` set,
    given the :class:`Call` when it takes one; :class:`_PluginBug` when it raises. Both
    servers' Transform."""
    wants_call = _takes_two(transform)

    def run(headers: dict[str, str], service: int) -> dict[str, str]:
        try:
            if wants_call:
                counter = HostCounter(broker.dial(service)) if service else None
                out = dict(transform(headers, Call(counter)))
            else:
                out = dict(transform(headers))
        except Exception as exc:  # the plugin's bug travels back as a status, not a crash
            log.error("transform failed", error=f"{type(exc).__name__}: {exc}")
            raise _PluginBug(f"{type(exc).__name__}: {exc}") from None
        if lang:
            out[LANG_HEADER] = lang
        return out

    return run


def _add_services(
    server: grpc.Server, transform: Transform, lang: str | None, stdio: _Stdio,
    stop: threading.Event, log: Logger, broker: Broker,
) -> None:
    import grpc
    from google.protobuf import empty_pb2
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from .stubs import messages

    pb = messages("transformer")
    gp = messages("goplugin")
    status = health.HealthServicer()
    status.set(HEALTH_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    status.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(status, server)

    run = _runner(transform, lang, log, broker)

    def do_transform(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return pb.TransformResponse(headers=run(dict(request.headers), request.host_service))
        except _PluginBug as bug:
            context.abort(grpc.StatusCode.INTERNAL, str(bug))

    def shutdown(request: Any, context: grpc.ServicerContext) -> Any:
        log.info("the host asked for shutdown")
        stop.set()
        return gp.Empty()

    def stream_stdio(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if not stdio.claim():
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "StreamStdio is called once")
        for channel, data in stdio.chunks(context):
            yield gp.StdioData(channel=channel, data=data)

    def start_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        broker.restart()
        threading.Thread(target=broker.receive, args=(requests,), name="broker",
                         daemon=True).start()
        return broker.outgoing(context.is_active)

    handlers = {
        TRANSFORM_SERVICE: {"Transform": grpc.unary_unary_rpc_method_handler(
            do_transform, pb.TransformRequest.FromString, pb.TransformResponse.SerializeToString)},
        "plugin.GRPCController": {"Shutdown": grpc.unary_unary_rpc_method_handler(
            shutdown, gp.Empty.FromString, gp.Empty.SerializeToString)},
        "plugin.GRPCStdio": {"StreamStdio": grpc.unary_stream_rpc_method_handler(
            stream_stdio, empty_pb2.Empty.FromString, gp.StdioData.SerializeToString)},
        "plugin.GRPCBroker": {"StartStream": grpc.stream_stream_rpc_method_handler(
            start_stream, gp.ConnInfo.FromString, gp.ConnInfo.SerializeToString)},
    }
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(service, methods)
         for service, methods in handlers.items()])


class _WireServing:
    """The services of :func:`_add_services` on :class:`labkit.rpc.wire.H2Server`: the same
    answers, statuses and stdio/broker behaviour, with the lab's messages coded by hand."""

    def __init__(self, transform: Transform, lang: str | None, stdio: _Stdio,
                 stop: threading.Event, log: Logger, broker: Broker) -> None:
        from . import wire

        wants_call = _takes_two(transform)
        run = _runner(transform, lang, log, broker)

        def do_transform(message: bytes) -> bytes:
            try:
                return wire.encode_response(run(*wire.decode_request(message)))
            except _PluginBug as bug:
                raise wire.AbortError(13, str(bug)) from None  # INTERNAL

        def check(message: bytes) -> bytes:
            if wire.health_service(message) in (HEALTH_SERVICE, ""):
                return b"\x08\x01"  # HealthCheckResponse{status: SERVING}
            raise wire.AbortError(5, "unknown service")  # NOT_FOUND, as grpc_health answers

        def shutdown(message: bytes) -> bytes:
            log.info("the host asked for shutdown")
            stop.set()
            return b""

        def stream_stdio(call: wire.PushStream, request: bytes) -> None:
            """On the loop's thread, without a helper: what a handler on that thread prints
            goes out before its response does."""
            if not stdio.claim():
                call.finish(9, "StreamStdio is called once")  # FAILED_PRECONDITION
                return

            class Sent:  # the queue's space is freed once a chunk is on the socket
                def __init__(self, size: int) -> None:
                    self.size = size

                def set(self) -> None:
                    stdio.sent(self.size)

            def pump() -> None:
                if call.closed:
                    return
                items, ended = stdio.drain()
                for channel, data in items:
                    call.send(wire.encode_stdio(channel, data), Sent(len(data)))
                if ended:
                    call.finish()

            def end() -> None:
                stdio.on_put = None
                stdio.sent(0)  # wake writers that wait for space: nobody reads any more

            call.on_end = end
            stdio.no_wait = self._server.in_loop
            stdio.on_put = lambda: self._server.call_soon(pump)
            pump()

        def start_stream(incoming: Any, active: Callable[[], bool]) -> Iterator[bytes]:
            broker.restart()
            threading.Thread(target=broker.receive,
                             args=(map(wire.ConnInfo, iter(incoming.get, None)),),
                             name="broker", daemon=True).start()
            for info in broker.outgoing(active):
                yield info if isinstance(info, bytes) else info.SerializeToString()

        self._server = wire.H2Server(
            # a transform that takes the Call runs in a thread when the request names a host
            # service: reaching it needs the broker stream, which the loop's thread serves
            unary={f"/{TRANSFORM_SERVICE}/Transform": (
                       do_transform, wants_call and (lambda m: wire.decode_request(m)[1] != 0)),
                   "/grpc.health.v1.Health/Check": (check, False),
                   "/plugin.GRPCController/Shutdown": (shutdown, False)},
            sstreams={},
            bidi={"/plugin.GRPCBroker/StartStream": start_stream},
            push={"/plugin.GRPCStdio/StreamStdio": stream_stdio})
        self._thread = threading.Thread(target=self._server.serve, name="rpc", daemon=True)

    def add_insecure_port(self, address: str) -> None:
        self._server.listen(address.removeprefix("unix:"))

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float | None = None) -> threading.Event:
        self._server.stop(grace)
        self._thread.join(grace)
        done = threading.Event()
        done.set()
        return done


class _Stdio:
    """The plugin's stdout and stderr after the handshake, queued for StreamStdio.

    While a host streams, a writer waits when 8 MiB are queued (back-pressure, as go-plugin's
    pipe gives); with no host streaming, output beyond 8 MiB is dropped and counted.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._pending = 0
        self._space = threading.Condition()
        self._claimed = False
        self._closed = False
        self.dropped = 0
        # push mode (labkit.rpc.wire): called after each put, and whether this thread must
        # never wait for space (the loop's own thread: it is what frees the space)
        self.on_put: Callable[[], None] | None = None
        self.no_wait: Callable[[], bool] = lambda: False

    def writer(self, channel: int) -> io.TextIOWrapper:
        raw = io.BufferedWriter(_ChannelWriter(self, channel), buffer_size=1)
        return io.TextIOWrapper(raw, encoding="utf-8", line_buffering=True, write_through=True)

    def put(self, channel: int, data: bytes) -> None:
        with self._space:
            while (self._claimed and not self._closed and self._pending > _STDIO_LIMIT
                   and not self.no_wait()):
                self._space.wait(0.5)
            if self._closed or (self._pending > _STDIO_LIMIT and not self.no_wait()):
                self.dropped += len(data)
                return
            self._pending += len(data)
        self._queue.put((channel, data))
        pump = self.on_put
        if pump is not None:
            pump()

    def drain(self) -> tuple[list[tuple[int, bytes]], bool]:
        """Push mode: what is queued, merged by channel, and whether the end was reached."""
        items: list[tuple[int, bytes]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items, False
            if item is None:
                self._queue.put(None)
                return items, True
            if items and items[-1][0] == item[0] and len(items[-1][1]) < 65536:
                items[-1] = (item[0], items[-1][1] + item[1])
            else:
                items.append(item)

    def sent(self, size: int) -> None:
        with self._space:
            self._pending -= size
            self._space.notify_all()

    def claim(self) -> bool:
        with self._space:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def chunks(self, context: grpc.ServicerContext) -> Iterator[tuple[int, bytes]]:
        held: tuple[int, bytes] | None = None
        while context.is_active():
            if held is not None:
                item: tuple[int, bytes] | None = held
                held = None
            else:
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
            if item is None:
                return
            channel, data = item
            while len(data) < 65536:  # merge what is already queued on the same channel
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                if more[0] != channel:
                    held = more
                    break
                data += more[1]
            with self._space:
                self._pending -= len(data)
                self._space.notify_all()
            yield channel, data

    def close(self) -> None:
        with self._space:
            self._closed = True
            self._space.notify_all()
        self._queue.put(None)
        pump = self.on_put
        if pump is not None:
            pump()


class _ChannelWriter(io.RawIOBase):
    def __init__(self, stdio: _Stdio, channel: int) -> None:
        self._stdio = stdio
        self._channel = channel

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            self._stdio.put(self._channel, chunk)
        return len(chunk)
