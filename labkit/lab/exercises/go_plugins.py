"""Exercises of notebook 05, Go plugins: the learner builds Go hosts and a Go plugin; the
judges build the other side themselves (a plugin variant, the lab's host, a host of their
own that calls Transform on texts they pick) and run the pair in a child process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...build.go import build_go
from ...inspect.elf import read_elf
from ...inspect.goinfo import is_go
from ...isolate import run_program
from ...paths import PLUGINS_GO
from ...samples.go import build_go_samples, go_said
from .framework import Exercise, RefusedError
from .judging import built_file, copy_into, workspace

_HOST = "your host (what labkit.build_go returned)"


def go_file(answer: Any, what: str, *, plugin: bool = False) -> Path:
    """The Go program (or, with ``plugin``, the Go plugin) the learner built."""
    path = built_file(answer, what)
    if not is_go(path):
        raise RefusedError(f"{path.name} is not a Go binary: expected {what}")
    shared = read_elf(path).type == "shared object"
    if shared != plugin:
        found = "a shared object (a Go plugin)" if shared else "a program"
        raise RefusedError(f"{path.name} is {found}: expected {what}")
    return path


def host_for(sample: str, needles: tuple[str, ...], flag: str) -> Callable[[Any], str]:
    """A judge that runs the learner's host on the judge's own build of ``sample`` and wants
    every one of ``needles`` in what the host printed."""
    def judge(answer: Any) -> str:
        host = go_file(answer, _HOST)
        with workspace() as tmp:
            build_go_samples(tmp, [sample])
            outcome = run_program([host.resolve(), f"{sample}.so"], cwd=tmp, timeout=60)
        if not outcome.ok:
            raise RefusedError(f"your host, run on the check's own build of {sample}.so, said: "
                               f"{go_said(outcome)}")
        missing = [needle for needle in needles if needle not in outcome.stdout]
        if missing:
            raise RefusedError(f"your host ran on {sample}.so but never printed {missing[0]!r}: "
                               "is it the lab's host (plugins/go/host)?")
        return (f"your host opened the check's own build of {sample}.so and used it: host "
                f"and plugin both built with {flag}")

    return judge


#: A host of the judge's: opens the plugin, checks Plugin is an api.Transformer, and prints
#: Transform of each text as a JSON string, one per line.
_JUDGE_HOST = """package main

import (
\t"encoding/json"
\t"fmt"
\t"os"
\t"plugin"

\t"pluginlab/api"
)

func main() {
\tp, err := plugin.Open(os.Args[1])
\tif err != nil {
\t\tfmt.Println("open:", err)
\t\tos.Exit(1)
\t}
\tsym, err := p.Lookup("Plugin")
\tif err != nil {
\t\tfmt.Println("lookup:", err)
\t\tos.Exit(1)
\t}
\tt, ok := sym.(*api.Transformer)
\tif !ok {
\t\tfmt.Printf("Plugin is a %T, not an api.Transformer\\n", sym)
\t\tos.Exit(1)
\t}
\tfor _, text := range os.Args[2:] {
\t\tout, _ := json.Marshal((*t).Transform(text))
\t\tfmt.Println(string(out))
\t}
}
"""
#: Texts the judge's host transforms: one with letters outside ASCII.
GO_TEXTS = ("plugin", "héllo, wörld", "", "ab")


def judge_host(tmp: Path) -> Path:
    """Build the check's own Go host in ``tmp`` (a module of its own that uses the lab's
    ``pluginlab/api``) and return the program."""
    module = tmp / "judge-host"
    module.mkdir()
    (module / "go.mod").write_text(
        f"module judgehost\n\ngo 1.22\n\nrequire pluginlab v0.0.0\n\n"
        f"replace pluginlab => {PLUGINS_GO}\n")
    (module / "main.go").write_text(_JUDGE_HOST)
    return build_go(".", "judge-host", module=module, out_dir=tmp / "bin").path


def reverses(answer: Any) -> str:
    path = go_file(answer, "your plugin (what %%goplugin NAME --mode plugin returned)",
                   plugin=True)
    with workspace() as tmp:
        copy_into(path, tmp, "yours.so")
        lab_host = build_go("host", "host", out_dir=tmp).path
        lab = run_program([lab_host, "yours.so"], cwd=tmp, timeout=60)
        if not lab.ok:
            raise RefusedError(f"the lab's host said: {go_said(lab)}")
        own = run_program([judge_host(tmp), "yours.so", *GO_TEXTS], cwd=tmp, timeout=60)
    if not own.ok:
        raise RefusedError(f"the lab's host accepted it, but the check's host said: {go_said(own)}")
    got = [json.loads(line) for line in own.stdout.splitlines() if line.strip()]
    if len(got) != len(GO_TEXTS):
        raise RefusedError(
            f"the check's host printed {own.stdout.strip()!r} for {len(GO_TEXTS)} texts")
    for text, answer_ in zip(GO_TEXTS, got, strict=True):
        if answer_ != text[::-1]:
            raise RefusedError(f"Transform({text!r}) gave {answer_!r}, not {text[::-1]!r}")
    return (f"the lab's host accepted it, and Transform reversed {len(GO_TEXTS)} texts, letters "
            "outside ASCII included")


EXERCISES = [
    Exercise(
        "05.1",
        "Build a host that opens greeter_v2.so; the check runs your host on its own build "
        "of greeter_v2.",
        ("One shared package was compiled differently on the two sides: make the host's "
         "side match.",
         "Section 6.1 and what explain --host said there; help(labkit.build_go), and "
         "labkit.GO_SAMPLES for how each variant was built."),
        host_for("greeter_v2", ("greeter_v2.so: ok", "api release 1.1"), "-tags=api_v2")),
    Exercise(
        "05.2",
        "Build a host that opens greeter_trim.so; the check runs your host on its own "
        "build of greeter_trim.",
        ("The source is the same on both sides this time: what else went into the plugin's "
         "build?",
         "Section 6.2 and explain --host's problem line; help(labkit.build_go) and "
         "labkit.GO_SAMPLES."),
        host_for("greeter_trim", ("greeter_trim.so: ok", 'Transform("plugin")'), "-trimpath")),
    Exercise(
        "05.3",
        "Write a Go plugin that the lab's host accepts and whose Plugin reverses text, by "
        "characters.",
        ("The host looks up three names and checks their types; a string's bytes are not "
         "its characters.",
         "Section 4 (the host's use function) and greeter/main.go in section 1; "
         "%%goplugin? for a plugin in a cell."),
        reverses),
]
