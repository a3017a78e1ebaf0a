"""go-plugin's protocol, as labkit speaks it: the constants, the environment and the
handshake line, in one documented place.

How a host starts a plugin (hashicorp/go-plugin, ``docs/internals.md``, ``client.go``,
``server.go``):

1. The host starts the plugin as a child process with, in its environment, the magic
   cookie (``PLUGIN_LAB_COOKIE=plugin-lab-v1`` for this lab), the app protocol versions it
   accepts (``PLUGIN_PROTOCOL_VERSIONS=1``), and where to put the socket
   (``PLUGIN_UNIX_SOCKET_DIR``).
2. The plugin checks the cookie (a person running it by hand gets a message and exit
   status 1), picks the newest app version both sides know, listens on a Unix socket in a
   private folder, and prints one line on stdout before anything else::

       CORE|APP|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT|MULTIPLEX
       1   |1  |unix   |/tmp/…/plugin.sock|grpc|(empty)|(absent)

   ``CORE`` is go-plugin's own protocol version, always 1. A line of only four fields means
   ``netrpc``. ``SERVER-CERT`` (base64 DER) is only there with AutoMTLS, ``MULTIPLEX`` only
   when the host asked for broker multiplexing.
3. The host connects with gRPC and checks the health service for the name ``plugin``. Every
   go-plugin plugin also serves ``plugin.GRPCController/Shutdown`` (exit cleanly),
   ``plugin.GRPCStdio/StreamStdio`` (the plugin's stdout and stderr) and
   ``plugin.GRPCBroker/StartStream``; its logs go to the real stderr as hclog JSON lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import HandshakeError, InputError

#: go-plugin's own protocol version: the first field of the handshake line.
CORE_PROTOCOL_VERSION = 1

ENV_VERSIONS = "PLUGIN_PROTOCOL_VERSIONS"
ENV_SOCKET_DIR = "PLUGIN_UNIX_SOCKET_DIR"
ENV_MIN_PORT = "PLUGIN_MIN_PORT"
ENV_MAX_PORT = "PLUGIN_MAX_PORT"
#: go-plugin's AutoMTLS: the host's certificate (PEM), handed to the plugin.
ENV_CLIENT_CERT = "PLUGIN_CLIENT_CERT"

#: Why labkit takes no part in go-plugin's AutoMTLS (measured with grpcio 1.85.1 against
#: go-plugin 1.8.0; go-plugin's mtls.go makes both certificates on P-521).
AUTOMTLS_WHY = (
    "go-plugin's AutoMTLS certificates are ECDSA P-521, and the BoringSSL inside grpcio does "
    "not offer ecdsa_secp521r1_sha512 among the signature algorithms it accepts, so Go finds "
    "no algorithm both sides share: as the server it aborts the TLS handshake, as the client "
    "it sends no certificate")

#: The name under which every go-plugin plugin reports SERVING on the gRPC health service.
HEALTH_SERVICE = "plugin"
SHUTDOWN_METHOD = "/plugin.GRPCController/Shutdown"
STDIO_METHOD = "/plugin.GRPCStdio/StreamStdio"
BROKER_METHOD = "/plugin.GRPCBroker/StartStream"

#: The lab's app protocol (plugins/proto/transformer.proto).
TRANSFORM_SERVICE = "pluginlab.v1.HeaderTransformer"
TRANSFORM_METHOD = f"/{TRANSFORM_SERVICE}/Transform"
PLUGIN_NAME = "transformer"
LANG_HEADER = "x-plugin-lang"

#: A Unix socket's path must fit in sun_path: 108 bytes including the final NUL.
MAX_SOCKET_PATH = 107
#: The longest handshake line a host reads; a server certificate is about 1 KiB of base64.
MAX_HANDSHAKE_LINE = 16 * 1024

_NUMBER = re.compile(r"[0-9]{1,9}")
_NETWORKS = ("unix", "tcp")
_PROTOCOLS = ("grpc", "netrpc")
#: Go's strconv.ParseBool, which go-plugin uses for the seventh field.
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


@dataclass(frozen=True)
class Handshake:
    """What host and plugin agree on before they start: the magic cookie and the app
    protocol versions. A plugin started without the cookie refuses to run."""

    cookie_key: str
    cookie_value: str
    versions: tuple[int, ...]

    def environment(self, versions: tuple[int, ...] | None = None) -> dict[str, str]:
        """The variables a host sets for the plugin (the socket folder is added per start)."""
        offered = versions if versions is not None else self.versions
        return {
            self.cookie_key: self.cookie_value,
            ENV_VERSIONS: ",".join(str(v) for v in offered),
            ENV_MIN_PORT: "10000",
            ENV_MAX_PORT: "25000",
        }


#: Plugin Lab's handshake: every host and plugin of the lab uses it.
LAB_HANDSHAKE = Handshake("PLUGIN_LAB_COOKIE", "plugin-lab-v1", (1,))


@dataclass(frozen=True)
class HandshakeLine:
    """The line a plugin prints on stdout to say where and how to reach it."""

    core_version: int
    app_version: int
    network: str  # "unix" or "tcp"
    address: str
    protocol: str  # "grpc" or "netrpc"
    server_cert: str = ""
    multiplex: bool | None = None  # the seventh field, when present

    def __str__(self) -> str:
        fields = [str(self.core_version), str(self.app_version), self.network, self.address,
                  self.protocol, self.server_cert]
        if self.multiplex is not None:
            fields.append("true" if self.multiplex else "false")
        return "|".join(fields)


def parse_handshake(line: str) -> HandshakeLine:
    """Read a plugin's handshake line; raise :class:`HandshakeError` for anything else.

    ``reason`` on the error is ``empty``, ``too-long``, ``garbage`` (not the shape of a
    handshake), ``core-version`` (a go-plugin core protocol other than 1), ``network`` or
    ``protocol`` (a value go-plugin does not define). Whether the app version and the
    protocol suit the host is the host's decision, not the parser's.
    """
    text = line.strip()
    if not text:
        raise HandshakeError(
            "the plugin's first line on stdout is empty", fix="a go-plugin plugin prints its "
            "handshake line (1|APP-VERSION|unix|SOCKET|grpc|) before anything else",
            line=line, reason="empty")
    if len(text) > MAX_HANDSHAKE_LINE:
        raise HandshakeError(
            f"the plugin's first line on stdout is longer than {MAX_HANDSHAKE_LINE} "
            f"characters, so it is not a handshake line; it begins {text[:40]!r}",
            fix="the plugin must print its handshake line before any other output",
            line=line[:200], reason="too-long")
    parts = text.split("|")
    shape = _shape_problem(parts)
    if shape:
        raise HandshakeError(
            f"{_quote(text)} is not a go-plugin handshake line ({shape}); expected "
            "CORE|APP|NETWORK|ADDRESS|PROTOCOL[|SERVER-CERT[|MULTIPLEX]], e.g. "
            "'1|1|unix|/tmp/plugin-x/plugin.sock|grpc|'", fix="the plugin printed something "
            "on stdout before its handshake, or it is not a go-plugin plugin",
            line=line, reason="garbage")
    core, app, network, address = int(parts[0]), int(parts[1]), parts[2], parts[3]
    if core != CORE_PROTOCOL_VERSION:
        raise HandshakeError(
            f"the plugin speaks go-plugin core protocol {core}, labkit speaks "
            f"{CORE_PROTOCOL_VERSION} (line {_quote(text)})", fix="rebuild the plugin with a "
            "go-plugin release whose core protocol is 1 (every release so far)",
            line=line, reason="core-version")
    if network not in _NETWORKS:
        raise HandshakeError(
            f"the plugin listens on network {network!r}, which go-plugin does not define "
            f"(it uses 'unix' or 'tcp'); line {_quote(text)}", fix="the plugin must listen on "
            "a Unix socket or TCP",
            line=line, reason="network")
    protocol = parts[4] if len(parts) >= 5 else "netrpc"
    if protocol not in _PROTOCOLS:
        raise HandshakeError(
            f"the plugin speaks protocol {protocol!r}, which go-plugin does not define "
            f"(it uses 'grpc' or 'netrpc'); line {_quote(text)}", fix="serve the plugin with "
            "go-plugin's GRPCServer, or labkit.rpc.serve",
            line=line, reason="protocol")
    return HandshakeLine(
        core_version=core, app_version=app, network=network, address=address,
        protocol=protocol, server_cert=parts[5] if len(parts) >= 6 else "",
        multiplex=_BOOLS[parts[6]] if len(parts) == 7 else None,
    )


class Negotiated(NamedTuple):
    """The outcome of :func:`negotiate`."""

    version: int  # the app protocol version the plugin serves
    agreed: bool  # False: nothing in common, the host will refuse the plugin's oldest
    ignored: list[str]  # entries of the host's list that are not numbers


def negotiate(offered: str | None, supported: tuple[int, ...]) -> Negotiated:
    """The app protocol version a plugin serves, as go-plugin's server picks it.

    ``offered`` is ``PLUGIN_PROTOCOL_VERSIONS`` (``"1,2"``), ``supported`` the plugin's own
    versions. The newest version both know wins; with none in common the plugin serves its
    oldest and leaves it to the host to refuse.
    """
    ignored: list[str] = []
    wanted: set[int] = set()
    for entry in (offered or "").split(","):
        if not entry:
            continue
        if _NUMBER.fullmatch(entry.strip()):
            wanted.add(int(entry.strip()))
        else:
            ignored.append(entry)
    common = sorted(wanted & set(supported))
    return Negotiated(common[-1] if common else min(supported), bool(common), ignored)


def _shape_problem(parts: list[str]) -> str:
    if len(parts) < 4:
        return f"{len(parts)} field{'s' if len(parts) != 1 else ''}, at least 4 needed"
    if len(parts) > 7:
        return f"{len(parts)} fields, at most 7"
    if not _NUMBER.fullmatch(parts[0]) or not _NUMBER.fullmatch(parts[1]):
        return "the first two fields must be version numbers"
    if not parts[3]:
        return "the address is empty"
    if len(parts) == 7 and parts[6] not in _BOOLS:
        return f"the seventh field must be true or false, not {parts[6]!r}"
    return ""


def _quote(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


@dataclass(frozen=True)
class Reattach:
    """Where a running plugin listens, for a host that did not start it: go-plugin's
    ``ReattachConfig``, read and written in the JSON shape of Terraform's
    ``TF_REATTACH_PROVIDERS``::

        {"transformer": {"Protocol": "grpc", "ProtocolVersion": 1, "Pid": 4242,
                         "Test": true, "Addr": {"Network": "unix", "String": "/tmp/…"}}}

    ``test`` is go-plugin's test mode: the plugin ends itself, so a host that attached only
    disconnects; without it the attached host stops the plugin as if it had started it.
    """

    pid: int
    network: str
    address: str
    protocol: str = "grpc"
    version: int = 1
    test: bool = False

    @classmethod
    def from_line(cls, line: HandshakeLine, pid: int, *, test: bool = False) -> Reattach:
        """The reattach information of a plugin whose handshake line and PID are known."""
        return cls(pid, line.network, line.address, line.protocol, line.app_version, test)

    def to_json(self, name: str = PLUGIN_NAME) -> str:
        return json.dumps({name: {
            "Protocol": self.protocol, "ProtocolVersion": self.version, "Pid": self.pid,
            "Test": self.test, "Addr": {"Network": self.network, "String": self.address}}})

    @classmethod
    def from_json(cls, text: str, name: str = PLUGIN_NAME) -> Reattach:
        """Read the JSON above; raise :class:`InputError` naming what is wrong."""
        example = ('{"transformer": {"Protocol": "grpc", "ProtocolVersion": 1, "Pid": 4242, '
                   '"Test": true, "Addr": {"Network": "unix", "String": "/tmp/x/plugin.sock"}}}')
        fix = f"pass the line the plugin printed in debug mode, shaped like {example}"
        try:
            entry = json.loads(text)[name]
            address = entry["Addr"]
            found = cls(pid=entry["Pid"], network=address["Network"], address=address["String"],
                        protocol=entry.get("Protocol") or "netrpc",
                        version=entry.get("ProtocolVersion", 0), test=entry.get("Test", False))
        except json.JSONDecodeError as exc:
            raise InputError(f"the reattach information is not JSON ({exc.msg} at character "
                             f"{exc.pos}): {_quote(text)}", fix=fix) from None
        except (KeyError, TypeError) as exc:
            missing = f"no {exc}" if isinstance(exc, KeyError) else "a value of the wrong type"
            raise InputError(f"the reattach information for {name!r} has {missing}: "
                             f"{_quote(text)}", fix=fix) from None
        if not isinstance(found.pid, int) or found.pid <= 0 or found.network not in _NETWORKS:
            raise InputError(f"the reattach information for {name!r} names pid {found.pid!r} "
                             f"and network {found.network!r}: {_quote(text)}",
                             fix="Pid must be a process id, Network 'unix' or 'tcp'")
        return found
