"""Exercises of notebook 06, RPC plugins: the learner writes Python plugin scripts; the
judges start each with :class:`labkit.PluginClient` (the plugin is a process of its own, so it
cannot hurt the kernel; start and call timeouts bound a plugin that hangs) and call it with
requests they pick."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import RPCPluginError
from ...rpc.client import PluginClient
from ...samples.rpc import python_plugin
from .framework import Exercise, RefusedError
from .judging import built_file

_SCRIPT = "the path of your plugin script (a .py file, like transformer_plugin.py)"


def plugin_script(answer: Any) -> Path:
    path = built_file(answer, _SCRIPT)
    if path.suffix != ".py":
        raise RefusedError(f"expected {_SCRIPT}; got {path.name}")
    return path


def started(script: Path, **options: Any) -> PluginClient:
    """The plugin, started by a host with the lab's handshake; a start that fails is the
    learner's to see, in the host's words."""
    client = PluginClient(python_plugin(script), start_timeout=30, call_timeout=15, grace=2,
                          **options)
    try:
        return client.start()
    except RPCPluginError as error:
        raise RefusedError(f"a host could not start it: {first_line(error)}") from None


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


def keeps(request: Mapping[str, str], answer: Mapping[str, str]) -> str | None:
    """The first request header the answer lost or changed, if any."""
    return next((key for key, value in request.items() if answer.get(key) != value), None)


REQUESTS = tuple({"host": "judge.example", "x-call": str(i), "accept": "text/plain"}
                 for i in range(3))


def _calls(client: PluginClient, requests: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    try:
        return [client.transform(request) for request in requests]
    except RPCPluginError as error:
        raise RefusedError(f"calling it: {first_line(error)}") from None


def request_id(answer: Any) -> str:
    client = started(plugin_script(answer))
    try:
        answers = _calls(client, REQUESTS)
    finally:
        client.close()
    for request, reply in zip(REQUESTS, answers, strict=True):
        lost = keeps(request, reply)
        if lost is not None:
            raise RefusedError(f"the answer to {request} lost or changed the header {lost!r}: "
                               f"{reply}")
        if not reply.get("x-request-id"):
            raise RefusedError(f"the answer has no x-request-id: {reply}")
    ids = [reply["x-request-id"] for reply in answers]
    if len(set(ids)) != len(ids):
        raise RefusedError(f"x-request-id was {ids} over {len(ids)} calls: an id must differ from "
                           "call to call")
    return (f"{len(ids)} calls each kept the request's headers and got an x-request-id of "
            "its own")


def error_not_crash(answer: Any) -> str:
    client = started(plugin_script(answer))
    try:
        pid = client.pid
        try:
            reply = client.transform({"path": "/", "accept": "text/plain"})
        except RPCPluginError as error:
            if not client.alive:
                raise RefusedError(f"the request without host killed the plugin process: "
                                   f"{first_line(error)}") from None
            said = f"an error ({error.status})" if error.status else "an error"
        else:
            raise RefusedError(
                f"it answered {reply} to a request without host: it should refuse it")
        good = {"host": "judge.example", "path": "/"}
        reply = _calls(client, [good])[0]
        if client.pid != pid:
            raise RefusedError("the plugin answered the next request from another process")
        lost = keeps(good, reply)
        if lost is not None:
            raise RefusedError(f"the answer to {good} lost or changed {lost!r}: {reply}")
    finally:
        client.close()
    return (f"the request without host got {said} from the plugin, and the same plugin process "
            "answered the next request")


def speaks_version_2(answer: Any) -> str:
    script = plugin_script(answer)
    old = PluginClient(python_plugin(script), versions=[1], start_timeout=30, grace=2)
    try:
        old.start()
    except RPCPluginError as error:
        if error.stage != "handshake":
            raise RefusedError(f"a host offering version 1 could not start it: "
                               f"{first_line(error)}") from None
    else:
        chose = old.line.app_version if old.line else "?"
        raise RefusedError(f"a host offering only version 1 started it (it chose app protocol "
                           f"version {chose}): a version-2 plugin must be refused there")
    finally:
        old.close()
    client = started(script, versions=[2])
    try:
        version = client.line.app_version if client.line else None
        reply = _calls(client, [{"host": "judge.example"}])[0]
    finally:
        client.close()
    if version != 2:
        raise RefusedError(
            f"a host offering version 2 started it, but its handshake said {version}")
    if reply.get("host") != "judge.example":
        raise RefusedError(f"a host offering version 2 called it and got {reply}")
    return ("a host offering version 2 started and called it; a host offering version 1 "
            "refused it at the handshake")


EXERCISES = [
    Exercise(
        "06.1",
        "Write a plugin script whose answers keep the request's headers and add an "
        "x-request-id that differs from call to call.",
        ("The host sees only what your function returns, for every request it sends.",
         "Section 2 (transformer_plugin.py and labkit.rpc.serve); any value unique per "
         "call will do."),
        request_id),
    Exercise(
        "06.2",
        "Write a plugin script that refuses a request without a host header with an error, "
        "and answers the next request.",
        ("A crash ends the plugin for every request after it; an error ends only this one.",
         "Section 4 (A plugin that crashes in the middle of a call) against "
         "labkit.rpc.serve: what it does when your function raises."),
        error_not_crash),
    Exercise(
        "06.3",
        "Write a plugin script for app protocol version 2: a host offering [2] starts it, "
        "a host offering [1] refuses it.",
        ("Each side says which app protocol versions it speaks; the plugin says it to "
         "serve.",
         "Section 6 (Versions), help(labkit.rpc.serve) and labkit.rpc.LAB_HANDSHAKE."),
        speaks_version_2),
]
