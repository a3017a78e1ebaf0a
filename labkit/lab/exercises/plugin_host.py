"""Exercises of notebook 03, a plugin host: the learner writes plugins for
``plugins/c/plugin_api.h``; the judges copy each into a plugin folder of their own and load it
with :class:`labkit.PluginHost` in a child process, on inputs they pick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import PluginError
from ...inprocess.host import PluginHost, plugin_id
from ...isolate import Outcome
from ...isolate import run as run_isolated
from ...paths import tidy
from .framework import Exercise, RefusedError
from .judging import built_file, copy_into, said, workspace

_PLUGIN = "your plugin (what labkit.build_shared returned)"
#: Texts the reversing plugin gets; the last is longer than the host's first buffer (256).
TEXTS = ("ABI", "hello, plugins", "", "x", "0123456789abcdef" * 20)


def in_plugin_folder(answer: Any, tmp: Path) -> tuple[Path, str]:
    """Copy the learner's plugin into a plugin folder of the judge's, named as the host wants
    (``lib<id>.so``); return the folder and the id."""
    path = built_file(answer, _PLUGIN)
    pid = plugin_id(path)
    copy_into(path, tmp / "plugins", f"lib{pid}.so")
    return tmp / "plugins", pid


def _refusal(outcome: Outcome, folder: Path) -> str:
    """What the child said, with the judge's folder out of the way."""
    return said(outcome).replace(tidy(str(folder)) + "/", "")


def _transform_all(folder: Path, pid: str, texts: tuple[str, ...]) -> list[str]:
    plugin = PluginHost(folder).load(pid)
    try:
        return [plugin.transform(text) for text in texts]
    finally:
        plugin.close()


def reverses(answer: Any) -> str:
    with workspace() as tmp:
        folder, pid = in_plugin_folder(answer, tmp)
        outcome = run_isolated(_transform_all, folder, pid, TEXTS, timeout=30)
        if not outcome.ok:
            raise RefusedError(f"loading it with a PluginHost and calling transform, in a child: "
                               f"{_refusal(outcome, folder)}")
    for text, got in zip(TEXTS, outcome.value, strict=True):
        if got == text[::-1]:
            continue
        if len(text) > 40:
            raise RefusedError(f"transform of a text of {len(text)} characters gave {len(got)} "
                               f"characters{', reversed' if got == text[::-1][:len(got)] else ''}, "
                               "not the whole text reversed")
        raise RefusedError(f"transform({text!r}) gave {got!r}, not {text[::-1]!r}")
    return (f"the host validated plugin {pid!r}, and transform reversed each of {len(TEXTS)} "
            "texts, one longer than the host's first buffer")


def try_load(folder: Path, pid: str) -> dict[str, Any]:
    try:
        plugin = PluginHost(folder).load(pid)
    except PluginError as error:
        return {"check": error.check, "declared": dict(error.declared)}
    plugin.close()
    return {"check": None, "declared": {}}


def host_verdict(answer: Any, host: str) -> tuple[str | None, dict[str, Any]]:
    """Load the learner's plugin with a version-1 PluginHost in a child: the check that
    refused it (None if the host accepted it) and what its descriptor declared. ``host``
    names the host in the refusal when the child fails."""
    with workspace() as tmp:
        folder, pid = in_plugin_folder(answer, tmp)
        outcome = run_isolated(try_load, folder, pid, timeout=30)
    if not outcome.ok:
        raise RefusedError(f"loading it with {host} in a child: {_refusal(outcome, folder)}")
    return outcome.value["check"], outcome.value["declared"]


def small_descriptor(answer: Any) -> str:
    check, declared = host_verdict(answer, "a PluginHost")
    if check is None:
        raise RefusedError("the host accepted it: its descriptor passed every check, size included")
    if check != "size":
        raise RefusedError(f"the host refused it at the check {check!r} (it declared {declared}), "
                           "before it got to the size")
    if declared.get("size") != 8:
        raise RefusedError(f"the host refused it at 'size', but it declared size "
                           f"{declared.get('size')}, not 8")
    return "the host refused it at the check 'size': it declared 8 bytes"


#: Calls of the counting plugin: (instance, text), two instances interleaved.
CALLS = (("a", "one"), ("a", "two"), ("b", "three"), ("a", "four"), ("b", "five"))
COUNTED = ("1: one", "2: two", "1: three", "3: four", "2: five")


def _two_instances(folder: Path, pid: str) -> list[str]:
    plugins = {name: PluginHost(folder).load(pid) for name in ("a", "b")}
    try:
        return [plugins[name].transform(text) for name, text in CALLS]
    finally:
        for plugin in plugins.values():
            plugin.close()


def counts_per_instance(answer: Any) -> str:
    with workspace() as tmp:
        folder, pid = in_plugin_folder(answer, tmp)
        outcome = run_isolated(_two_instances, folder, pid, timeout=30)
    if not outcome.ok:
        raise RefusedError(f"loading two instances with two PluginHosts, in a child: "
                           f"{_refusal(outcome, folder)}")
    got = outcome.value
    if got == ["1: one", "2: two", "3: three", "4: four", "5: five"]:
        raise RefusedError(f"the second instance went on from the first's count ({got}): the "
                           "count is kept once per loaded library, not per instance")
    if got != list(COUNTED):
        raise RefusedError(f"two instances called in turn gave {got}, not {list(COUNTED)}")
    return (f"two instances called in turn counted apart ({', '.join(COUNTED)}), and both "
            "closed cleanly")


EXERCISES = [
    Exercise(
        "03.1",
        "Write a plugin for plugin_api.h whose transform reverses its text; the host must "
        "accept it.",
        ("The host gives transform a buffer of capacity bytes, and trusts the length it "
         "returns.",
         "Section 1: the header's comment on what transform returns; section 8: building a "
         "plugin against plugin_api.h."),
        reverses),
    Exercise(
        "03.2",
        "Write a plugin whose descriptor says .size = 8, otherwise right, so that the host "
        "refuses it at its size check.",
        ("The host compares the declared size with its own sizeof(lab_plugin), after the "
         "checks before.",
         "Section 5 (Load, validate, call) lists the checks in order; section 8's greeter "
         "is a plugin to start from."),
        small_descriptor),
    Exercise(
        "03.3",
        "Write a plugin whose transform returns 'n: text', n counting the calls of that "
        "instance; two instances count apart.",
        ("A global variable exists once per loaded library, however many times the host "
         "calls create.",
         "Section 1 (the opaque state: create and destroy) and upper.c's struct lab_state "
         "in section 2."),
        counts_per_instance),
]
