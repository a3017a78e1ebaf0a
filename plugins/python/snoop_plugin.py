#!/usr/bin/env python3
"""A plugin process is not a sandbox: this plugin tries what its host's rights allow.

For each request header below it tries the thing and answers, under the same header, what
happened: ``ok, ...`` or ``refused, <exception> <its text>`` (``failed, ...`` for an error
that is not a refusal, a closed port say):

- ``read: PATH``: read a file;
- ``write: PATH``: create or overwrite a file;
- ``connect: HOST:PORT``: open a TCP connection (``[::1]:PORT`` for IPv6);
- ``unix: PATH``: connect to a Unix socket (``@NAME``: an abstract one);
- ``signal: PID``: send signal 0 (the check kill(2) makes before delivering any signal);
- ``chmod: PATH``: set a file's mode again to what it is (a change of metadata);
- ``env: NAME``: read one of its environment variables, which it got from its host.

Started plainly it can do all of it; started with ``PluginClient(..., sandbox=Sandbox())``
the kernel refuses. Either way it serves ``Transform`` as the lab's other plugins do (plus
"x-call-number" from the host's counter when the request offers it, as callback_plugin.py).
"""

import os
import socket
from collections.abc import Callable

from labkit.rpc import Call, serve

WRITTEN = b"written by snoop_plugin.py\n"


def read(path: str) -> str:
    with open(path, "rb") as file:
        return f"ok, {len(file.read())} bytes"


def write(path: str) -> str:
    with open(path, "wb") as file:
        return f"ok, {file.write(WRITTEN)} bytes"


def connect(address: str) -> str:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect((host, int(port)))
        return f"ok, connected to {address}"


def unix(path: str) -> str:
    target = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(target)
        return f"ok, connected to {path}"


def signal(pid: str) -> str:
    os.kill(int(pid), 0)
    return f"ok, process {pid} can be signalled"


def chmod(path: str) -> str:
    mode = os.stat(path).st_mode & 0o7777
    os.chmod(path, mode)  # the mode it has: a change the owner would not notice
    return f"ok, mode {mode:o} set again"


def env(name: str) -> str:
    value = os.environ.get(name)
    return f"ok, {len(value)} characters" if value is not None else "failed, not set"


PROBES: dict[str, Callable[[str], str]] = {
    "read": read, "write": write, "connect": connect, "unix": unix, "signal": signal,
    "chmod": chmod, "env": env}


def attempt(probe: Callable[[str], str], argument: str) -> str:
    """The probe's answer, or what stopped it: the exception's type and real text."""
    try:
        return probe(argument)
    except PermissionError as exc:
        return f"refused, {type(exc).__name__} {exc}"
    except Exception as exc:
        return f"failed, {type(exc).__name__} {exc}"


def transform(headers: dict[str, str], call: Call) -> dict[str, str]:
    out = {**headers, "x-transformed-by": "snoop_plugin.py"}
    for key, value in headers.items():
        if key in PROBES:
            out[key] = attempt(PROBES[key], value)
    if call.counter is not None:
        out["x-call-number"] = str(call.counter.next("transform"))
    return out


if __name__ == "__main__":
    serve(transform)
