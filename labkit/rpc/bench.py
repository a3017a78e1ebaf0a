"""``python -m labkit bench rpc``: what one RPC plugin call costs, measured in one run.

Four round trips, each timed over the same number of calls after a warm-up:

- the floor: one byte ping-ponged over a Unix socket between two Python processes;
- labkit's Python host calling the Python plugin;
- labkit's Python host calling the Go plugin (go-plugin's server);
- the Go host calling the Go plugin: go-plugin to go-plugin, timed inside the Go host.

A figure is the mean over all calls of one batch; ratios are to the floor.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import LabkitError
from .client import PluginClient
from .samples import RpcSamples, build_rpc_samples, python_plugin, run_go_rpc_host

_ECHO = ("import socket, sys\n"
         "s = socket.socket(fileno=int(sys.argv[1]))\n"
         "while (b := s.recv(1)):\n"
         "    s.sendall(b)\n")
_WARMUP = 50
_REQUEST = {"host": "example.com", "user-agent": "labkit-bench"}


@dataclass(frozen=True)
class Timing:
    """One mechanism's round trip: ``seconds`` per call, averaged over ``calls``."""

    name: str
    seconds: float
    calls: int


def pingpong_floor(calls: int) -> Timing:
    """One byte there and back over a Unix socket between this process and a child."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = subprocess.Popen([sys.executable, "-c", _ECHO, str(theirs.fileno())],
                             pass_fds=[theirs.fileno()])
    theirs.close()
    try:
        for _ in range(_WARMUP):
            ours.sendall(b"x")
            ours.recv(1)
        start = time.perf_counter()
        for _ in range(calls):
            ours.sendall(b"x")
            ours.recv(1)
        elapsed = time.perf_counter() - start
    finally:
        ours.close()
        child.wait(timeout=10)
    return Timing("raw Unix socket ping-pong, Python to Python (floor)", elapsed / calls, calls)


def python_host(command: Sequence[str | os.PathLike[str]], name: str, calls: int) -> Timing:
    """labkit's host calling ``Transform`` on a plugin started from ``command``."""
    with PluginClient(command) as plugin:
        for _ in range(_WARMUP):
            plugin.transform(_REQUEST)
        start = time.perf_counter()
        for _ in range(calls):
            plugin.transform(_REQUEST)
        elapsed = time.perf_counter() - start
    return Timing(name, elapsed / calls, calls)


def go_host(samples: RpcSamples, calls: int) -> Timing:
    """The Go host (go-plugin) timing ``calls`` calls of the Go plugin itself."""
    outcome = run_go_rpc_host(samples.host, [samples.plugin], headers=_REQUEST, bench=calls)
    match = re.search(r"bench: (\d+) calls, (\d+) ns per call", outcome.stdout)
    if not outcome.ok or match is None:
        raise LabkitError(f"the Go host did not report its timing ({outcome.summary()}):\n"
                          f"{outcome.stderr[-2000:]}")
    return Timing("Go host -> Go plugin (go-plugin both sides)", int(match[2]) / 1e9, calls)


def run(calls: int = 2000) -> list[Timing]:
    """All four round trips, in one run."""
    with tempfile.TemporaryDirectory(prefix="plugin-lab-bench-") as tmp:
        samples = build_rpc_samples(tmp)  # copies of the cached builds, removed at the end
        return [
            pingpong_floor(calls),
            python_host(python_plugin(), "labkit Python host -> Python plugin", calls),
            python_host([samples.plugin], "labkit Python host -> Go plugin", calls),
            go_host(samples, calls),
        ]


def table(timings: Sequence[Timing]) -> str:
    """The timings as a text table, with each one's ratio to the first (the floor)."""
    floor = timings[0].seconds
    width = max(len(t.name) for t in timings)
    lines = [f"{'round trip':<{width}}  {'per call':>10}  {'x floor':>8}"]
    for t in timings:
        lines.append(f"{t.name:<{width}}  {t.seconds * 1e6:>7.1f} µs  {t.seconds / floor:>8.1f}")
    lines.append(f"({timings[0].calls} calls each after {_WARMUP} warm-up calls, one run, "
                 f"{os.cpu_count()} CPUs)")
    return "\n".join(lines)


def main(calls: int, as_json: bool) -> int:
    timings = run(calls)
    if as_json:
        print(json.dumps([asdict(t) for t in timings], indent=2))
    else:
        print(table(timings))
    return 0
