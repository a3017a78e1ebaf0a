"""go-plugin's GRPCBroker, in both roles: extra connections between a host and its plugin,
so that either side can serve the other during a call.

Every go-plugin gRPC plugin serves ``plugin.GRPCBroker/StartStream``, and every host opens
that stream right after it connects. Through it, the two sides trade ``ConnInfo`` messages
(hashicorp/go-plugin, ``grpc_broker.go``, without multiplexing):

- the side that offers a service picks an id, listens on a new Unix socket, serves the
  service there, and sends ``ConnInfo{service_id, network, address}`` down the stream
  (go-plugin's ``AcceptAndServe``);
- the other side waits for the ``ConnInfo`` of that id (go-plugin gives up after 5 s, and
  forgets an unclaimed one after 5 s) and connects to the address (``Dial``). One
  ``ConnInfo`` serves one ``Dial``: a plugin that calls back more than once keeps its
  connection.

The id travels in the app's own request: the lab's ``TransformRequest.host_service``. Under
AutoMTLS the broker's connections use the same certificates as the main one.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RPCPluginError
from .protocol import MAX_SOCKET_PATH

if TYPE_CHECKING:
    import grpc

    from .mtls import MutualTLS

#: go-plugin's wait for the ConnInfo of an id (``DialWithOptions``).
DIAL_TIMEOUT = 5.0
_KEPT_INFOS = 64  # unclaimed ConnInfo messages kept, newest first out


class Broker:
    """One side of a broker stream. :meth:`outgoing` is what this side sends,
    :meth:`receive` reads what the other side sends (call it from a thread of its own)."""

    def __init__(self, folder: Path | None = None, tls: MutualTLS | None = None) -> None:
        self._tls = tls
        self._folder = Path(tempfile.mkdtemp(prefix="broker-", dir=folder))  # mode 0700
        self._sending: queue.Queue[Any] = queue.Queue()
        self._infos: dict[int, Any] = {}
        self._arrived = threading.Condition()
        self._servers: list[grpc.Server] = []
        self._channels: dict[int, grpc.Channel] = {}
        self._next_id = 0
        self._closed = False

    # -- the stream -------------------------------------------------------------------------

    def outgoing(self, active: Callable[[], bool] = lambda: True) -> Iterator[Any]:
        """The ConnInfo messages this side sends, until :meth:`close` or until ``active()``
        turns false (a stream the other side closed)."""
        while active():
            try:
                info = self._sending.get(timeout=0.5)
            except queue.Empty:
                continue
            if info is None:
                self._sending.put(None)  # for any other stream still reading
                return
            yield info

    def restart(self) -> None:
        """A new host connected (one that attached after another): ids start again, so the
        connections dialled for the last host and its unclaimed ConnInfo are dropped. One host
        at a time, as go-plugin has it."""
        with self._arrived:
            channels = list(self._channels.values())
            self._channels.clear()
            self._infos.clear()
        for channel in channels:
            channel.close()

    def receive(self, incoming: Iterator[Any]) -> None:
        """Keep each ConnInfo the other side sends for the :meth:`dial` of its id. Knocks
        (go-plugin's multiplexing, which labkit's hosts never ask for) are not answered."""
        try:
            for info in incoming:
                if info.HasField("knock"):
                    continue
                with self._arrived:
                    self._infos[info.service_id] = info
                    while len(self._infos) > _KEPT_INFOS:
                        self._infos.pop(next(iter(self._infos)))
                    self._arrived.notify_all()
        except Exception as exc:  # grpc.RpcError, without importing grpcio for the check
            if not type(exc).__module__.startswith("grpc"):
                raise  # the stream ends with the connection; a host that attaches opens another

    # -- offering and reaching services ------------------------------------------------------

    def next_id(self) -> int:
        with self._arrived:
            self._next_id += 1
            return self._next_id

    def accept_and_serve(self, service_id: int,
                         handlers: Sequence[grpc.GenericRpcHandler]) -> Path:
        """Serve ``handlers`` on a new Unix socket and tell the other side where, under
        ``service_id``; returns the socket's path. The server runs until :meth:`close`."""
        path = self._folder / f"{service_id}.sock"
        if len(str(path).encode()) > MAX_SOCKET_PATH:
            raise RPCPluginError(
                f"the broker's socket path {str(path)!r} is longer than a Unix socket allows",
                fix="set TMPDIR to a shorter folder", stage="broker", command=[])
        from concurrent import futures

        import grpc

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4,
                                                        thread_name_prefix="broker"),
                             handlers=handlers)
        if self._tls is None:
            server.add_insecure_port(f"unix:{path}")
        else:
            server.add_secure_port(f"unix:{path}", self._tls.server_credentials())
        server.start()
        self._servers.append(server)
        from .stubs import messages

        gp = messages("goplugin")
        self._sending.put(gp.ConnInfo(service_id=service_id, network="unix", address=str(path)))
        return path

    def dial(self, service_id: int, timeout: float = DIAL_TIMEOUT) -> grpc.Channel:
        """The channel to the service the other side offers under ``service_id``, waiting up
        to ``timeout`` seconds for its ConnInfo the first time; later calls reuse it."""
        with self._arrived:
            if service_id in self._channels:
                return self._channels[service_id]
            deadline = time.monotonic() + timeout
            while service_id not in self._infos:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    why = ("the broker was closed" if self._closed else
                           f"no connection information for it arrived within {timeout:g} s")
                    raise RPCPluginError(
                        f"cannot dial broker service {service_id}: {why}",
                        fix="the other side must serve the id (AcceptAndServe) before or "
                        "while it sends the request that names it", stage="broker", command=[])
                self._arrived.wait(left)
            info = self._infos.pop(service_id)
            target = f"unix:{info.address}" if info.network == "unix" else info.address
            channel = secure_or_not(target, self._tls)
            self._channels[service_id] = channel
            return channel

    def close(self) -> None:
        """Stop every server this side offered, close every channel it dialled, end the
        stream and remove the sockets' folder. Safe to call twice."""
        with self._arrived:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            self._arrived.notify_all()
        self._sending.put(None)
        for channel in channels:
            channel.close()
        for server in self._servers:
            server.stop(grace=None)
        self._servers.clear()
        shutil.rmtree(self._folder, ignore_errors=True)


