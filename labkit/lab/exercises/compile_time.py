"""Exercises of notebook 07, compile-time plugins: the learner builds Go hosts with plugins
compiled in and a Python plugin package; the judges run the hosts in child processes and
install the package into a temporary folder in a fresh interpreter, then call it."""

from __future__ import annotations

import re
from typing import Any

from ...inprocess.python import GROUP
from ...isolate import run_program
from .framework import Exercise, RefusedError
from .go_plugins import go_file
from .judging import folder, said, snippet, workspace

_PROGRAM = "your host (what %%goplugin NAME --mode exe returned)"


def refuses_a_second_trim(answer: Any) -> str:
    program = go_file(answer, _PROGRAM)
    outcome = run_program([program.resolve(), "trim", "  x  "], timeout=30)
    if outcome.returncode == 1 and 'a plugin named "trim" already exists' in outcome.stdout:
        return "your host refused to start: two plugins cannot share the name trim"
    lines = " | ".join(outcome.stdout.strip().splitlines()[-3:])
    raise RefusedError(f"run with the pipeline trim, your host printed {lines!r} "
                       f"({outcome.summary()})")


#: Texts for the reversing entry point.
PY_TEXTS = ("hello, plugins", "", "ab", "été")
_INSTALL = """
import importlib.metadata, labkit
try:
    installed = labkit.install_plugin({package!r}, target={target!r})
except labkit.LabkitError as error:
    result({{"error": str(error).splitlines()[0]}})
    raise SystemExit(0)
dists = [d for d in importlib.metadata.distributions(path=[{target!r}])]
points = {{ep.name: ep for d in dists for ep in d.entry_points if ep.group == {group!r}}}
if "reverse" not in points:
    result({{"found": sorted(points), "name": installed.name}})
    raise SystemExit(0)
made = points["reverse"].load()()
result({{"name": installed.name, "answers": [made.transform(text) for text in {texts!r}]}})
"""


def reverse_package(answer: Any) -> str:
    package = folder(answer, "the folder of your plugin package (with its pyproject.toml)")
    if not (package / "pyproject.toml").is_file():
        raise RefusedError(f"{package.name}/ has no pyproject.toml: pip cannot install it")
    with workspace() as tmp:
        code = _INSTALL.format(package=str(package.resolve()), target=str(tmp / "site"),
                               group=GROUP, texts=PY_TEXTS)
        outcome, seen = snippet(code, timeout=300, cwd=tmp)
    if not outcome.ok or seen is None:
        raise RefusedError(f"installing it and calling reverse, in a child: {said(outcome, 2)}")
    if "error" in seen:
        raise RefusedError(f"pip could not install it: {seen['error']}")
    if "found" in seen:
        raise RefusedError(f"{seen['name']} declares no entry point 'reverse' in the group "
                           f"{GROUP!r} (it declares {seen['found']})")
    for text, got in zip(PY_TEXTS, seen["answers"], strict=True):
        if got != text[::-1]:
            raise RefusedError(f"reverse's transform({text!r}) gave {got!r}")
    return (f"installed {seen['name']} into a temporary folder; its entry point 'reverse' "
            f"reversed {len(PY_TEXTS)} texts")


#: Texts for the pipeline trim,reverse; ``%q`` in Go quotes them as Python's repr would not,
#: so none holds a quote or a backslash.
GO_TEXTS = ("  Hello, Plugins  ", "héllo, wörld", "  ab ")
_STEP = re.compile(r'^reverse\s+"(.*)" -> "(.*)"$')


def out_of_tree_reverse(answer: Any) -> str:
    program = go_file(answer, _PROGRAM)
    with workspace() as tmp:
        for text in GO_TEXTS:
            outcome = run_program([program.resolve(), "trim,reverse", text], cwd=tmp,
                                  timeout=30)
            if not outcome.ok:
                lines = " | ".join(outcome.stdout.strip().splitlines()[-2:])
                raise RefusedError(f"run with the pipeline trim,reverse on {text!r}, your host "
                                   f"printed {lines!r} ({outcome.summary()})")
            steps = [m for line in outcome.stdout.splitlines() if (m := _STEP.match(line))]
            if not steps:
                raise RefusedError(f"your host ran trim,reverse on {text!r} but printed no reverse "
                                   f"step: {outcome.stdout.strip()!r}")
            want = text.strip()[::-1]
            if steps[0].group(2) != want:
                raise RefusedError(f"reverse turned {steps[0].group(1)!r} into "
                                   f"{steps[0].group(2)!r}, not {want!r}")
    return (f"your host ran trim,reverse on {len(GO_TEXTS)} texts, letters outside ASCII "
            "included, and reverse reversed each")


EXERCISES = [
    Exercise(
        "07.1",
        "Build a host that registers a second plugin named trim; the check runs it and "
        "expects it to refuse to start.",
        ("The registry is filled before the host runs; see what an option does when a name "
         "is taken.",
         "Section 1 (framework.go: WithPlugin) and section 3 (custom/main.go); %%goplugin? "
         "for a program in a cell."),
        refuses_a_second_trim),
    Exercise(
        "07.2",
        "Make a plugin package with an entry point reverse in the group "
        "pluginlab.transformers; its transform reverses text.",
        ("Installing registers a Python plugin: the package's metadata names the object to "
         "load.",
         "Section 5 (Python: entry points): labplug_shout's pyproject.toml, and the class "
         "it names in plugins/python/labplug_shout/src."),
        reverse_package),
    Exercise(
        "07.3",
        "Build a host with an out-of-tree plugin named reverse compiled in; the check runs "
        "the pipeline trim,reverse.",
        ("A registry plugin is any type with framework.Plugin's methods, registered by "
         "name.",
         "Section 3 (custom/main.go and outoftree/shout/shout.go) and section 1 "
         "(framework.go)."),
        out_of_tree_reverse),
]
