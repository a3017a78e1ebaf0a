"""Exercises of notebook 11, C++ plugins: the learner writes a plugin of the C++ interface and
a C entry point that stops exceptions at the boundary; the judges run the lab's release 1 host
and a C host on them, in child processes."""

from __future__ import annotations

from typing import Any

from ...build.c import build_executable
from ...isolate import run_program
from ...paths import PLUGINS_CPP
from .framework import Exercise, RefusedError
from .judging import built_file, copy_into, require_exports, said, shown, workspace

_TEXTS = ("hello", "Plugin Lab", "a")

_C_HOST = r"""
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    void *plugin = dlopen(argv[1], RTLD_NOW);
    if (plugin == NULL) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    int (*try_work)(int, char *, int) = (int (*)(int, char *, int))dlsym(plugin, "lab_try_work");
    if (try_work == NULL) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    char error[64] = "";
    printf("%d\n", try_work(7, error, (int)sizeof error));
    int failed = try_work(-1, error, (int)sizeof error);
    printf("%d %s\n", failed, error);
    char tiny[4] = "xyz";
    printf("%d %s\n", try_work(-1, tiny, (int)sizeof tiny), tiny);
    return 0;
}
"""


def reverse_plugin(answer: Any) -> str:
    path = built_file(answer, "your C++ plugin (what labkit.build_shared returned)")
    require_exports(path, ["lab_create", "lab_destroy"],
                    why=": the host looks both up by their C names")
    with workspace() as tmp:
        host = build_executable(PLUGINS_CPP / "host.cpp", "host1", libs=["dl"],
                                out_dir=tmp / "host")
        plugin = copy_into(path, tmp)
        for text in _TEXTS:
            ran = run_program([host.path, plugin, text], timeout=20)
            if not ran.ok:
                raise RefusedError(f"the release 1 host with your plugin, on {text!r}: {said(ran)}")
            lines = dict(line.split(": ", 1) for line in ran.stdout.splitlines() if ": " in line)
            if lines.get("name") != "reverse":
                raise RefusedError(f"the host printed name: {lines.get('name')!r}, not 'reverse'")
            if lines.get("transform") != text[::-1]:
                raise RefusedError(f"transform({text!r}) gave {lines.get('transform')!r}, "
                                   f"where the reverse is {text[::-1]!r}")
    return (f"the release 1 host loaded {shown(path)}: name reverse, greeting "
            f"{lines.get('greeting')!r}, and every text came back reversed")


def safe_for_c(answer: Any) -> str:
    path = built_file(answer, "your build of thrower.cpp (what labkit.build_shared returned)")
    require_exports(path, ["lab_try_work"], why=": the C host looks it up by that name")
    with workspace() as tmp:
        host = build_executable(_C_HOST, "try_host", libs=["dl"], out_dir=tmp)
        ran = run_program([host.path, copy_into(path, tmp / "plugin")], timeout=20)
    if not ran.ok:
        raise RefusedError(f"a C host calling lab_try_work(-1, ...): {said(ran)}")
    lines = ran.stdout.splitlines()
    if len(lines) != 3 or lines[0] != "7":
        raise RefusedError(f"lab_try_work(7, ...) should answer 7; the C host printed {lines!r}")
    if lines[1] != "-1 negative input":
        raise RefusedError(f"lab_try_work(-1, error, 64) gave {lines[1]!r}: it should return -1 "
                           "and copy the exception's message, 'negative input', into error")
    if lines[2] != "-1 neg":
        raise RefusedError(f"with a 4-byte error buffer it gave {lines[2]!r}: copy at most "
                           "size - 1 bytes and end them with a 0, as snprintf does")
    return ("a C host called lab_try_work: 7 for 7, and for -1 the answer -1 with 'negative "
            "input', cut to fit a small buffer, and no std::terminate")


EXERCISES = [
    Exercise(
        "11.1",
        "Write a C++ plugin of transformer.hpp (release 1) whose name() is \"reverse\" and which "
        "reverses the text.",
        ("Start from upper.cpp: the interface, the class, and the two C functions.",
         "Section 1: upper.cpp, and why lab_create and lab_destroy must be extern \"C\"."),
        reverse_plugin),
    Exercise(
        "11.2",
        "Give thrower.cpp int lab_try_work(int x, char *error, int size): lab_work's result, or "
        "-1 and the message, cut to fit.",
        ("Nothing may leave the function as an exception: stop it inside.",
         "Section 3: what a C host does with an exception; std::exception::what."),
        safe_for_c),
]
