"""gRPC over HTTP/2 by hand: :func:`labkit.rpc.serve`'s server when the socket is plain (no
AutoMTLS, not ``concurrent``), and :class:`UnaryConnection`, the connection on which
:class:`labkit.rpc.PluginClient` sends Transform.

Why: grpcio's sync server hands every call between its poller thread and a pool thread, and
its C-core transport runs on threads of its own. Measured on the lab's 2-core machine, a
Transform cost a Python plugin 300 to 360 us of CPU on grpcio's server and 63 to 93 us on
this one: one Python thread on a selectors loop, which imports neither grpcio nor protobuf
(the plugin starts without them). The host's side is the same story: Transform over
:class:`UnaryConnection` cost the host about 50 us of CPU, against about 230 us through
grpcio's channel.

What the server speaks: HTTP/2 as gRPC peers use it (RFC 9113): the preface; SETTINGS (it
announces a 2^31-1 initial window and a 64 KiB header list, and ACKs the peer's); PING
(answered); HEADERS and CONTINUATION (HPACK decoded by the ``hpack`` package, responses
encoded by hand without indexing); DATA, split to the peer's windows and frame size; the
connection's WINDOW_UPDATE (streams get no WINDOW_UPDATE, so one stream receives at most
2 GiB); RST_STREAM and GOAWAY from the peer. It sends GOAWAY only when it drops a
connection whose frames it cannot take. A request message over 4 MiB or compressed is
refused with a status before it is read. Unary methods run on the loop's thread, or in a
thread of their own when they may block on the loop (a transform that calls its host back
through the broker); a handler that raises ends its call with a status, never the loop.
Streaming methods run their generator in a helper thread that posts each message to the
loop and waits until it is queued.

Not there: TLS (AutoMTLS keeps grpcio's server), compression, server-side deadlines
(``grpc-timeout`` is ignored: a transform runs to its end), priorities, and more than one
call at a time on the loop's thread: a slow transform delays the calls behind it.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import queue
import selectors
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hpack import Decoder


class HeaderDecoder:
    """HPACK decoding (the ``hpack`` package) with a cache: a peer that repeats a request
    sends the same header block bytes each time once its fields are in the dynamic table,
    and a block that leaves the table as it was decodes to the same fields while the table
    stays so. ~1/3 of the server's Python time per call without it."""

    def __init__(self) -> None:
        self._decoder = Decoder()
        self._table = self._decoder.header_table
        self._cache: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        found = self._cache.get(block)
        if found is not None:
            return found
        table = self._table
        entries = table.dynamic_entries
        before = (entries[0] if entries else None, len(entries), table._current_size,
                  table.maxsize)
        headers = [(bytes(n), bytes(v)) for n, v in self._decoder.decode(block, raw=True)]
        after = (entries[0] if entries else None, len(entries), table._current_size,
                 table.maxsize)
        if before[1:] == after[1:] and before[0] is after[0]:  # the table did not change
            if len(self._cache) < 256:
                self._cache[block] = headers
        else:  # entries moved: cached indices may mean other fields now
            self._cache.clear()
        return headers


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
BIG_WINDOW = (1 << 31) - 1
_HDR = struct.Struct(">I")  # 4-byte fields: stream ids, window increments, lengths


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return bytes((n >> 16, (n >> 8) & 0xFF, n & 0xFF, kind, flags)) + _HDR.pack(stream) + payload


def fragment(kind: int, flags: int, payload: bytes) -> bytes:
    """A DATA or HEADERS frame's payload without its padding and priority fields."""
    if flags & PADDED:
        payload = payload[1:len(payload) - payload[0]]
    if kind == HEADERS and flags & PRIO:
        payload = payload[5:]
    return payload


def settings(payload: bytes) -> Iterator[tuple[int, int]]:
    """A SETTINGS frame's (identifier, value) pairs."""
    for i in range(0, len(payload) - 5, 6):
        yield struct.unpack_from(">HI", payload, i)


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:  # literal without indexing, new name
    return b"\x00" + _hpack_int(len(name), 7, 0) + name + _hpack_int(len(value), 7, 0) + value


# :status 200 (static 8), content-type (static 31) application/grpc, literal w/o indexing
RESPONSE_HEADERS = b"\x88\x0f\x10" + _hpack_int(16, 7, 0) + b"application/grpc"
TRAILERS_OK = _literal(b"grpc-status", b"0")


#: The longest grpc-message sent, in characters: the trailers must fit in one HEADERS frame
#: of the size every peer accepts (16 KiB), and percent-encoding can triple a character.
MAX_STATUS_MESSAGE = 4000


