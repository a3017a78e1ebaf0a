"""RPC plugins that speak hashicorp/go-plugin's gRPC protocol, in both roles.

- :func:`serve` (:mod:`.server`): the plugin side; a Python function becomes a plugin that a
  Go host built with go-plugin can start.
- :class:`PluginClient` (:mod:`.client`): the host side; start any go-plugin gRPC plugin
  (Go or Python), call it, watch it, stop it.
- :class:`Sandbox` (:mod:`.sandbox`, launched by :mod:`.confine`): a plugin confined with
  Landlock and seccomp, without root; :mod:`.mtls`: go-plugin's AutoMTLS between labkit
  peers.
- :mod:`.protocol`: the constants and the handshake line; :mod:`.hclog`: the log format;
  :mod:`.broker`: go-plugin's GRPCBroker and the host's counter; :mod:`.secure`: the
  SecureConfig checksum; :mod:`.stubs`: the protobuf messages, generated from
  ``plugins/proto/`` in the build.
"""

import os

# grpc's fork handlers log a line on stderr at every fork while a stream is open (labkit
# forks to start plugins and to isolate crashes); labkit's children never use grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
# grpc's C core logs each failed TLS handshake on stderr at INFO (with a time and a thread id)
# unless told otherwise; labkit's hosts report the failure themselves, in words.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker import Counter, HostCounter
    from .byhand import ByHand, start_by_hand
    from .client import PluginClient, live_plugins, started
    from .hclog import LogRecord
    from .protocol import (
        CORE_PROTOCOL_VERSION,
        LAB_HANDSHAKE,
        LANG_HEADER,
        PLUGIN_NAME,
        Handshake,
        HandshakeLine,
        Reattach,
        negotiate,
        parse_handshake,
    )
    from .sandbox import Sandbox
    from .secure import checksum
    from .server import Call, serve

#: Each public name and its module. Imported on first use: a plugin process needs the
#: server side only, and every module it does not import shortens its start.
_LAZY = {
    "Counter": ".broker", "HostCounter": ".broker",
    "ByHand": ".byhand", "start_by_hand": ".byhand",
    "PluginClient": ".client", "live_plugins": ".client", "started": ".client",
    "LogRecord": ".hclog",
    "CORE_PROTOCOL_VERSION": ".protocol", "LAB_HANDSHAKE": ".protocol",
    "LANG_HEADER": ".protocol", "PLUGIN_NAME": ".protocol", "Handshake": ".protocol",
    "HandshakeLine": ".protocol", "Reattach": ".protocol", "negotiate": ".protocol",
    "parse_handshake": ".protocol",
    "Sandbox": ".sandbox",
    "checksum": ".secure",
    "Call": ".server", "serve": ".server",
}


#: The modules a notebook reaches as ``labkit.rpc.NAME``, imported on first use too.
_MODULES = ("mtls", "sandbox")


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'labkit.rpc' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_MODULES})


__all__ = [
    "CORE_PROTOCOL_VERSION",
    "ByHand",
    "LAB_HANDSHAKE",
    "LANG_HEADER",
    "PLUGIN_NAME",
    "Call",
    "Counter",
    "Handshake",
    "HandshakeLine",
    "HostCounter",
    "LogRecord",
    "PluginClient",
    "Reattach",
    "Sandbox",
    "checksum",
    "live_plugins",
    "mtls",
    "negotiate",
    "parse_handshake",
    "sandbox",
    "serve",
    "start_by_hand",
    "started",
]
