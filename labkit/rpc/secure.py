"""go-plugin's SecureConfig: a host that starts a plugin only if the plugin's file is the one
it expects, by SHA-256.

go-plugin (``client.go``, ``SecureConfig.Check``) hashes the executable it is about to start
and refuses to start it when the sum differs (``checksums did not match``). It checks the
file, then starts it by its path: whoever can replace the file between the two wins, so the
folder must be writable only by those the host trusts. It checks the executable, which for a
script is its interpreter; labkit checks the script instead (:meth:`PluginClient._program`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

from ..errors import RPCPluginError
from ..paths import show

_HEX = re.compile(r"[0-9a-fA-F]{64}")


def checksum(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, as 64 hex digits: what a host pins for a plugin it trusts."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_problem(text: str) -> str:
    """What is wrong with ``text`` as a SHA-256 in hex, or ``""``."""
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        return "is not a SHA-256: 64 hex digits are expected"
    return ""


def verify(program: str, expected: str, command: Sequence[str]) -> None:
    """Raise :class:`RPCPluginError` (stage ``verify``) unless the file ``program`` has the
    SHA-256 ``expected``. Nothing is started either way."""
    try:
        found = checksum(program)
    except OSError as exc:
        raise RPCPluginError(
            f"cannot check plugin {show(program)!r} against its checksum: {exc.strerror}",
            fix="check the plugin's path", stage="verify", command=command) from exc
    if found != expected.lower():
        raise RPCPluginError(
            f"plugin {show(program)!r} is not the file the host trusts: its SHA-256 is "
            f"{found[:16]}…, the host expects {expected.lower()[:16]}…. The host did not start "
            "it", fix="if you changed or rebuilt the plugin on purpose, give the host its new "
            "checksum (labkit.rpc.checksum(path)); otherwise do not run this file",
            stage="verify", command=command)
