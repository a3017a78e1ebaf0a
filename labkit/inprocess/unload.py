"""What dlclose really does, watched from inside a child process.

:func:`unload` loads a plugin in a forked child, calls the functions it is asked to (some from
a thread of their own that outlives the dlclose), closes the handle and reads
``/proc/self/maps`` before and after: is the file still mapped? Then the child lingers a
moment, so that whatever the plugin left behind (a thread, a thread-specific key's
destructor) gets its chance to jump into code that may be gone. The child prints each step as
it happens, the plugin's own lines fall in between, and :class:`Unloading` holds the lot with
how the child ended: a SIGSEGV after dlclose is the lesson, not a failure of labkit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..isolate import Outcome
from ..isolate import run as run_isolated
from ..paths import existing_file, show
from .dlopen import RTLD, is_mapped, load

_STEP = "unload: "


@dataclass(frozen=True)
class Unloading:
    """The steps of one :func:`unload`, in the order they happened, and how the child ended.

    ``steps`` are labkit's lines (``dlclose``, ``mapped: yes``) and the plugin's own output,
    interleaved as they were printed; ``mapped`` is whether the file was in
    ``/proc/self/maps`` after each dlopen and after each dlclose, in order."""

    plugin: str
    flags: str
    steps: tuple[str, ...]
    mapped: tuple[bool, ...]
    outcome: Outcome = field(repr=False)

    @property
    def unmapped(self) -> bool:
        """The last dlclose took the file out of the process."""
        return bool(self.mapped) and not self.mapped[-1]

    def __str__(self) -> str:
        lines = [f"{self.plugin}, opened {self.flags}:"]
        lines += [f"  {step}" for step in self.steps]
        lines.append(f"  -> {self.outcome.summary()}")
        return "\n".join(lines)


def unload(
    plugin: str | os.PathLike[str],
    *,
    flags: int = RTLD.NOW,
    calls: Sequence[str] = (),
    thread_calls: Sequence[str] = (),
    opens: int = 1,
    linger: float = 0.3,
    timeout: float = 20.0,
) -> Unloading:
    """In a child: dlopen ``plugin`` ``opens`` times with ``flags``, call each of ``calls``
    (functions ``int name(void)``) from the main thread and each of ``thread_calls`` from one
    extra thread, dlclose every handle, read ``/proc/self/maps`` after each step, let the
    extra thread end, and wait ``linger`` seconds (then read the maps once more, if there was an
    extra thread) before the child returns.

    A plugin that leaves code running behind it crashes the child after the dlclose: the
    returned :class:`Unloading` shows the steps it made and the signal.
    """
    path = existing_file(plugin, "plugin")
    if opens < 1:
        raise InputError(f"opens must be 1 or more, not {opens!r}",
                         fix="pass opens=2 to see the reference count at work")
    if linger < 0:
        raise InputError(f"linger must be 0 or more seconds, not {linger!r}",
                         fix="pass linger=0.3")
    outcome = run_isolated(_child, str(path.resolve()), int(flags), tuple(calls),
                           tuple(thread_calls), opens, linger, timeout=timeout)
    steps: list[str] = []
    mapped: list[bool] = []
    for line in outcome.stdout.splitlines():
        if line.startswith(_STEP):
            step = line[len(_STEP):]
            if step.startswith("mapped: "):
                mapped.append(step == "mapped: yes")
            steps.append(step)
        elif line.strip():
            steps.append(line)
    if outcome.error is not None:
        steps.append(f"{outcome.error['kind']}: {outcome.error['message']}")
    return Unloading(show(path), RTLD.describe(flags), tuple(steps), tuple(mapped), outcome)


def _say(text: str) -> None:
    print(_STEP + text, flush=True)


def _mapped(path: str) -> None:
    _say("mapped: yes" if is_mapped(path) else "mapped: no")


def _child(path: str, flags: int, calls: tuple[str, ...], thread_calls: tuple[str, ...],
           opens: int, linger: float) -> None:
    handles = []
    for _ in range(opens):
        handles.append(load(path, flags))
        _say("dlopen")
        _mapped(path)
    library = handles[0]
    for name in calls:
        _say(f"{name}() returned {library.function(name, 'int(void)')()}")
    release = threading.Event()
    helper = None
    if thread_calls:
        functions = [library.function(name, "int(void)").raw for name in thread_calls]
        ready = threading.Event()

        def in_thread() -> None:
            for name, function in zip(thread_calls, functions, strict=True):
                _say(f"{name}() returned {function()} in a second thread")
            ready.set()
            release.wait()  # the thread outlives the dlclose, then ends

        helper = threading.Thread(target=in_thread)
        helper.start()
        ready.wait()
    for handle in handles:
        _say("dlclose")
        handle.close()
        _mapped(path)
    if helper is not None:
        # Whatever the thread's exit runs (key and thread_local destructors) may crash; once
        # it ran, the thread is gone: Python 3.13's join waits for that, 3.11's may not, so
        # nothing is read until ``linger`` has passed
        _say("the second thread ends")
        release.set()
        helper.join()
    time.sleep(linger)
    _say(f"{linger:g} s later, still alive")
    if helper is not None:
        _mapped(path)

