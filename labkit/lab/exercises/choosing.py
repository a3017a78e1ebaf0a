"""Exercises of notebook 08, choosing a plugin model: the learner writes a plugin that takes
a batch and a host that starts its plugin once; the judges run them. A timing is judged by a
ratio measured in one run, with a wide margin, never by an absolute figure; a count is
judged exactly."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from ...errors import RPCPluginError
from ...isolate import run_program
from .framework import Exercise, RefusedError
from .judging import built_file, said, workspace
from .rpc import first_line, keeps, plugin_script, started

#: Header maps in one batch, and how much cheaper per map a batch must be than a call.
BATCH = 100
FACTOR = 5


def fastest(operations: dict[str, tuple[Callable[[], Any], int]], rounds: int = 9
            ) -> dict[str, float]:
    """Seconds per operation of each of ``operations`` (name: operation, how many per run),
    the fastest of ``rounds`` runs. The runs take turns, so a busy moment of the machine
    slows both sides alike, and the fastest run is the one least disturbed."""
    best = dict.fromkeys(operations, float("inf"))
    for _ in range(rounds):
        for name, (operation, number) in operations.items():
            start = time.perf_counter()
            for _ in range(number):
                operation()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def _transformed(request: dict[str, str], reply: Any, where: str) -> None:
    if not isinstance(reply, dict):
        raise RefusedError(f"{where} is {reply!r}, not a header map")
    lost = keeps(request, reply)
    if lost is not None or not reply.get("x-transformed-by"):
        raise RefusedError(f"{where} is {reply}: it should keep {request} and add x-transformed-by")


def batched(answer: Any) -> str:
    client = started(plugin_script(answer))
    single = {"host": "judge.example"}
    items = [{"host": f"h{i}.example", "x-item": str(i)} for i in range(BATCH)]
    request = {"batch": json.dumps(items)}
    try:
        _transformed(single, client.transform(single), "the answer to a single request")
        reply = client.transform(request)
        try:
            answers = json.loads(reply["batch"])
        except (KeyError, ValueError):
            raise RefusedError(f"the answer to a batch request has no JSON list in 'batch': "
                               f"{str(reply)[:120]}") from None
        if not isinstance(answers, list) or len(answers) != BATCH:
            raise RefusedError(
                f"a batch of {BATCH} maps came back as {str(answers)[:80]}, not a list "
                f"of {BATCH}")
        for i, (item, got) in enumerate(zip(items, answers, strict=True)):
            _transformed(item, got, f"item {i} of the batch's answer")
        seconds = fastest({"one": (lambda: client.transform(single), 10),
                           "batch": (lambda: client.transform(request), 2)})
    except RPCPluginError as error:
        raise RefusedError(f"calling it: {first_line(error)}") from None
    finally:
        client.close()
    one, per_item = seconds["one"], seconds["batch"] / BATCH
    if per_item * FACTOR >= one:
        raise RefusedError(
            f"per map, a batch of {BATCH} cost {per_item * 1e6:.1f} µs, a single call "
            f"{one * 1e6:.1f} µs: not {FACTOR} times less")
    return (f"the answers were right, and per map a batch of {BATCH} cost less than "
            f"1/{FACTOR} of a single call")


#: Texts the host sends; the judge's plugin answers each reversed with a "!".
HOST_TEXTS = ("alpha", "beta", "two words", "delta", "", "zeta", "eta", "theta")
_COUNTING = """
import os
from labkit.rpc import serve

with open({starts!r}, "a") as record:
    record.write(f"{{os.getpid()}}\\n")


def transform(headers):
    return {{"text": headers.get("text", "")[::-1] + "!"}}


serve(transform)
"""


def starts_once(answer: Any) -> str:
    host = built_file(answer, "the path of your host script (a .py file)")
    with workspace() as tmp:
        starts = tmp / "starts.txt"
        plugin = tmp / "counting_plugin.py"
        plugin.write_text(_COUNTING.format(starts=str(starts)))
        outcome = run_program([sys.executable, host.resolve(), plugin, *HOST_TEXTS], cwd=tmp,
                              timeout=300)
        count = len(starts.read_text().splitlines()) if starts.exists() else 0
    if not outcome.ok:
        raise RefusedError(f"your host, run on {len(HOST_TEXTS)} texts: {said(outcome, 2)}")
    printed = outcome.stdout.splitlines()
    expected = [text[::-1] + "!" for text in HOST_TEXTS]
    if printed != expected:
        raise RefusedError(f"your host printed {printed[:4]}{'...' if len(printed) > 4 else ''}, "
                           f"where the plugin's answers were {expected[:4]}...")
    if count != 1:
        raise RefusedError(
            f"your host started the plugin {count} times for {len(HOST_TEXTS)} texts")
    return (f"your host started the plugin once and sent it all {len(HOST_TEXTS)} texts; "
            "every answer was right")


EXERCISES = [
    Exercise(
        "08.1",
        "Write a plugin script that also takes a batch of header maps in one request, per "
        "map far cheaper than a call.",
        ("A call's cost is mostly the round trip, not the work: carry more work per round "
         "trip.",
         "Section 2 (What holds on any machine): the RPC and floor figures; notebook 06's "
         "transformer_plugin.py, and Python's json module."),
        batched),
    Exercise(
        "08.2",
        "Write a host script that starts the plugin it is given once and sends it every "
        "text; the check counts the starts.",
        ("Count what your host pays per text: one call, or one start and one call?",
         "Section 1's start-up figures; notebook 06's PluginClient (start once, call many, "
         "close at the end) and labkit.python_plugin."),
        starts_once),
]
