"""Exercises of notebook 10, the loader up close: the learner builds a third release of a
versioned library and a plugin that stops its own thread; the judges link programs against
each release, trace which version each one got, and unload the plugin in a child."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ...build.c import build_shared
from ...diagnose.trace import trace_load
from ...inprocess.dlopen import load
from ...inprocess.unload import unload
from ...inspect.elf import read_elf
from ...isolate import run as run_isolated
from ...paths import PLUGINS_C
from .framework import Exercise, RefusedError
from .judging import built_file, copy_into, require_exports, said, shown, workspace

_LOADER = PLUGINS_C / "loader"
#: 13 bytes, 11 characters, 2 words.
_TEXT = "h\\xc3\\xa9llo w\\xc3\\xb6rld"
_CALLER = ("int text_length(const char *text);\n"
           f'int length_of_text(void) {{ return text_length("{_TEXT}"); }}\n')
#: release: (the version its programs ask for, what they answer)
_EXPECTED = {1: ("LAB_1.0", 13), 2: ("LAB_2.0", 11), 3: ("LAB_3.0", 2)}


def _release(tmp: Path, number: int) -> Path:
    script = _LOADER / f"text_v{number}.map"
    return build_shared(_LOADER / "text_length.c", "text", cflags=[f"-DTEXT_RELEASE={number}"],
                        ldflags=[f"-Wl,--version-script={script}"],
                        out_dir=tmp / f"release{number}").path


def text_release_3(answer: Any) -> str:
    path = built_file(answer, "your libtext.so (what labkit.build_shared returned)")
    defined = list(read_elf(path).version_defs)
    missing = [version for version, _ in _EXPECTED.values() if version not in defined]
    if missing:
        raise RefusedError(f"{shown(path)} defines the versions {defined}: no {missing[0]}")
    with workspace() as tmp:
        folder = tmp / "programs"
        copy_into(path, folder / "lib", "libtext.so")
        built_against = {1: _release(tmp, 1), 2: _release(tmp, 2), 3: path}
        seen = []
        for number, library in built_against.items():
            program = build_shared(_CALLER, f"built_against_{number}", libs=[library],
                                   ldflags=["-Wl,-rpath,$ORIGIN/lib"], out_dir=folder)
            trace = trace_load(program.path, call="length_of_text", out_dir=tmp / "host")
            if not trace.ok:
                raise RefusedError(f"a program built against release {number} does not load with "
                                   f"your library: {said(trace.outcome, 2)}")
            bound = trace.bound("text_length", program.path)
            version = bound.version if bound is not None else None
            answered = int(trace.outcome.stdout.split()[-1])
            wanted_version, wanted = _EXPECTED[number]
            if version != wanted_version or answered != wanted:
                raise RefusedError(
                    f"a program built against release {number} got text_length@{version} and "
                    f"{answered} for 'héllo wörld', where it should get {wanted_version} and "
                    f"{wanted}")
            seen.append(f"release {number}: {version}, {answered}")
    return ("with your library in place, programs built against each release get their own "
            f"text_length: {'; '.join(seen)}")


def _ticks(path: str) -> int:
    """In a child: the threads this process gains when the plugin starts its ticker."""
    before = len(os.listdir("/proc/self/task"))
    load(path).function("start_ticker", "int(void)")()
    time.sleep(0.1)
    return len(os.listdir("/proc/self/task")) - before


def ticker_unloads(answer: Any) -> str:
    path = built_file(answer, "your build of lingering.c (what labkit.build_shared returned)")
    require_exports(path, ["start_ticker"])
    with workspace() as tmp:
        copy = copy_into(path, tmp)
        started = run_isolated(_ticks, str(copy), timeout=20)
        if not started.ok:
            raise RefusedError(f"loading it and calling start_ticker in a child: {said(started)}")
        if started.value < 1:
            raise RefusedError("start_ticker() started no thread: the ticker must still tick")
        unloading = unload(copy, calls=["start_ticker"], linger=1.5)  # lingering.c ticks at 1 s
    if unloading.outcome.crashed:
        raise RefusedError(f"after dlclose: {unloading.outcome.summary()}")
    if not unloading.outcome.ok:
        raise RefusedError(f"the child did not finish: {said(unloading.outcome)}")
    if not unloading.unmapped:
        raise RefusedError("no crash, but the file is still mapped after dlclose: the plugin "
                           "stays in the process (as with RTLD_NODELETE), and so does its thread")
    return ("start_ticker started a thread, dlclose unmapped the file, and the process was "
            "still alive 1.5 s later")


EXERCISES = [
    Exercise(
        "10.1",
        "Build release 3 of libtext (libtext.so): text_length@@LAB_3.0 counts words; programs "
        "built against releases 1 and 2 keep theirs.",
        ("Release 2 already keeps release 1's function under its old version: do it once more.",
         "Section 6 (Symbol versioning in depth): text_length.c and text_v2.map; "
         "labkit.read_elf(lib).version_defs and symbols_frame() check your build."),
        text_release_3),
    Exercise(
        "10.2",
        "Change a copy of lingering.c so that a host can start the ticker, then dlclose it: "
        "no crash, and the file leaves the process.",
        ("Something of the plugin runs during dlclose, before the file is unmapped.",
         "Section 4: what runs inside dlclose; and how one thread waits for another to end."),
        ticker_unloads),
]
