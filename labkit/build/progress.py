"""A progress indicator for slow steps (a cold Go build), shown in the notebook only.

A step that runs longer than a second shows a line under the cell, ``⏳ go build ...: 3 s``,
updated as it goes and removed when the step ends. It is an ipywidgets ``Label`` displayed
without a text fallback, so it leaves nothing in the saved outputs that nbval compares: a
cell prints the same whether the step came from a cache in a few milliseconds or ran for a
minute. Outside a Jupyter kernel (scripts, tests, the command line) nothing is shown.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any


class Progress:
    """Use as ``with Progress("go build ./greeter") as p:`` and call ``p.tick()`` while
    waiting; the indicator appears after ``after`` seconds and goes at the end."""

    def __init__(self, what: str, *, after: float = 1.0) -> None:
        self.what = what
        self.after = after
        self._start = time.monotonic()
        self._label: Any = None
        self._shown = -1

    @property
    def elapsed(self) -> float:
        """Seconds since the step started."""
        return time.monotonic() - self._start

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        return self

    def tick(self) -> None:
        """Show or refresh the indicator if the step has run longer than ``after``."""
        seconds = int(self.elapsed)
        if self.elapsed < self.after or seconds == self._shown or not _in_kernel():
            return
        self._shown = seconds
        text = f"⏳ {self.what}: {seconds} s (the first build fills the cache)"
        if self._label is None:
            self._label = _show_label(text)
        else:
            self._label.value = text

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._label is not None:
            self._label.close()  # the view disappears from the page
            self._label = None


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _show_label(text: str) -> Any:
    import ipywidgets
    from IPython.display import display

    label = ipywidgets.Label(value=text)
    # Only the widget view, no text/plain: nbval skips this mimetype, so the saved output
    # of the cell does not depend on whether the step was slow this time.
    display({"application/vnd.jupyter.widget-view+json": {
        "model_id": label.model_id, "version_major": 2, "version_minor": 0,
    }}, raw=True)  # type: ignore[no-untyped-call]
    return label
