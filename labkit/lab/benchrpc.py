"""``python -m labkit bench rpc``: go-plugin's protocol, each host with each plugin, beside
two references, in one run.

The hosts: labkit's Python host (:class:`~labkit.rpc.PluginClient`, timed in Python) and
go-plugin's Go host (``plugins/go/goplugin/host -bench``, timed in Go). The plugins: labkit's
Python plugin (``transformer_plugin.py``), the same service served by pyvider-rpcplugin
(``pyvider_plugin.py``, someone else's go-plugin server for Python) and go-plugin's Go
plugin. The references, both Python to Python over a Unix socket: one byte there and back
(the floor of any request), and a plain grpcio unary call with no go-plugin around it (what
grpcio alone costs; labkit's own plugin and host do without it, see :mod:`labkit.rpc.wire`).

The figures are taken in rounds: each round times one batch of every figure, in a rotated
order, so that a burst of load falls on all of them alike; go-plugin's host starts its
plugin afresh each round (50 untimed calls first), and its start-up is timed too. Each
figure is the median of its batches; the verdict compares figures of the same run only.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from ..errors import LabkitError
from ..rpc.client import PluginClient
from ..samples.rpc import PY_PYVIDER, build_rpc_samples, python_plugin
from .benchhosts import go_rpc
from .figures import Figure, Measure, batch, human, summarise, warm_up

_REQUEST = {"host": "example.com"}
#: Per call: the references, then labkit's Python host, then go-plugin's Go host.
RPC_FIGURES = (Figure.RPC_FLOOR, Figure.GRPC_PLAIN, Figure.PY_RPC_PY, Figure.PY_RPC_PYVIDER,
               Figure.PY_RPC_GO, Figure.GO_RPC_PY, Figure.GO_RPC_PYVIDER, Figure.GO_RPC_GO)
RPC_STARTS = (Figure.PY_RPC_PY_START, Figure.PY_RPC_PYVIDER_START, Figure.PY_RPC_GO_START,
              Figure.GO_RPC_PY_START, Figure.GO_RPC_PYVIDER_START, Figure.GO_RPC_START)
#: The plugins, and their figures per host: (call, start) in labkit's, then in go-plugin's.
PLUGINS = {
    "labkit's Python plugin": ((Figure.PY_RPC_PY, Figure.PY_RPC_PY_START),
                               (Figure.GO_RPC_PY, Figure.GO_RPC_PY_START)),
    "pyvider-rpcplugin's": ((Figure.PY_RPC_PYVIDER, Figure.PY_RPC_PYVIDER_START),
                            (Figure.GO_RPC_PYVIDER, Figure.GO_RPC_PYVIDER_START)),
    "go-plugin's Go plugin": ((Figure.PY_RPC_GO, Figure.PY_RPC_GO_START),
                              (Figure.GO_RPC_GO, Figure.GO_RPC_START)),
}
#: The child of the socket floor: it echoes every byte back.
_ECHO = ("import socket, sys\n"
         "s = socket.socket(fileno=int(sys.argv[1]))\n"
         "while (b := s.recv(1)):\n"
         "    s.sendall(b)\n")
#: The child of the plain grpcio reference: grpcio's own server, default settings, serving the
#: lab's Transform on a Unix socket with labkit's generated messages, nothing else.
_PLAIN = """\
import sys, time
from concurrent import futures
import grpc
from labkit.rpc.stubs import messages
pb = messages("transformer")
def transform(request, context):
    return pb.TransformResponse(headers={**request.headers, "x-plugin-lang": "python"})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
    "pluginlab.v1.HeaderTransformer", {"Transform": grpc.unary_unary_rpc_method_handler(
        transform, pb.TransformRequest.FromString, pb.TransformResponse.SerializeToString)})])