def trailers(code: int, message: str = "") -> bytes:
    block = _literal(b"grpc-status", str(code).encode())
    if message:
        if len(message) > MAX_STATUS_MESSAGE:
            message = message[:MAX_STATUS_MESSAGE - 1] + "…"
        quoted = "".join(c if 0x20 <= ord(c) < 0x7F and c != "%" else
                         "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace"))
                         for c in message)
        block += _literal(b"grpc-message", quoted.encode())
    return block


class AbortError(Exception):
    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


#: grpcio's default limit on a received message (``grpc.max_receive_message_length``)
MAX_MESSAGE = 4 * 1024 * 1024


def _refusal(flag: int, length: int) -> tuple[int, str] | None:
    """The status a message gets before it is read, from its 5-byte prefix: ``None`` for
    an uncompressed message within :data:`MAX_MESSAGE`."""
    if flag:  # this server announces no grpc-accept-encoding, so nobody should compress
        return 12, "this plugin does not accept compressed messages"  # UNIMPLEMENTED
    if length > MAX_MESSAGE:
        return 8, f"Received message larger than max ({length} vs. {MAX_MESSAGE})"
    return None


class _Stream:
    __slots__ = (
        "block",
        "buf",
        "closed",
        "ended",
        "handler",
        "headers_sent",
        "incoming",
        "kind",
        "pending",
        "push",
        "sid",
        "started",
        "window",
    )

    def __init__(self, sid: int, window: int) -> None:
        self.sid = sid
        self.kind = ""
        self.handler: Any = None
        self.buf = bytearray()
        self.headers_sent = False
        self.closed = False  # reset or finished: nothing more is sent
        self.incoming: queue.Queue[bytes | None] | None = None
        self.pending: collections.deque[tuple[bytes, Any]] = collections.deque()
        self.window = window
        self.block = bytearray()
        self.ended = False  # the client half-closed
        self.push: PushStream | None = None
        self.started = False  # its request message arrived (unary and server-streaming)


