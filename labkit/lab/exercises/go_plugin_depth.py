"""Exercises of notebook 12, go-plugin in depth: a plugin that calls its host back through
the broker, and a sandbox that lets a plugin do its job and nothing more. The judges start
the learner's plugin or sandbox with :class:`labkit.PluginClient` and call it for real."""

from __future__ import annotations

import errno
import re
import socket
from pathlib import Path
from typing import Any

from ...errors import RPCPluginError
from ...rpc.broker import Counter
from ...rpc.client import PluginClient
from ...rpc.sandbox import Sandbox
from ...samples.rpc import PY_SNOOP, python_plugin
from .framework import Exercise, RefusedError
from .rpc import first_line, plugin_script, started

#: The hosts 12.1's judge visits, in order, and the count each visit must report.
VISITS = (("a.example", 1), ("b.example", 1), ("a.example", 2))


def counts_in_the_host(answer: Any) -> str:
    script = plugin_script(answer)
    counter = Counter()
    seen = []
    for restart in (False, True):
        client = started(script)
        try:
            visits = VISITS if not restart else (("a.example", 3),)
            for host, expected in visits:
                try:
                    reply = client.transform({"host": host}, counter=counter)
                except RPCPluginError as error:
                    raise RefusedError(f"calling it: {first_line(error)}") from None
                seen.append(reply.get("x-visit"))
                if reply.get("host") != host:
                    raise RefusedError(f"the answer to host {host!r} lost its host header: "
                                       f"{reply}")
                if reply.get("x-visit") != str(expected):
                    where = " by a fresh plugin process" if restart else ""
                    raise RefusedError(
                        f"visit {len(seen)} (host {host!r}) was answered{where} with x-visit "
                        f"{reply.get('x-visit')!r}, not {str(expected)!r}; the host's counter "
                        f"holds {counter.counts}")
        finally:
            client.close()
    if counter.counts.get("a.example") != 3:
        raise RefusedError(f"the answers were right but the host's counter holds "
                           f"{counter.counts}: count in the host, by host name")
    return (f"x-visit was {', '.join(str(s) for s in seen)} over 4 calls and 2 plugin "
            f"processes; the host's counter holds {counter.counts}")


def inbox_and_outbox(answer: Any) -> str:
    if not isinstance(answer, Sandbox):
        raise RefusedError(f"expected a labkit.rpc.Sandbox; got {type(answer).__name__}")
    build = Path("build").resolve()
    inbox, outbox = build / "inbox", build / "outbox"
    for folder in (inbox, outbox):
        if not folder.is_dir():
            raise RefusedError(f"there is no folder {folder.relative_to(build.parent)} to "
                               "judge the sandbox with: create it")
    (inbox / "judge.txt").write_text("for the plugin to read\n")
    (build / "elsewhere.txt").write_text("not for the plugin\n")
    (outbox / "judge-out.txt").unlink(missing_ok=True)
    listener = socket.create_server(("127.0.0.1", 0))
    attempts = {
        "read inbox/judge.txt": ("read", inbox / "judge.txt", True),
        "write outbox/judge-out.txt": ("write", outbox / "judge-out.txt", True),
        "read elsewhere.txt": ("read", build / "elsewhere.txt", False),
        "write inbox/judge-out.txt": ("write", inbox / "judge-out.txt", False),
        "connect to 127.0.0.1": ("connect", f"127.0.0.1:{listener.getsockname()[1]}", False),
    }
    client = PluginClient(python_plugin(PY_SNOOP), sandbox=answer, start_timeout=30,
                          call_timeout=15, grace=2)
    try:
        client.start()
        outcomes = {what: client.transform({key: str(target)})[key]
                    for what, (key, target, _) in attempts.items()}
    except RPCPluginError as error:
        raise RefusedError(f"the snoop plugin in your sandbox: {first_line(error)}") from None
    finally:
        client.close()
        listener.close()
    for what, (_, _, allowed) in attempts.items():
        if outcomes[what].startswith("ok") != allowed:
            raise RefusedError(f"{what}: {outcomes[what]} (it should be "
                               f"{'allowed' if allowed else 'refused'})")
    refused = ", ".join(f"{what} ({_errno(outcomes[what])})" for what in list(attempts)[2:])
    return (f"in your sandbox the plugin read build/inbox and wrote build/outbox; it was "
            f"refused: {refused}")


def _errno(outcome: str) -> str:
    """``EACCES`` for "refused, PermissionError [Errno 13] ...", else the outcome."""
    found = re.search(r"\[Errno (\d+)\]", outcome)
    return errno.errorcode.get(int(found[1]), outcome) if found else outcome


EXERCISES = [
    Exercise(
        "12.1",
        "Write a plugin script that adds x-visit: how many requests with this host value "
        "the host's counter counted (first: 1).",
        ("The count must outlive the plugin process: the judge restarts it halfway.",
         "Section 3 (The broker): callback_plugin.py, and the Call its transform receives."),
        counts_in_the_host),
    Exercise(
        "12.2",
        "Give a labkit.rpc.Sandbox in which a plugin reads build/inbox, writes build/outbox, "
        "and reaches no more of build, nor TCP.",
        ("A sandbox starts from what a plugin needs to start; add only what it may touch.",
         "Section 5 and help(labkit.rpc.Sandbox): read= and write= take absolute paths."),
        inbox_and_outbox),
]