server.add_insecure_port("unix:" + sys.argv[1])
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop(None)
"""


def commands(go_plugin: str) -> dict[str, list[str]]:
    """The command line of each plugin of :data:`PLUGINS`."""
    return {"labkit's Python plugin": python_plugin(),
            "pyvider-rpcplugin's": python_plugin(PY_PYVIDER),
            "go-plugin's Go plugin": [go_plugin]}


def run_rpc(calls: int = 400, repeats: int = 5, starts: int = 3) -> list[Measure]:
    """Every figure of :data:`RPC_FIGURES` and :data:`RPC_STARTS`: ``repeats`` rounds of a
    batch of ``calls`` calls each; ``starts`` start-ups of each plugin by labkit's host
    (go-plugin's host times one start per round)."""
    with tempfile.TemporaryDirectory(prefix="plugin-lab-bench-") as tmp:
        rpc = build_rpc_samples(tmp)  # copies of the cached builds, removed at the end
        plugins = commands(str(rpc.plugin.path))
        samples: defaultdict[Figure, list[float]] = defaultdict(list)
        go_host = [(host[0], host[1], plugins[name]) for name, (_, host) in PLUGINS.items()]
        with contextlib.ExitStack() as stack:
            timed: dict[Figure, Callable[[], Any]] = {
                Figure.RPC_FLOOR: stack.enter_context(pingpong()),
                Figure.GRPC_PLAIN: stack.enter_context(_plain_grpc(tmp)),
            }
            for name, ((call, _), _) in PLUGINS.items():
                client = stack.enter_context(PluginClient(plugins[name]))
                timed[call] = partial(client.transform, _REQUEST)
            for operation in timed.values():
                warm_up(operation, calls)
            for round_ in range(repeats):
                order: list[Figure | tuple[Figure, Figure, list[str]]] = [*timed, *go_host]
                shift = round_ % len(order)
                for item in order[shift:] + order[:shift]:
                    if isinstance(item, tuple):
                        call, start, command = item
                        per_call, started = go_rpc(rpc, calls, 1, 1, plugin=command)
                        samples[call] += per_call
                        samples[start] += started
                    else:
                        samples[item].append(batch(timed[item], calls))
        for name, ((_, start), _) in PLUGINS.items():
            samples[start] = [_start(plugins[name]) for _ in range(starts)]
    go_timed = {f for _, (_, host) in PLUGINS.items() for f in host}
    return [summarise(f, "start" if f in RPC_STARTS else "call", samples[f],
                      1 if f in RPC_STARTS else calls, "Go" if f in go_timed else "Python")
            for f in (*RPC_FIGURES, *RPC_STARTS)]


def _start(command: Sequence[str]) -> float:
    client = PluginClient(command)
    begin = time.perf_counter()
    try:
        client.start()
        return time.perf_counter() - begin
    finally:
        client.close()


@contextlib.contextmanager
def pingpong() -> Iterator[Callable[[], None]]:
    """One byte there and back over a Unix socket between this process and a child Python:
    the practical floor of a Python-to-Python request over a Unix socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = subprocess.Popen([sys.executable, "-c", _ECHO, str(theirs.fileno())],
                             pass_fds=[theirs.fileno()])
    theirs.close()

    def ping() -> None:
        ours.sendall(b"x")
        ours.recv(1)

    try:
        yield ping
    finally:
        ours.close()
        child.wait(timeout=10)


@contextlib.contextmanager
def _plain_grpc(folder: str) -> Iterator[Callable[[], Any]]:
    """A unary call to a plain grpcio server in a child Python: what gRPC itself costs,
    without go-plugin's handshake, health, stdio and broker around it."""
    import grpc

    from ..rpc.stubs import messages

    pb = messages("transformer")
    path = f"{folder}/plain.sock"
    child = subprocess.Popen([sys.executable, "-c", _PLAIN, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        if child.stdout is None or child.stdout.readline().strip() != "ready":
            raise LabkitError("the plain grpcio server did not start",
                              fix="run `python -m labkit doctor`: grpcio must import")
        with grpc.insecure_channel(f"unix:{path}") as channel:
            call = channel.unary_unary("/pluginlab.v1.HeaderTransformer/Transform",
                                       request_serializer=pb.TransformRequest.SerializeToString,
                                       response_deserializer=pb.TransformResponse.FromString)
            request = pb.TransformRequest(headers=_REQUEST)
            yield partial(call, request, timeout=10)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


def table(results: Sequence[Measure]) -> str:
    """The figures as a grid, plugins by hosts, then the references and the verdict."""
    by = {Figure(m.name): m for m in results}
    first = max(len(name) for name in PLUGINS)
    some = next(iter(results))
    lines = [f"per call, median of {some.repeats} batches of {some.number} calls, taken "
             "in rounds; start-up in brackets",
             f"{'plugin':<{first}}  {'labkit Python host':>22}  {'go-plugin Go host':>22}"]
    for name, hosts in PLUGINS.items():
        cells = [f"{human(by[c].seconds)} ({human(by[s].seconds)})" for c, s in hosts]
        lines.append(f"{name:<{first}}  {cells[0]:>22}  {cells[1]:>22}")
    floor, plain = by[Figure.RPC_FLOOR], by[Figure.GRPC_PLAIN]
    lines += ["", f"for scale, Python to Python: {floor.name} {human(floor.seconds)} (the "
              f"floor); {plain.name} {human(plain.seconds)}", "", *verdict(results)]
    noisy = [m.name for m in results if m.noisy]
    if noisy:
        lines += ["", f"warning: noisy (the batches spread over half the median): "
                  f"{', '.join(noisy)}; run again for steadier figures"]
    return "\n".join(lines)


def verdict(results: Sequence[Measure]) -> list[str]:
    """labkit's Python plugin against go-plugin's Go to Go, and labkit against
    pyvider-rpcplugin in every column, as ratios of this run's medians."""
    by = {Figure(m.name): m.seconds for m in results}
    go_go = by[Figure.GO_RPC_GO]
    lines = []
    for figure in (Figure.GO_RPC_PY, Figure.PY_RPC_PY):
        lines.append(f"labkit's Python plugin, {figure.split(' →')[0]}: "
                     f"{_ratio(by[figure], go_go)} go-plugin's Go host → Go plugin")
    pairs = [("labkit Python host, per call", Figure.PY_RPC_PY, Figure.PY_RPC_PYVIDER),
             ("go-plugin Go host, per call", Figure.GO_RPC_PY, Figure.GO_RPC_PYVIDER),
             ("labkit Python host, start-up", Figure.PY_RPC_PY_START,
              Figure.PY_RPC_PYVIDER_START),
             ("go-plugin Go host, start-up", Figure.GO_RPC_PY_START,
              Figure.GO_RPC_PYVIDER_START)]
    for column, ours, theirs in pairs:
        lines.append(f"labkit against pyvider-rpcplugin, {column}: "
                     f"{_ratio(by[ours], by[theirs])} pyvider")
    return lines


def _ratio(ours: float, theirs: float) -> str:
    return f"{'faster' if ours < theirs else 'slower'}, {ours / theirs:.2f}x the time of"