class _Conn:
    def __init__(self, server: H2Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()
        self.preface = False
        self.decoder = HeaderDecoder()
        self.streams: dict[int, _Stream] = {}
        self.send_window = 65535
        self.peer_initial = 65535
        self.peer_max_frame = 16384
        self.recv_unacked = 0
        self.closed = False
        self.want_write = False
        # SETTINGS_INITIAL_WINDOW_SIZE, and SETTINGS_MAX_HEADER_LIST_SIZE as hpack's decoder
        self.out += frame(SETTINGS, 0, 0, struct.pack(">HIHI", 4, BIG_WINDOW, 6, 65536))
        self.out += frame(WINDOW_UPDATE, 0, 0, _HDR.pack(BIG_WINDOW - 65535))

    # -- input -----------------------------------------------------------------------------

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        buf = self.inbuf
        buf += data
        pos = 0
        if not self.preface:
            if len(buf) < 24:
                return
            if buf[:24] != PREFACE:
                self.close()
                return
            self.preface = True
            pos = 24
        n = len(buf)
        while n - pos >= 9:
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            end = pos + 9 + length
            if end > n:
                break
            kind = buf[pos + 3]
            flags = buf[pos + 4]
            sid = _HDR.unpack_from(buf, pos + 5)[0] & 0x7FFFFFFF
            self.on_frame(kind, flags, sid, bytes(buf[pos + 9:end]))
            pos = end
            if self.closed:
                return
        del buf[:pos]
        self.flush()

    def on_frame(self, kind: int, flags: int, sid: int, payload: bytes) -> None:
        if kind == DATA:
            self.recv_unacked += len(payload)  # padding included (RFC 9113, 6.9.1)
            payload = fragment(kind, flags, payload)
            if self.recv_unacked > (1 << 30):
                self.out += frame(WINDOW_UPDATE, 0, 0, _HDR.pack(self.recv_unacked))
                self.recv_unacked = 0
            stream = self.streams.get(sid)
            if stream is not None:
                stream.buf += payload
                self.on_messages(stream)
                if flags & END_STREAM:
                    self.on_half_close(stream)
        elif kind == HEADERS:
            payload = fragment(kind, flags, payload)
            stream = self.streams.get(sid)
            if stream is None:
                stream = _Stream(sid, self.peer_initial)
                self.streams[sid] = stream
            stream.block += payload
            if flags & END_STREAM:
                stream.ended = True
            if flags & END_HEADERS:
                self.on_headers(stream)
        elif kind == CONTINUATION:
            stream = self.streams.get(sid)
            if stream is not None:
                stream.block += payload
                if flags & END_HEADERS:
                    self.on_headers(stream)
        elif kind == SETTINGS:
            if flags & ACK:
                return
            for key, value in settings(payload):
                if key == 4:
                    delta = value - self.peer_initial
                    self.peer_initial = value
                    for s in self.streams.values():
                        s.window += delta
                elif key == 5:
                    self.peer_max_frame = value
            self.out += frame(SETTINGS, ACK, 0)
            self.send_pending()
        elif kind == PING:
            if not flags & ACK:
                self.out += frame(PING, ACK, 0, payload)
        elif kind == WINDOW_UPDATE:
            inc = _HDR.unpack_from(payload)[0] & 0x7FFFFFFF
            if sid == 0:
                self.send_window += inc
            else:
                stream = self.streams.get(sid)
                if stream is not None:
                    stream.window += inc
            self.send_pending()
        elif kind == RST_STREAM:
            stream = self.streams.pop(sid, None)
            if stream is not None:
                stream.closed = True
                if stream.incoming is not None:
                    stream.incoming.put(None)
                for _data, done in stream.pending:  # a helper waits for these: free it
                    if done is not None and not isinstance(done, tuple):
                        done.set()
                stream.pending.clear()
                self.server._stream_gone(stream)
        elif kind == GOAWAY:
            pass  # the client closes the connection when it is done
        # PRIORITY, PUSH_PROMISE, unknown: ignored

    def on_headers(self, stream: _Stream) -> None:
        block = bytes(stream.block)
        stream.block = bytearray()
        headers = self.decoder.decode(block)
        if stream.kind:  # trailers from the client: nothing to do but the end
            if stream.ended:
                self.on_half_close(stream)
            return
        path = b""
        for name, value in headers:
            if name == b":path":
                path = value
                break
        server = self.server
        found = server.unary.get(path)
        if found is not None:
            stream.kind = "unary"
            stream.handler = found
        elif path in server.sstreams:
            stream.kind = "sstream"
            stream.handler = server.sstreams[path]
        elif path in server.push:
            stream.kind = "push"
            stream.handler = server.push[path]
        elif path in server.bidi:
            stream.kind = "bidi"
            stream.handler = server.bidi[path]
            stream.incoming = queue.Queue()
            server.start_stream(self, stream, stream.incoming)
        else:
            stream.kind = "none"
            self.finish(stream, 12, f"unknown method {path.decode(errors='replace')}")
        if stream.ended:
            self.on_half_close(stream)

    def on_messages(self, stream: _Stream) -> None:
        buf = stream.buf
        while len(buf) >= 5:
            length = _HDR.unpack_from(buf, 1)[0]
            refused = _refusal(buf[0], length)
            if refused is not None:  # answered at once, before the message is all here
                buf.clear()
                if stream.incoming is not None:
                    stream.incoming.put(None)
                stream.kind = "none"
                self.finish(stream, *refused)
                return
            if len(buf) < 5 + length:
                return
            message = bytes(buf[5:5 + length])
            del buf[:5 + length]
            kind = stream.kind
            if kind != "bidi":
                if stream.started:  # one request message only: a second is ignored
                    continue
                stream.started = True
            if kind == "unary":
                fn, blocking = stream.handler
                if blocking is True or (blocking and blocking(message)):
                    self.server.run_blocking(self, stream, fn, message)
                else:
                    self.answer(stream, fn, message)
            elif kind == "sstream":
                self.server.start_stream(self, stream, message)
            elif kind == "push":
                self.server._start_push(self, stream, message)
            elif kind == "bidi":
                stream.incoming.put(message)  # type: ignore[union-attr]

    def on_half_close(self, stream: _Stream) -> None:
        stream.ended = True
        if stream.incoming is not None:
            stream.incoming.put(None)
        elif stream.kind in ("unary", "sstream", "push") and not stream.started:
            self.finish(stream, 13, "the request ended without a message")  # INTERNAL

    # -- output ----------------------------------------------------------------------------

    def answer(self, stream: _Stream, fn: Callable[[bytes], bytes], message: bytes) -> None:
        if stream.closed or self.closed:  # reset by the client meanwhile: nothing to send
            return
        try:
            response = fn(message)
        except AbortError as abort:
            self.finish(stream, abort.code, abort.details)
            return
        except Exception as exc:  # a handler's bug ends its call, not the server
            self.finish(stream, 13, f"{type(exc).__name__}: {exc}")  # INTERNAL
            return
        sid = stream.sid
        body = b"\x00" + _HDR.pack(len(response)) + response
        if len(body) <= stream.window and len(body) <= self.send_window \
                and len(body) <= self.peer_max_frame:
            stream.window -= len(body)
            self.send_window -= len(body)
            self.out += (frame(HEADERS, END_HEADERS, sid, RESPONSE_HEADERS)
                         + frame(DATA, 0, sid, body)
                         + frame(HEADERS, END_HEADERS | END_STREAM, sid, TRAILERS_OK))
            stream.closed = True
            self.streams.pop(sid, None)
        else:
            self.send_message(stream, response, None)
            self.finish(stream, 0, "")

    def send_message(self, stream: _Stream, message: bytes, done: Any) -> None:
        if stream.closed:
            if done is not None:
                done.set()
            return
        if not stream.headers_sent:
            stream.headers_sent = True
            self.out += frame(HEADERS, END_HEADERS, stream.sid, RESPONSE_HEADERS)
        stream.pending.append((b"\x00" + _HDR.pack(len(message)) + message, done))
        self.send_pending()

    def finish(self, stream: _Stream, code: int, details: str) -> None:
        if stream.closed:
            return
        block = trailers(code, details)
        if not stream.headers_sent:  # trailers-only
            block = RESPONSE_HEADERS + block
            stream.headers_sent = True
        stream.pending.append((b"", ("trailers", block)))
        self.send_pending()

    def send_pending(self) -> None:
        for stream in list(self.streams.values()):
            pending = stream.pending
            while pending:
                data, done = pending[0]
                if isinstance(done, tuple):  # trailers
                    self.out += frame(HEADERS, END_HEADERS | END_STREAM, stream.sid, done[1])
                    pending.popleft()
                    stream.closed = True
                    self.streams.pop(stream.sid, None)
                    self.server._stream_gone(stream)
                    break
                room = min(stream.window, self.send_window, self.peer_max_frame)
                if room <= 0 and data:
                    break
                chunk, rest = data[:room], data[room:]
                self.out += frame(DATA, 0, stream.sid, chunk)
                stream.window -= len(chunk)
                self.send_window -= len(chunk)
                if rest:
                    pending[0] = (rest, done)
                    continue
                pending.popleft()
                if done is not None:
                    done.set()
        self.flush()

    def flush(self) -> None:
        if not self.out or self.closed:
            return
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        del self.out[:sent]
        want = bool(self.out)
        if want != self.want_write:
            self.want_write = want
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self.server.sel.modify(self.sock, events, self)

    def fail(self, exc: Exception) -> None:
        """A connection error (RFC 9113, 5.4.1): GOAWAY with the reason, then close."""
        if self.closed:
            return
        code = 9 if type(exc).__module__.startswith("hpack") else 2  # COMPRESSION/INTERNAL
        last = max(self.streams, default=0)
        reason = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:1000]
        self.out += frame(GOAWAY, 0, 0, _HDR.pack(last) + _HDR.pack(code) + reason)
        with contextlib.suppress(OSError):
            self.sock.send(self.out)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in self.streams.values():
            stream.closed = True
            if stream.incoming is not None:
                stream.incoming.put(None)
            for _data, done in stream.pending:
                if done is not None and not isinstance(done, tuple):
                    done.set()
            self.server._stream_gone(stream)
        self.streams.clear()
        with contextlib.suppress(KeyError, ValueError):
            self.server.sel.unregister(self.sock)
        self.sock.close()


