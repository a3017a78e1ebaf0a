"""The lab's RPC plugins and hosts: where they live, how to build and start them.

- ``plugins/python/transformer_plugin.py``: the Python plugin (:func:`python_plugin`).
- ``plugins/python/callback_plugin.py``: the Python plugin that calls its host's counter
  back through go-plugin's broker and can be started by hand (``--debug``).
- ``plugins/python/snoop_plugin.py``: a plugin that tries to read and write the host's files,
  reach the network and signal processes, for the sandbox.
- ``plugins/python/pyvider_plugin.py``: the same transformer served by pyvider-rpcplugin,
  for ``bench rpc``.
- ``plugins/python/faulty_plugin.py MODE``: a plugin that misbehaves on purpose
  (:func:`faulty_plugin`).
- ``plugins/go/goplugin/``: a Go module that requires hashicorp/go-plugin from the Go module
  proxy, with a Go plugin (``plugin``) and a Go host (``host``) (:func:`build_rpc_samples`,
  :func:`run_go_rpc_host`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..build.c import Artifact
from ..build.go import build_go
from ..errors import InputError
from ..isolate import Outcome, run_program
from ..paths import PLUGINS_GO, PLUGINS_PY

if TYPE_CHECKING:  # labkit.rpc imports grpc, which these helpers do not need
    from ..rpc.protocol import Reattach

#: The Go module of the RPC samples (its own go.mod, requiring hashicorp/go-plugin).
GOPLUGIN_MODULE = PLUGINS_GO / "goplugin"
PY_TRANSFORMER = PLUGINS_PY / "transformer_plugin.py"
#: The Python plugin that calls its host back through the broker and takes --debug.
PY_CALLBACK = PLUGINS_PY / "callback_plugin.py"
#: The plugin that tries the host's files, the network and signals (not a sandbox).
PY_SNOOP = PLUGINS_PY / "snoop_plugin.py"
#: The transformer served by pyvider-rpcplugin, another go-plugin server for Python.
PY_PYVIDER = PLUGINS_PY / "pyvider_plugin.py"
FAULTY_PLUGIN = PLUGINS_PY / "faulty_plugin.py"
FAULTS = ("exit-early", "junk", "silent", "flood", "crash-on-call", "ignore-shutdown",
          "chatty", "wrong-core", "netrpc", "raise")


@dataclass(frozen=True)
class RpcSamples:
    """The built Go side: a go-plugin host and a go-plugin plugin."""

    host: Artifact
    plugin: Artifact


def build_rpc_samples(out_dir: str | os.PathLike[str] = "build/rpc") -> RpcSamples:
    """Build ``plugins/go/goplugin``'s host and plugin (cached; the first build downloads
    go-plugin and gRPC from the Go module proxy unless ``warm`` did)."""
    out = Path(out_dir)
    return RpcSamples(
        host=build_go("host", "go-host", module=GOPLUGIN_MODULE, out_dir=out),
        plugin=build_go("plugin", "go-transformer", module=GOPLUGIN_MODULE, out_dir=out),
    )


def python_plugin(script: str | os.PathLike[str] = PY_TRANSFORMER, *args: str) -> list[str]:
    """The command line that starts a Python plugin with this Python."""
    return [sys.executable, os.fspath(script), *args]


def faulty_plugin(mode: str) -> list[str]:
    """The command line of ``faulty_plugin.py MODE`` (see :data:`FAULTS`)."""
    if mode not in FAULTS:
        raise InputError(f"unknown fault {mode!r}",
                         fix=f"use one faulty_plugin.py knows: {', '.join(FAULTS)}")
    return python_plugin(FAULTY_PLUGIN, mode)


def run_go_rpc_host(
    host: str | os.PathLike[str],
    plugin_command: Sequence[str | os.PathLike[str]] = (),
    *,
    headers: Mapping[str, str] | None = None,
    times: int = 1,
    counter: bool = False,
    checksum: str | None = None,
    reattach: Reattach | None = None,
    automtls: bool = False,
    bench: int = 0,
    repeats: int = 1,
    await_stdout: bool = False,
    timeout: float = 60.0,
) -> Outcome:
    """Run the Go host on a plugin's command line, or attached to a running plugin with
    ``reattach``; it prints the last response's headers sorted, one per line (and with
    ``bench`` a timing line per batch of ``bench`` calls, ``repeats`` batches, then
    ``bench: start NS ns``, how long starting the plugin took). ``times`` sends the request
    that many times; ``counter`` offers the host's counter through go-plugin's broker;
    ``checksum`` is go-plugin's SecureConfig (hex SHA-256 of the plugin's executable);
    ``automtls`` go-plugin's AutoMTLS. The
    host's own stderr carries the plugin's stdout and logs; go-plugin copies that stdout
    from a goroutine nothing waits for, so ``await_stdout`` makes the host wait (up to 5 s)
    until some has arrived before it stops the plugin."""
    if (reattach is None) == (not plugin_command):
        raise InputError("give the Go host a plugin command or reattach information, not "
                         "both or neither", fix="pass plugin_command=[...] or reattach=...")
    argv: list[str | os.PathLike[str]] = [host]
    for key, value in (headers or {}).items():
        argv += ["-header", f"{key}={value}"]
    if times != 1:
        argv += ["-times", str(times)]
    if counter:
        argv.append("-counter")
    if checksum is not None:
        argv += ["-checksum", checksum]
    if reattach is not None:
        argv += ["-reattach", reattach.to_json()]
    if automtls:
        argv.append("-automtls")
    if await_stdout:
        argv.append("-await-stdout")
    if bench:
        argv += ["-bench", str(bench), "-repeats", str(repeats)]
    return run_program([*argv, *plugin_command], timeout=timeout)


def response_headers(outcome: Outcome) -> dict[str, str]:
    """The headers the Go host printed (``key: value`` lines), without its timing line."""
    found: dict[str, str] = {}
    for line in outcome.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key != "bench":
            found[key] = value
    return found