def secure_or_not(target: str, tls: MutualTLS | None) -> grpc.Channel:
    """A channel to ``target``: with ``tls``, mutual TLS that trusts only the peer's
    certificate."""
    import grpc

    if tls is None:
        return grpc.insecure_channel(target)
    from .mtls import CHANNEL_OPTIONS

    return grpc.secure_channel(target, tls.channel_credentials(), options=CHANNEL_OPTIONS)


# -- the lab's host service: a counter ---------------------------------------------------------

COUNTER_SERVICE = "pluginlab.v1.HostCounter"
COUNTER_METHOD = f"/{COUNTER_SERVICE}/Next"


class Counter:
    """The host's counter a plugin may call back during ``Transform``: the next number of a
    named count. Thread-safe; :attr:`counts` is what the host holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def next(self, name: str) -> int:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            return self.counts[name]

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """The gRPC handlers that serve this counter as ``pluginlab.v1.HostCounter``."""
        import grpc

        from .stubs import messages

        pb = messages("transformer")

        def next_value(request: Any, context: grpc.ServicerContext) -> Any:
            return pb.CounterReply(value=self.next(request.name))

        return [grpc.method_handlers_generic_handler(COUNTER_SERVICE, {
            "Next": grpc.unary_unary_rpc_method_handler(
                next_value, pb.CounterRequest.FromString, pb.CounterReply.SerializeToString)})]


class HostCounter:
    """A plugin's view of the host's :class:`Counter`, over a broker connection."""

    def __init__(self, channel: grpc.Channel, timeout: float = 10.0) -> None:
        from .stubs import messages

        pb = messages("transformer")
        self._next = channel.unary_unary(COUNTER_METHOD,
                                         request_serializer=pb.CounterRequest.SerializeToString,
                                         response_deserializer=pb.CounterReply.FromString)
        self._request = pb.CounterRequest
        self._timeout = timeout

    def next(self, name: str) -> int:
        """The host's next number for ``name``."""
        return int(self._next(self._request(name=name), timeout=self._timeout).value)