class PushStream:
    """A server-streaming call driven from the loop's thread (no helper thread): its
    handler gets it with the request and calls :meth:`send` and :meth:`finish` on the loop's
    thread (:meth:`H2Server.call_soon` from elsewhere); ``on_end`` is called there when the
    call ends, however it ends."""

    def __init__(self, server: H2Server, conn: _Conn, stream: _Stream) -> None:
        self._server = server
        self._conn = conn
        self._stream = stream
        self.ended = False
        self.on_end: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self._stream.closed or self._conn.closed

    def send(self, message: bytes, done: Any = None) -> None:
        """Queue one message; ``done.set()`` once it is handed to the socket."""
        self._conn.send_message(self._stream, message, done)

    def finish(self, code: int = 0, details: str = "") -> None:
        self._conn.finish(self._stream, code, details)


class H2Server:
    """unary: {path: (fn(bytes) -> bytes, blocking)}; sstreams: {path: fn(req bytes, active)
    -> iterator of bytes}; bidi: {path: fn(iterator of bytes, active) -> iterator of bytes}."""

    def __init__(self, unary: dict[str, tuple[Callable[[bytes], bytes], Any]],
                 sstreams: dict[str, Callable[..., Iterator[bytes]]],
                 bidi: dict[str, Callable[..., Iterator[bytes]]],
                 push: dict[str, Callable[[PushStream, bytes], None]] | None = None) -> None:
        self.push = {k.encode(): v for k, v in (push or {}).items()}
        self._loop_thread = 0
        self.unary = {k.encode(): v for k, v in unary.items()}
        self.sstreams = {k.encode(): v for k, v in sstreams.items()}
        self.bidi = {k.encode(): v for k, v in bidi.items()}
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._posted: collections.deque[tuple[Callable[[], None], _Conn | None]] = \
            collections.deque()
        self._stopping = False
        self._listener: socket.socket | None = None
        self._pool: Any = None  # threads for unary calls that may block on the loop
        self._streaming = 0  # helper threads running a streaming method
        self._streams_done = threading.Condition()

    def listen(self, path: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(16)
        sock.setblocking(False)
        self._listener = sock
        self.sel.register(sock, selectors.EVENT_READ, "accept")
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    def post(self, fn: Callable[[], None], conn: _Conn | None = None) -> None:
        """Run fn on the loop's thread (from any thread); if it raises, ``conn`` fails."""
        self._posted.append((fn, conn))
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def stop(self, grace: float | None = None) -> None:
        """End the loop; with ``grace``, first wait up to that many seconds for the streaming
        methods to end (their last messages and status are sent). Not from the loop's
        thread when ``grace`` is given."""
        if grace:
            with self._streams_done:
                self._streams_done.wait_for(lambda: self._streaming == 0, grace)
        self._stopping = True
        self.post(lambda: None)

    def in_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run fn on the loop's thread: now if this is it, else as soon as it wakes."""
        if self.in_loop():
            fn()
        else:
            self.post(fn)

    def serve(self) -> None:
        self._loop_thread = threading.get_ident()
        select = self.sel.select
        while not self._stopping:
            for key, mask in select():
                data = key.data
                if data == "accept":
                    try:
                        conn_sock, _ = self._listener.accept()  # type: ignore[union-attr]
                    except BlockingIOError:
                        continue
                    conn_sock.setblocking(False)
                    conn = _Conn(self, conn_sock)
                    self.sel.register(conn_sock, selectors.EVENT_READ, conn)
                    conn.flush()
                elif data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    while self._posted:
                        self._run_posted()
                else:
                    try:
                        if mask & selectors.EVENT_READ:
                            data.on_readable()
                        if mask & selectors.EVENT_WRITE and not data.closed:
                            data.flush()
                    except Exception as exc:  # frames it cannot take (HPACK): drop the peer
                        data.fail(exc)
        while self._posted:  # what the streams posted last (their final messages, status)
            self._run_posted()
        for key in list(self.sel.get_map().values()):
            if isinstance(key.data, _Conn):
                conn = key.data
                if conn.out and not conn.closed:
                    try:  # what is still queued goes out, blocking for at most a second
                        conn.sock.settimeout(1.0)
                        conn.sock.sendall(conn.out)
                    except OSError:
                        pass
                    conn.out.clear()
                conn.close()
        if self._listener is not None:
            self._listener.close()

    # -- helpers for streams and blocking handlers --------------------------------------------

    def _run_posted(self) -> None:
        posted, conn = self._posted.popleft()
        try:
            posted()
        except Exception as exc:  # a bug in one connection's step ends that connection
            if conn is not None:
                conn.fail(exc)
            else:  # the loop goes on; the bug shows on the real stderr
                traceback.print_exc(file=sys.__stderr__)

    def run_blocking(self, conn: _Conn, stream: _Stream, fn: Callable[[bytes], bytes],
                     message: bytes) -> None:
        def work() -> None:
            try:
                response: Any = fn(message)
            except AbortError as abort:
                response = abort
            except Exception as exc:  # a handler's bug ends its call, not the server
                response = AbortError(13, f"{type(exc).__name__}: {exc}")
            self.post(lambda: _deliver(conn, stream, response), conn)

        if self._pool is None:
            from concurrent import futures
            self._pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="blocking")
        self._pool.submit(work)

    def start_stream(self, conn: _Conn, stream: _Stream, request: Any) -> None:
        def active() -> bool:
            return not stream.closed and not conn.closed and not self._stopping

        def work() -> None:
            code, details = 0, ""
            try:
                for message in stream.handler(request, active):
                    done = threading.Event()
                    self.post(functools.partial(conn.send_message, stream, message, done), conn)
                    done.wait()
                    if not active():
                        return
            except AbortError as abort:
                code, details = abort.code, abort.details
            except Exception as exc:  # a handler's bug ends its stream with UNKNOWN, not OK
                code, details = 2, f"{type(exc).__name__}: {exc}"
            finally:
                self.post(lambda: conn.finish(stream, code, details), conn)
                with self._streams_done:
                    self._streaming -= 1
                    self._streams_done.notify_all()

        with self._streams_done:
            self._streaming += 1

        threading.Thread(target=work, daemon=True, name=f"stream-{stream.sid}").start()

    def _start_push(self, conn: _Conn, stream: _Stream, request: bytes) -> None:
        stream.push = PushStream(self, conn, stream)
        with self._streams_done:
            self._streaming += 1
        stream.handler(stream.push, request)

    def _stream_gone(self, stream: _Stream) -> None:
        push = stream.push
        if push is not None and not push.ended:
            push.ended = True
            with self._streams_done:
                self._streaming -= 1
                self._streams_done.notify_all()
            if push.on_end is not None:
                push.on_end()


