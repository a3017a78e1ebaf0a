"""The host side of go-plugin's gRPC protocol: start any go-plugin plugin and call it.

:class:`PluginClient` starts a plugin process (written in Go with hashicorp/go-plugin, or in
Python with :func:`labkit.rpc.serve`), reads and checks its handshake line, connects over
its Unix socket, checks its health, streams its stdout and stderr back, and calls
``Transform``. It notices when the plugin dies (in the middle of a call too) and says how
it died, and it always cleans up: :meth:`PluginClient.close` asks for Shutdown, waits a
grace period, then kills the whole process group and removes the socket folder. A context
manager and an exit hook close every plugin the host started;
:meth:`PluginClient.attach` reaches a plugin that something else started (go-plugin's
reattach), ``checksum=`` refuses a plugin file that is not the one expected (go-plugin's
SecureConfig), and the broker stream lets the plugin call the host back;
:class:`~labkit.rpc.process.PluginProcess` sees to the process itself (its own process group,
``PR_SET_PDEATHSIG``, the socket folder, how it ended).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..errors import HandshakeError, InputError, RPCPluginError
from ..paths import show, tidy
from .broker import Broker, Counter, secure_or_not
from .hclog import LogRecord, parse_line
from .process import AttachedProcess, PluginProcess, command_line
from .protocol import (
    BROKER_METHOD,
    ENV_CLIENT_CERT,
    ENV_SOCKET_DIR,
    HEALTH_SERVICE,
    LAB_HANDSHAKE,
    MAX_HANDSHAKE_LINE,
    SHUTDOWN_METHOD,
    STDIO_METHOD,
    TRANSFORM_METHOD,
    Handshake,
    HandshakeLine,
    Reattach,
    parse_handshake,
)
from .sandbox import Sandbox
from .secure import checksum_problem, verify
from .stubs import messages

if TYPE_CHECKING:
    from .mtls import Identity, MutualTLS

_TAIL = 200  # stderr lines kept for error messages
_KEPT = 2000  # stdio lines kept for output()
_live: weakref.WeakSet[PluginClient] = weakref.WeakSet()


class PluginClient:
    """One plugin process, seen from its host.

    Parameters:
        command: the plugin's command line (``[sys.executable, "plugin.py"]``, a Go binary).
        handshake: cookie and app versions (default: the lab's, cookie
            ``PLUGIN_LAB_COOKIE=plugin-lab-v1``, version 1).
        versions: the app protocol versions this host accepts (default: the handshake's).
        start_timeout: seconds to wait for the handshake line and a healthy plugin.
        call_timeout: seconds a call may take.
        grace: seconds between Shutdown and killing the process.
        env: extra environment variables for the plugin.
        on_output: called as ``on_output(channel, line)`` for each line the plugin writes
            (``"stdout"``/``"stderr"``) from a background thread; lines are also kept for
            :meth:`output`.
        checksum: the SHA-256 (64 hex digits, :func:`labkit.rpc.checksum`) the plugin's
            program must have, checked before each start as go-plugin's SecureConfig does.
            The program is the script when the command starts with a Python (go-plugin
            checks the executable, the interpreter in that case), else the executable.
        automtls: go-plugin's AutoMTLS (:mod:`~labkit.rpc.mtls`): fresh certificates at
            each start, mutual TLS on the plugin's socket and the broker's. A plugin whose
            certificate grpcio cannot use (a Go plugin's, on P-521) is refused at the
            handshake with the reason; ``"insist"`` tries the TLS handshake anyway, to see
            how it fails.
        sandbox: confine the plugin (:class:`~labkit.rpc.sandbox.Sandbox`: Landlock and
            seccomp, no root needed): it reads only what it needs to start, writes only in
            its socket folder, opens no network socket; :func:`labkit.rpc.sandbox.describe`
            says what this kernel enforces. Default: the plugin has all the host's rights.

    Over a plain Unix socket, :meth:`transform` takes a connection of its own, HTTP/2
    written by hand (:class:`labkit.rpc.wire.UnaryConnection`, about a fifth of the host's CPU of
    grpcio's channel); a call made while another thread's is in flight, or too big for one
    frame, goes through grpcio's channel as every other call does. ``LABKIT_RPC_FAST=0`` in
    the environment sends Transform through grpcio's channel too.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. Warning: the
    plugin is killed when the thread that started it exits (``PR_SET_PDEATHSIG``), so start
    it from a thread that lives as long as the host (a notebook's main thread does).
    """

    def __init__(
        self,
        command: Sequence[str | os.PathLike[str]],
        *,
        handshake: Handshake = LAB_HANDSHAKE,
        versions: Sequence[int] | None = None,
        start_timeout: float = 10.0,
        call_timeout: float = 10.0,
        grace: float = 2.0,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        on_output: Callable[[str, str], None] | None = None,
        checksum: str | None = None,
        automtls: bool | Literal["insist"] = False,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.command = command_line(
            command, "[sys.executable, 'plugins/python/transformer_plugin.py']")
        problem = checksum_problem(checksum) if checksum is not None else ""
        if problem:
            raise InputError(f"checksum {checksum!r} {problem}",
                             fix="pass labkit.rpc.checksum(path) of the plugin you trust")
        self.handshake = handshake
        self.versions = tuple(versions) if versions is not None else handshake.versions
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.grace = grace
        self._env = dict(env or {})
        self._cwd = cwd
        self._on_output = on_output
        self.checksum = checksum.lower() if checksum else None
        if automtls not in (False, True, "insist"):
            raise InputError(f"automtls={automtls!r} is not an AutoMTLS mode",
                             fix="pass True, False or 'insist'")
        self.automtls = automtls
        self.sandbox = sandbox
        self._identity: Identity | None = None  # this host's, made at each start
        self._tls: MutualTLS | None = None  # once the plugin's certificate arrived
        self._reattach: Reattach | None = None  # set by attach(): a plugin we did not start
        self._broker: Broker | None = None
        self._broker_call: Any = None
        self._offered: dict[Counter, int] = {}  # counter -> its broker id, for this process
        self._process: PluginProcess | AttachedProcess | None = None
        self._channel: grpc.Channel | None = None
        self._threads: list[threading.Thread] = []
        self._stderr_reader: threading.Thread | None = None  # none for an attached plugin
        self._lines: collections.deque[tuple[str, str]] = collections.deque(maxlen=_KEPT)
        self._stderr: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self._logs: collections.deque[LogRecord] = collections.deque(maxlen=_KEPT)
        self._arrived = threading.Condition()
        self._stdio_call: Any = None
        # Transform's own connection (wire.UnaryConnection), opened on first use; False:
        # never (LABKIT_RPC_FAST=0), so grpcio's channel carries Transform too
        self._fast: Any = None if os.environ.get("LABKIT_RPC_FAST", "1") != "0" else False
        self._fast_opening = threading.Lock()
        self._open = False  # a process was started and not yet cleaned up
        self.line: HandshakeLine | None = None  # the handshake line, once read
        self.ending = ""  # how the last process ended, in words
        self.dropped_lines = 0

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> PluginClient:
        """Start the plugin and connect; raise :class:`RPCPluginError` (``stage`` start,
        handshake, connect or health) if it does not come up. Nothing is left running then."""
        if self.alive:
            return self
        if self._open:  # the last process died between calls: clean up after it first
            self._stop(ask=False)
        self._reset()
        if self._reattach is not None:
            return self._attach(self._reattach)
        if self.checksum is not None:
            verify(self._program(), self.checksum, self.command)
        env = {**os.environ, **self.handshake.environment(self.versions), **self._env}
        if self.automtls:
            from .mtls import Identity

            self._identity = Identity.generate()
            env[ENV_CLIENT_CERT] = self._identity.certificate.decode()
        if self.automtls == "insist":  # a Go plugin says why it drops a TLS handshake only
            env.setdefault("GRPC_GO_LOG_SEVERITY_LEVEL", "info")  # in grpc-go's own log
        try:
            self._process = PluginProcess.start(self.command, env=env, cwd=self._cwd,
                                                folder_variable=ENV_SOCKET_DIR,
                                                sandbox=self.sandbox)
        except OSError as exc:
            self._cleanup()
            raise RPCPluginError(
                f"cannot start plugin {self._name()!r}: {exc}", fix=f"check the command "
                f"{self.command!r} (the path, and that the file is executable)",
                stage="start", command=self.command) from exc
        self._open = True
        _live.add(self)
        lines: queue.Queue[bytes | None] = queue.Queue()
        self._spawn(self._read_stdout, self._process.stdout, lines)
        self._stderr_reader = self._spawn(self._read_stderr, self._process.stderr)
        try:
            self.line = self._await_handshake(lines)
            self._connect(self.line)
        except BaseException:
            self._stop(ask=False)
            raise
        return self

    @classmethod
    def attach(cls, reattach: Reattach | str, **options: Any) -> PluginClient:
        """A host for a plugin that is already running, started by someone else (a person
        debugging it, another host): go-plugin's ``ReattachConfig``. ``reattach`` is a
        :class:`~labkit.rpc.protocol.Reattach` or its JSON, as the plugin printed it.

        The host connects, checks health and streams stdio as after a start. Who ends the
        plugin: in test mode (``"Test": true``, a plugin serving for a debugger) the
        plugin itself, so :meth:`close` only disconnects; otherwise this host, as if it had
        started it (Shutdown, then SIGKILL after the grace period). A plugin that dies is
        not restarted: this host does not know how."""
        found = Reattach.from_json(reattach) if isinstance(reattach, str) else reattach
        if options.get("automtls"):
            raise InputError("a plugin cannot be attached with automtls: its certificates "
                             "were made when it started, and reattach information carries "
                             "none (go-plugin's ReattachConfig neither)",
                             fix="attach without automtls, to a plugin serving without TLS")
        client = cls([f"pid {found.pid}"], **options)
        client._reattach = found
        return client.start()

    @property
    def reattach(self) -> Reattach | None:
        """What another host needs to attach to this plugin while it runs."""
        if self.line is None or self.pid is None:
            return None
        test = self._reattach.test if self._reattach is not None else False
        return Reattach.from_line(self.line, self.pid, test=test)

    def close(self) -> str:
        """Ask the plugin to shut down, wait up to ``grace`` seconds, then kill its process
        group; remove the socket folder. Returns (and keeps in :attr:`ending`) how the
        process ended. Safe to call twice. Warning: a call in flight fails."""
        if self._open:
            self._stop(ask=True)
        return self.ending

    def restart(self) -> PluginClient:
        """Close this plugin process (whatever state it is in) and start a fresh one."""
        self.close()
        return self.start()

    def __enter__(self) -> PluginClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """The plugin process is running."""
        return self._process is not None and self._process.alive

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def socket_folder(self) -> Path | None:
        """The private folder (mode 0700) the host made for the plugin's socket."""
        return self._process.folder if self._process is not None else None

    # -- calls ------------------------------------------------------------------------------

    def transform(
        self, headers: Mapping[str, str], *, counter: Counter | None = None,
        timeout: float | None = None,
    ) -> dict[str, str]:
        """Call the plugin's ``Transform`` and return the response's headers.

        With ``counter``, the host serves that :class:`~labkit.rpc.broker.Counter` through
        go-plugin's broker (once per plugin process) and names it in the request, so that
        the plugin can call it back during the call.

        Raises :class:`RPCPluginError` (``stage="call"``) when the plugin is not running,
        dies during the call (with its exit status or signal and last stderr lines), does
        not answer in time, or returns an error.
        """
        service = self._offer(counter) if counter is not None else 0
        if self._tls is None and self._fast is not False:
            answer = self._fast_transform(headers, service, timeout)
            if answer is not None:
                return answer
        # grpcio's channel, which multiplexes and splits frames
        pb = messages("transformer")
        request = pb.TransformRequest(headers=dict(headers), host_service=service)
        reply = self._call(TRANSFORM_METHOD, request, pb.TransformRequest.SerializeToString,
                           pb.TransformResponse.FromString, timeout)
        return dict(sorted(reply.headers.items()))

    def _fast_transform(self, headers: Mapping[str, str], service: int,
                        timeout: float | None) -> dict[str, str] | None:
        """Transform over a connection of its own, HTTP/2 by hand (:mod:`.wire`): ~a fifth of
        the host's CPU of grpcio's channel, on this thread. Same errors as :meth:`_call`;
        ``None`` when another thread's call holds the connection, or the request is too big
        for it, or the plugin's socket is not a Unix socket."""
        from . import wire

        self._require_channel("Transform")
        limit = timeout if timeout is not None else self.call_timeout
        try:
            with self._fast_opening:  # one connection, however many threads call at first
                if self._fast is None:  # wire speaks over Unix sockets only
                    assert self.line is not None
                    self._fast = (wire.UnaryConnection(self.line.address)
                                  if self.line.network == "unix" else False)
            request = wire.encode_request(headers, service)
            try:
                data = self._fast.call(TRANSFORM_PATH, request, limit) if self._fast else None
            except wire.StaleConnectionError:  # closed while idle, nothing sent: once more
                self._fast.close()
                self._fast = wire.UnaryConnection(self._fast.address)
                data = self._fast.call(TRANSFORM_PATH, request, limit)
            return None if data is None else dict(sorted(wire.decode_response(data).items()))
        except wire.GrpcStatusError as exc:
            code = _STATUS.get(exc.code, grpc.StatusCode.UNKNOWN)
            raise self._failure("Transform", code, exc.message, limit) from exc
        except OSError as exc:  # a timed-out or dead connection: drop it
            if self._fast:
                self._fast.close()
                self._fast = None
            if isinstance(exc, TimeoutError):
                code, details = grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
            else:
                code, details = grpc.StatusCode.UNAVAILABLE, f"connection lost: {exc}"
            raise self._failure("Transform", code, details, limit) from exc

    def health(self) -> str:
        """The plugin's health as go-plugin hosts check it: ``SERVING`` when all is well."""
        request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE)
        stub = health_pb2_grpc.HealthStub(self._require_channel("Check"))
        try:
            reply = stub.Check(request, timeout=self.call_timeout)
        except grpc.RpcError as exc:
            raise self._call_failure("Check", exc, self.call_timeout) from exc
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    # -- what the plugin said ---------------------------------------------------------------

    def output(self, *, settle: float = 0.2, wait: float = 2.0) -> list[str]:
        """The stdout/stderr lines the plugin wrote since the last call of this method, as
        ``"stdout: text"``. Waits until no new line arrived for ``settle`` seconds (at most
        ``wait``), because the stream runs beside the calls."""
        deadline = time.monotonic() + wait
        with self._arrived:
            while time.monotonic() < deadline:
                before = len(self._lines) + self.dropped_lines
                self._arrived.wait(settle)
                if len(self._lines) + self.dropped_lines == before:
                    break
            taken = [f"{channel}: {text}" for channel, text in self._lines]
            self._lines.clear()
        return taken

    @property
    def logs(self) -> list[LogRecord]:
        """The hclog records the plugin wrote on its stderr."""
        return list(self._logs)

    @property
    def stderr_tail(self) -> list[str]:
        """The last lines of the plugin's real stderr that were not log records."""
        return list(self._stderr)

    # -- inside -----------------------------------------------------------------------------

    def _name(self) -> str:
        """The plugin's program: the script when the command starts with a Python."""
        if self._reattach is not None:
            return f"attached plugin (pid {self._reattach.pid})"
        return show(self._program())

    def _program(self) -> str:
        """The file the command runs: the script when it starts with a Python."""
        interpreted = len(self.command) > 1 and Path(self.command[0]).name.startswith("python")
        return self.command[1] if interpreted else self.command[0]

    def _attach(self, reattach: Reattach) -> PluginClient:
        if self.sandbox is not None:
            raise InputError(f"cannot sandbox the plugin at pid {reattach.pid}: it runs "
                             "already, with the rights of whoever started it",
                             fix="start it with PluginClient([...], sandbox=...) instead")
        if reattach.protocol != "grpc":
            raise InputError(f"the plugin at pid {reattach.pid} speaks {reattach.protocol}; "
                             "labkit's host speaks only grpc", fix="attach to a gRPC plugin")
        try:
            self._process = AttachedProcess(reattach.pid, owned=not reattach.test)
        except OSError as exc:
            raise RPCPluginError(
                f"cannot attach to the plugin at pid {reattach.pid}: {exc.strerror}",
                fix="the plugin is not running (any more): start it again and use the "
                "reattach information it prints", stage="start", command=self.command) from exc
        self._open = True
        _live.add(self)
        self.line = HandshakeLine(1, reattach.version, reattach.network, reattach.address,
                                  reattach.protocol)
        try:
            self._connect(self.line)
        except BaseException:
            self._stop(ask=False)
            raise
        return self

    def _offer(self, counter: Counter) -> int:
        """The broker id under which this plugin process reaches ``counter``."""
        if self._broker is None:
            self._require_channel("Transform")
            raise RPCPluginError("the broker stream is not open", stage="broker",
                                 command=self.command)
        if counter not in self._offered:
            service_id = self._broker.next_id()
            self._broker.accept_and_serve(service_id, counter.handlers())
            self._offered[counter] = service_id
        return self._offered[counter]

    def _reset(self) -> None:
        self._lines.clear()
        self._stderr.clear()
        self._logs.clear()
        self._threads = []
        self._stderr_reader = None
        self._identity = self._tls = None
        self.line = None
        self.ending = ""
        self.dropped_lines = 0

    def _spawn(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"plugin-{self.pid}-{target.__name__}")
        thread.start()
        self._threads.append(thread)
        return thread

    def _read_stdout(self, stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
        """The first line is the handshake; go-plugin ignores later stdout, labkit keeps it."""
        buffer = b""
        while b"\n" not in buffer and len(buffer) <= MAX_HANDSHAKE_LINE:
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            buffer += chunk
        first, newline, rest = buffer.partition(b"\n")
        # a line over the limit is cut at limit + 1, whatever the pipe delivered at once
        lines.put(first[:MAX_HANDSHAKE_LINE + 1] if newline or first else None)
        if not newline:
            if len(buffer) > MAX_HANDSHAKE_LINE:
                for _ in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
                    pass  # drain so a flooding plugin never blocks on a full pipe
            return
        pending = rest
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                self._keep("stdout", raw.decode(errors="replace"))
        if pending:
            self._keep("stdout", pending.decode(errors="replace"))

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            text = raw.decode(errors="replace").rstrip("\n")
            record = parse_line(text)
            if record is not None:
                self._logs.append(record)
            elif text.strip():
                self._stderr.append(text)

    def _read_stdio(self, call: Any) -> None:
        partial = {1: b"", 2: b""}
        try:
            for item in call:
                channel = item.channel if item.channel in partial else 1
                *complete, partial[channel] = (partial[channel] + item.data).split(b"\n")
                for raw in complete:
                    self._keep("stdout" if channel == 1 else "stderr", raw.decode(errors="replace"))
        except grpc.RpcError:
            pass  # the stream ends when the plugin exits or the host closes the channel
        for channel, rest in partial.items():
            if rest:
                self._keep("stdout" if channel == 1 else "stderr", rest.decode(errors="replace"))

    def _keep(self, channel: str, text: str) -> None:
        with self._arrived:
            if len(self._lines) == self._lines.maxlen:
                self.dropped_lines += 1
            self._lines.append((channel, text))
            self._arrived.notify_all()
        if self._on_output is not None:
            self._on_output(channel, text)

    def _await_handshake(self, lines: queue.Queue[bytes | None]) -> HandshakeLine:
        try:
            first = lines.get(timeout=self.start_timeout)
        except queue.Empty:
            raise self._start_failure(
                "handshake", f"printed no handshake line within {self.start_timeout:g} s",
                "the plugin must print its handshake line as soon as it listens; raise "
                "start_timeout if it needs longer to start") from None
        if first is None:
            self._wait_exit(2.0)
            raise self._start_failure(
                "start", "exited before its handshake",
                "read the plugin's stderr above: a missing magic cookie, a crash at start-up, "
                "a bad command line")
        try:
            line = parse_handshake(first.decode(errors="replace"))
        except HandshakeError as exc:
            raise self._start_failure("handshake", f"gave a bad handshake: {exc.what}",
                                      exc.fix) from exc
        if line.app_version not in self.versions:
            accepted = ", ".join(str(v) for v in self.versions)
            raise self._start_failure(
                "handshake", f"speaks app protocol version {line.app_version}; this host "
                f"accepts {accepted}",
                "build the plugin for a version the host accepts, or give the host "
                "versions=(...) that includes the plugin's")
        if line.server_cert or self.automtls:
            self._tls = self._mutual_tls(line)
        if line.protocol != "grpc":
            raise self._start_failure(
                "handshake", f"speaks go-plugin's {line.protocol} protocol; labkit's host "
                "speaks only grpc", "serve the plugin with a GRPCServer (go-plugin) or "
                "labkit.rpc.serve (Python)")
        return line

    def _mutual_tls(self, line: HandshakeLine) -> MutualTLS:
        """The TLS of an AutoMTLS handshake, or the start failure that says why not."""
        from .mtls import MutualTLS, from_line_field, unusable

        if self._identity is None:
            raise self._start_failure(
                "handshake", "serves TLS: its handshake line carries a server certificate "
                f"(go-plugin's AutoMTLS, asked for with {ENV_CLIENT_CERT}), and this host did "
                "not ask for it", f"pass automtls=True, or start the plugin without "
                f"{ENV_CLIENT_CERT} in its environment")
        if not line.server_cert:
            raise self._start_failure(
                "handshake", f"serves without TLS: this host asked for AutoMTLS (it set "
                f"{ENV_CLIENT_CERT}) and the handshake line carries no server certificate",
                "serve the plugin with go-plugin 1.x or labkit.rpc.serve, which answer "
                "AutoMTLS, or pass automtls=False")
        try:
            peer = from_line_field(line.server_cert)
            problem = unusable(peer)
        except InputError as exc:
            raise self._start_failure("handshake", f"sent a bad certificate: {exc.what}",
                                      exc.fix) from exc
        if problem and self.automtls != "insist":
            raise self._start_failure(
                "handshake", f"answered AutoMTLS, and labkit's host cannot do TLS with it: "
                f"{problem}", "use the Go host for AutoMTLS with a Go plugin, or pass "
                "automtls=False; automtls='insist' tries the handshake anyway")
        return MutualTLS(self._identity, peer)

    def _connect(self, line: HandshakeLine) -> None:
        target = f"unix:{line.address}" if line.network == "unix" else line.address
        self._channel = secure_or_not(target, self._tls)
        if self._tls is not None:
            self._check_tls()
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.start_timeout)
        except grpc.FutureTimeoutError:
            raise self._start_failure(
                "connect", f"announced {line.network} {tidy(line.address)!r} but accepted no "
                f"connection within {self.start_timeout:g} s",
                "check the plugin's listener") from None
        try:
            status = self.health()
        except RPCPluginError as exc:
            raise self._start_failure("health", f"failed its health check: {exc}", "") from exc
        if status != "SERVING":
            raise self._start_failure(
                "health", f"reports {status} for {HEALTH_SERVICE!r} on its health service",
                "the plugin must set its health to SERVING once it is ready")
        gp = messages("goplugin")
        self._stdio_call = self._channel.unary_stream(
            STDIO_METHOD, request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=gp.StdioData.FromString)(empty_pb2.Empty())
        self._spawn(self._read_stdio, self._stdio_call)
        self._broker = Broker(self.socket_folder, self._tls)
        self._broker_call = self._channel.stream_stream(
            BROKER_METHOD, request_serializer=gp.ConnInfo.SerializeToString,
            response_deserializer=gp.ConnInfo.FromString)(self._broker.outgoing())
        self._spawn(self._broker.receive, self._broker_call)

    def _check_tls(self) -> None:
        """A first call, to meet a failed TLS handshake with grpcio's own words (a channel
        that cannot finish its handshake just never becomes ready)."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            stub.Check(health_pb2.HealthCheckRequest(service=HEALTH_SERVICE),
                       timeout=self.start_timeout)
        except grpc.RpcError as exc:
            details = exc.details() if hasattr(exc, "details") else str(exc)
            deadline = time.monotonic() + 1.0  # its side of it may still be in the pipe
            while (time.monotonic() < deadline
                   and not any("tls:" in line for line in self.stderr_tail)):
                time.sleep(0.05)
            raise self._start_failure(
                "connect", f"failed the TLS handshake; grpcio says: {details}",
                "AutoMTLS needs certificates both sides' TLS accepts") from exc

    def _require_channel(self, method: str) -> grpc.Channel:
        if self._channel is None or self._process is None:
            raise RPCPluginError(
                f"cannot call {method}: plugin {self._name()!r} is not started", fix="call "
                "start() or use the client in a with-block", stage="call", command=self.command)
        return self._channel

    def _call(self, method: str, request: Any, serialize: Callable[[Any], bytes],
              deserialize: Callable[[bytes], Any], timeout: float | None) -> Any:
        channel = self._require_channel(method.rsplit("/", 1)[-1])
        limit = timeout if timeout is not None else self.call_timeout
        stub = channel.unary_unary(method, request_serializer=serialize,
                                   response_deserializer=deserialize)
        try:
            return stub(request, timeout=limit)
        except grpc.RpcError as exc:
            raise self._call_failure(method.rsplit("/", 1)[-1], exc, limit) from exc

    def _call_failure(self, method: str, exc: grpc.RpcError, limit: float) -> RPCPluginError:
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        return self._failure(method, code, details, limit)

    def _failure(self, method: str, code: grpc.StatusCode | None, details: str,
                 limit: float) -> RPCPluginError:
        status = code.name if code is not None else "UNKNOWN"
        # a dead plugin shows as UNAVAILABLE (its socket closed); give the kernel time to
        # reap it. Any other status comes from a live plugin unless it is already gone.
        settle = 2.0 if code is grpc.StatusCode.UNAVAILABLE else 0.05
        if self._wait_exit(settle) is not None:
            return self._died(method, status)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return RPCPluginError(
                f"plugin {self._name()!r} did not answer {method} within {limit:g} s; it is "
                "still running", fix="raise the timeout, or restart() a plugin that hangs",
                stage="call", command=self.command, status=status,
                stderr_tail=self.stderr_tail)
        return RPCPluginError(
            f"plugin {self._name()!r} answered {method} with {status}: {details}. The plugin "
            "is still running", fix="the plugin's code raised; read its log lines (.logs)",
            stage="call", command=self.command, status=status, stderr_tail=self.stderr_tail)

    def _died(self, method: str, status: str) -> RPCPluginError:
        ended = self._describe_exit()
        self.ending = ended
        self._read_stderr_to_end()
        tail = self.stderr_tail
        shown = _excerpt(tail) or "  (nothing)"
        self._stop(ask=False)  # the process is gone: free its socket folder and threads
        return RPCPluginError(
            f"plugin {self._name()!r} died during {method}: {ended}. The host is unharmed.\n"
            f"Its last stderr lines:\n{shown}", fix="restart() starts a fresh plugin process; "
            "the crash itself is the plugin's bug",
            stage="call", command=self.command,
            returncode=self._returncode(), signal=self._signal_name(), stderr_tail=tail,
            status=status)

    def _start_failure(self, stage: str, what: str, fix: str) -> RPCPluginError:
        exited = self._wait_exit(0.2)
        status = f" It {self._describe_exit()}." if exited is not None else ""
        if exited is not None:
            self._read_stderr_to_end()
        tail = self.stderr_tail
        shown = ("\nIts stderr:\n" + _excerpt(tail)) if tail else ""
        return RPCPluginError(
            f"plugin {self._name()!r} {what}.{status}{shown}", fix=fix,
            stage=stage, command=self.command, returncode=self._returncode(),
            signal=self._signal_name(), stderr_tail=tail)

    def _read_stderr_to_end(self, seconds: float = 2.0) -> None:
        """Let the stderr reader finish: an ended process's last lines (a crash report) may
        still be in the pipe when its exit is seen. At most ``seconds``, in case something
        the plugin started still holds the pipe open."""
        if self._stderr_reader is not None:
            self._stderr_reader.join(seconds)

    def _wait_exit(self, seconds: float) -> int | None:
        return self._process.wait(seconds) if self._process is not None else None

    def _returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def _signal_name(self) -> str | None:
        return self._process.signal_name() if self._process is not None else None

    def _describe_exit(self) -> str:
        return self._process.describe() if self._process is not None else "is still running"

    def _stop(self, *, ask: bool) -> None:
        process = self._process
        if process is None or not self._open:
            return
        how = ""
        if isinstance(process, AttachedProcess) and not process.owned:
            self.ending = ("left running: it serves in test mode and ends itself"
                           if process.alive else "had ended")
            self._cleanup()
            return
        if process.alive and ask and self._channel is not None:
            gp = messages("goplugin")
            with contextlib.suppress(grpc.RpcError):
                self._channel.unary_unary(
                    SHUTDOWN_METHOD, request_serializer=gp.Empty.SerializeToString,
                    response_deserializer=gp.Empty.FromString)(gp.Empty(), timeout=self.grace)
            if self._wait_exit(self.grace) is not None:
                how = f"{self._describe_exit()} after Shutdown"
            else:
                how = f"ignored Shutdown for {self.grace:g} s and was killed (SIGKILL)"
        if process.kill():  # the group, whatever the plugin started too
            how = how or "was killed (SIGKILL)"
        self.ending = how or self.ending or self._describe_exit()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._fast:
            self._fast.close()
            self._fast = None
        if self._stdio_call is not None:
            self._stdio_call.cancel()
            self._stdio_call = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None
            self._offered.clear()
        if self._broker_call is not None:
            self._broker_call.cancel()
            self._broker_call = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._process is not None:
            self._process.release()
        self._open = False
        _live.discard(self)


def _excerpt(lines: Sequence[str], most: int = 8) -> str:
    """The telling part of a plugin's stderr: from a crash report's first line (Python's
    "Fatal Python error", Go's "panic:" or "fatal error:") if there is one, else the end."""
    starts = [i for i, line in enumerate(lines)
              if line.startswith(("Fatal Python error", "panic:", "fatal error:"))]
    chosen = lines[starts[-1]:][:most] if starts else lines[-most:]
    return "\n".join("  " + tidy(line) for line in chosen)


def live_plugins() -> list[PluginClient]:
    """The plugin clients of this process whose process runs."""
    return [client for client in list(_live) if client.alive]


@contextlib.contextmanager
def started(command: Sequence[str | os.PathLike[str]], **options: Any) -> Iterator[PluginClient]:
    """``with started([...]) as plugin:`` a :class:`PluginClient`, closed at the end."""
    client = PluginClient(command, **options)
    with client:
        yield client


def _close_all() -> None:
    for client in list(_live):
        with contextlib.suppress(Exception):
            client.grace = min(client.grace, 0.5)
            client.close()


atexit.register(_close_all)


TRANSFORM_PATH = TRANSFORM_METHOD.encode()
_STATUS = {status.value[0]: status for status in grpc.StatusCode}