def _deliver(conn: _Conn, stream: _Stream, response: Any) -> None:
    if isinstance(response, AbortError):
        conn.finish(stream, response.code, response.details)
    else:
        conn.answer(stream, lambda _m: response, b"")
    conn.flush()


# -- the lab's messages, by hand (proto3 wire format) ------------------------------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    b = data[i]
    if b < 0x80:
        return b, i + 1
    result, shift = b & 0x7F, 7
    i += 1
    while True:
        b = data[i]
        result |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return result, i
        shift += 7


def _uvarint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _skip(data: bytes, i: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, i)[1]
    if wire == 2:
        n, i = _varint(data, i)
        return i + n
    if wire == 5:
        return i + 4
    if wire == 1:
        return i + 8
    raise ValueError(f"unsupported wire type {wire}")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field; value: int or bytes."""
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield field, wire, value
        elif wire == 2:
            length, i = _varint(data, i)
            yield field, wire, data[i:i + length]
            i += length
        else:
            i = _skip(data, i, wire)


def decode_request(data: bytes) -> tuple[dict[str, str], int]:
    headers: dict[str, str] = {}
    service = 0
    for field, wire, value in _fields(data):
        if field == 1 and wire == 2:
            key = val = ""
            for f, w, v in _fields(value):
                if f == 1 and w == 2:
                    key = v.decode()
                elif f == 2 and w == 2:
                    val = v.decode()
            headers[key] = val
        elif field == 2 and wire == 0:
            service = value & 0xFFFFFFFF
    return headers, service


def encode_response(headers: Mapping[str, str]) -> bytes:
    parts = []
    for k, v in headers.items():
        kb, vb = k.encode(), v.encode()
        entry = b"\x0a" + _uvarint(len(kb)) + kb + b"\x12" + _uvarint(len(vb)) + vb
        parts.append(b"\x0a" + _uvarint(len(entry)) + entry)
    return b"".join(parts)




def health_service(data: bytes) -> str:
    for field, wire, value in _fields(data):
        if field == 1 and wire == 2:
            name: str = value.decode()
            return name
    return ""


def encode_stdio(channel: int, data: bytes) -> bytes:
    return b"\x08" + _uvarint(channel) + b"\x12" + _uvarint(len(data)) + data


def encode_conninfo(service_id: int, network: str, address: str) -> bytes:
    out = b""
    if service_id:
        out += b"\x08" + _uvarint(service_id)
    for tag, text in ((b"\x12", network), (b"\x1a", address)):
        if text:
            raw = text.encode()
            out += tag + _uvarint(len(raw)) + raw
    return out


def decode_conninfo(data: bytes) -> tuple[int, str, str, bool]:
    service_id, network, address, knock = 0, "", "", False
    for field, wire, value in _fields(data):
        if field == 1 and wire == 0:
            service_id = value
        elif field == 2 and wire == 2:
            network = value.decode()
        elif field == 3 and wire == 2:
            address = value.decode()
        elif field == 4 and wire == 2:
            knock = True
    return service_id, network, address, knock


class ConnInfo:
    """A received ``plugin.ConnInfo``, as :meth:`labkit.rpc.broker.Broker.receive` reads it."""

    __slots__ = ("_knock", "address", "network", "service_id")

    def __init__(self, data: bytes) -> None:
        self.service_id, self.network, self.address, self._knock = decode_conninfo(data)

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's name
        return name == "knock" and self._knock


# -- the host's side -------------------------------------------------------------------------

#: SETTINGS_MAX_FRAME_SIZE's initial value, which no peer may lower (RFC 9113, 6.5.2)
MIN_MAX_FRAME = 16384



class GrpcStatusError(Exception):
    """A call that ended with a status other than OK (``code``: gRPC's number)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"grpc-status {code}: {message}")
        self.code = code
        self.message = message


#: gRPC's status for a stream the server reset, by HTTP/2 error code (PROTOCOL-HTTP2.md):
#: REFUSED_STREAM is UNAVAILABLE, CANCEL is CANCELLED, the rest INTERNAL.
_RESET_STATUS = {7: 14, 8: 1}


def grpc_timeout(seconds: float) -> bytes:
    """``seconds`` as gRPC's ``grpc-timeout`` value: at most 8 digits, in the finest unit
    that fits (milliseconds, seconds, minutes, hours), at least 1."""
    for unit, per_second in (("m", 1000.0), ("S", 1.0), ("M", 1 / 60), ("H", 1 / 3600)):
        value = max(1, int(seconds * per_second))
        if value <= 99_999_999:
            return f"{value}{unit}".encode()
    return b"99999999H"


class StaleConnectionError(ConnectionError):
    """The peer closed an idle connection or said GOAWAY on it; nothing of the call was
    sent, so the caller may open another connection and call again."""


class UnaryConnection:
    """The host's side, for the hot call only: unary gRPC calls over a connection of its own,
    on the calling thread (no grpcio, no thread hop). One call at a time (a lock). Before
    each call it takes what the peer sent while it was idle (ACKs its keepalive PINGs).
    :class:`StaleConnectionError`: the peer closed the idle connection or said GOAWAY, and
    nothing was sent; other ``OSError``: the plugin went away, or ``TimeoutError``, no
    answer before the call's deadline (either leaves the connection unusable: open
    another); :class:`GrpcStatusError`: the plugin answered with an error status."""

    def __init__(self, unix_path: str, authority: bytes = b"localhost") -> None:
        self.address = unix_path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(unix_path)
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HIHI", 2, 0, 4, BIG_WINDOW))
                          + frame(WINDOW_UPDATE, 0, 0, _HDR.pack(BIG_WINDOW - 65535)))
        self.decoder = HeaderDecoder()
        self.next_id = 1
        self.lock = threading.Lock()
        self.buf = bytearray()
        self.authority = authority
        self.send_window = 65535  # the connection's, as the peer's WINDOW_UPDATEs say
        self.peer_initial = 65535  # each new stream's, as the peer's SETTINGS say
        self.recv_unacked = 0
        self.gone = False  # the peer said GOAWAY: no new call on this connection
        self._headers_cache: dict[bytes, bytes] = {}

    def _request_headers(self, path: bytes, timeout: float | None) -> bytes:
        fixed = self._headers_cache.get(path)
        if fixed is None:
            # :method POST (static 3), :scheme http (static 6), then literals w/o indexing
            fixed = b"\x83\x86" + b"".join(
                _literal(name, value) for name, value in (
                    (b":path", path), (b":authority", self.authority),
                    (b"content-type", b"application/grpc"), (b"te", b"trailers")))
            self._headers_cache[path] = fixed
        if timeout is not None:
            fixed += _literal(b"grpc-timeout", grpc_timeout(timeout))
        return fixed

    def call(self, path: bytes, message: bytes, timeout: float | None = None) -> bytes | None:
        """The response message; ``None`` at once, with nothing sent, when another thread's
        call is in flight or when the request does not fit in one DATA frame of the size
        every peer accepts and in the peer's flow-control windows as last heard (the caller
        then takes another way: grpcio's channel multiplexes, splits and waits)."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            self._drain()
            if 5 + len(message) > min(MIN_MAX_FRAME, self.send_window, self.peer_initial):
                return None
            return self._call(path, message, timeout)
        finally:
            self.lock.release()

    def _call(self, path: bytes, message: bytes, timeout: float | None) -> bytes:
        sid = self.next_id
        self.next_id += 2
        body = b"\x00" + _HDR.pack(len(message)) + message
        self.send_window -= len(body)
        self.sock.settimeout(timeout)
        self.sock.sendall(frame(HEADERS, END_HEADERS, sid, self._request_headers(path, timeout))
                          + frame(DATA, END_STREAM, sid, body))
        return self._await(sid, None if timeout is None else time.monotonic() + timeout)

    def _drain(self) -> None:
        """Take what the peer sent while the connection was idle (a keepalive PING that wants
        its ACK, SETTINGS, WINDOW_UPDATE); :class:`StaleConnectionError` when it closed the
        connection or said GOAWAY meanwhile, before anything of a call is sent."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                if not chunk:
                    raise StaleConnectionError("the plugin closed the connection while it was idle")
                self.buf += chunk
        except ConnectionError as exc:
            raise StaleConnectionError(str(exc)) from exc
        finally:
            self.sock.setblocking(True)
        out = bytearray()
        for kind, flags, fsid, payload in self._frames():
            if kind in (HEADERS, CONTINUATION, DATA) or not self._control(kind, flags, fsid,
                                                                         payload, out):
                self.gone = True  # not idle talk: start afresh rather than guess
        if out:
            self.sock.sendall(out)
        if self.gone:
            raise StaleConnectionError("the plugin ended the connection (GOAWAY)")

    def _frames(self) -> Iterator[tuple[int, int, int, bytes]]:
        """The complete frames in the buffer, taken out of it."""
        buf = self.buf
        while len(buf) >= 9:
            length = (buf[0] << 16) | (buf[1] << 8) | buf[2]
            if len(buf) < 9 + length:
                return
            kind, flags = buf[3], buf[4]
            fsid = _HDR.unpack_from(buf, 5)[0] & 0x7FFFFFFF
            payload = bytes(buf[9:9 + length])
            del buf[:9 + length]
            yield kind, flags, fsid, payload

    def _control(self, kind: int, flags: int, fsid: int, payload: bytes,
                 out: bytearray) -> bool:
        """A connection-level frame: applied, its answer added to ``out``. False for
        GOAWAY (the peer takes no new calls on this connection)."""
        if kind == SETTINGS and not flags & ACK:
            for key, value in settings(payload):
                if key == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                    self.peer_initial = value
            out += frame(SETTINGS, ACK, 0)
        elif kind == PING and not flags & ACK:
            out += frame(PING, ACK, 0, payload)
        elif kind == WINDOW_UPDATE and fsid == 0:
            self.send_window += _HDR.unpack_from(payload)[0] & 0x7FFFFFFF
        elif kind == GOAWAY:
            return False
        # a stream's WINDOW_UPDATE: each request is sent whole, within a new stream's
        # window, so nothing waits on it; PRIORITY and unknown frames are ignored
        return True

    def _await(self, sid: int, deadline: float | None) -> bytes:
        data = bytearray()
        block = bytearray()
        ended = False
        status: int | None = None
        grpc_message = ""
        out = bytearray()
        try:
            while True:
                for kind, flags, fsid, payload in self._frames():
                    if kind == DATA:
                        self.recv_unacked += len(payload)  # padding included
                        if fsid == sid:
                            data += fragment(kind, flags, payload)
                    elif kind in (HEADERS, CONTINUATION):
                        if kind == HEADERS:
                            payload = fragment(kind, flags, payload)
                            ended = fsid == sid and bool(flags & END_STREAM)
                        block += payload
                        if flags & END_HEADERS:
                            headers = self.decoder.decode(bytes(block))  # keeps the table
                            block = bytearray()
                            if fsid == sid:
                                for name, value in headers:
                                    if name == b"grpc-status":
                                        status = int(value)
                                    elif name == b"grpc-message":
                                        grpc_message = urllib.parse.unquote(value.decode())
                                if ended:  # frames after it stay in the buffer
                                    return self._result(status, grpc_message, data)
                    elif kind == RST_STREAM and fsid == sid:
                        code = _HDR.unpack_from(payload)[0] if len(payload) >= 4 else 2
                        raise GrpcStatusError(_RESET_STATUS.get(code, 13),
                                              f"the plugin reset the stream (HTTP/2 error "
                                              f"code {code})")
                    elif not self._control(kind, flags, fsid, payload, out):
                        self.gone = True  # GOAWAY: this call may still finish
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("no answer in time")
                    self.sock.settimeout(left)
                chunk = self.sock.recv(262144)
                if not chunk:
                    raise ConnectionError("the plugin closed the connection")
                self.buf += chunk
        finally:
            if self.recv_unacked > (1 << 30):
                out += frame(WINDOW_UPDATE, 0, 0, _HDR.pack(self.recv_unacked))
                self.recv_unacked = 0
            if out:
                with contextlib.suppress(OSError):
                    self.sock.sendall(out)

    @staticmethod
    def _result(status: int | None, grpc_message: str, data: bytearray) -> bytes:
        if status != 0:
            raise GrpcStatusError(status if status is not None else 2, grpc_message)
        if len(data) < 5:
            raise GrpcStatusError(13, "no response message")
        n = _HDR.unpack_from(data, 1)[0]
        return bytes(data[5:5 + n])

    def close(self) -> None:
        self.sock.close()


def encode_request(headers: Mapping[str, str], host_service: int = 0) -> bytes:
    """A ``TransformRequest``, as protoc's code would write it."""
    out = encode_response(headers)
    if host_service:
        out += b"\x10" + _uvarint(host_service)
    return out


def decode_response(data: bytes) -> dict[str, str]:
    """A ``TransformResponse``'s headers."""
    return decode_request(data)[0]
