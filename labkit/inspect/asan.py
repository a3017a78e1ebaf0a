"""Reading AddressSanitizer's report: what kind of bad access, where, and into which block.

A program built with ``-fsanitize=address`` stops at its first invalid access and writes a
report to stderr: addresses and stack frames that differ on every run. :func:`asan_report`
keeps what does not: the kind (``heap-buffer-overflow``), the access (a read or a write), the
function and source line that made it, and where the bad byte lies relative to the block
(``0 bytes after 12-byte region``), with the function that allocated the block. Sanitizer
runtimes word that last part differently (GCC 12's says ``to the right of``, GCC 14's
``after``): it is given in the newer words, whichever the report used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

_ERROR = re.compile(r"ERROR: AddressSanitizer: ([\w-]+)")
_ACCESS = re.compile(r"^(READ|WRITE) of size \d+", re.M)
_FRAME = re.compile(r"^\s+#\d+ 0x[0-9a-f]+ in (\S+) (\S+?):(\d+)", re.M)
_WHERE = re.compile(
    r"is located (\d+) bytes (to the left of|to the right of|before|after|inside of) "
    r"(\d+)-byte region")
#: The older words for where a bad byte lies, and the newer ones the report gives.
_NEWER = {"to the left of": "before", "to the right of": "after"}
_ALLOCATED = re.compile(r"allocated by thread \w+ here:\n")


@dataclass(frozen=True)
class AsanReport:
    """The stable part of an AddressSanitizer report."""

    kind: str  # "heap-buffer-overflow", "heap-use-after-free", ...
    access: str  # "READ" or "WRITE" ("" when the report names none)
    function: str  # the function that made the access
    location: str  # its source file and line, "upper.c:24"
    where: str  # "0 bytes after 12-byte region" ("" when not said)
    allocated_by: str  # "main (asan_host.c:11)" ("" when not said)

    def __str__(self) -> str:
        access = f"a {self.access} in" if self.access else "in"
        text = f"AddressSanitizer: {self.kind}: {access} {self.function} ({self.location})"
        if self.where:
            text += f", {self.where}"
        if self.allocated_by:
            text += f" allocated by {self.allocated_by}"
        return text


def asan_report(stderr: str) -> AsanReport | None:
    """The report in ``stderr``, or None when AddressSanitizer found nothing."""
    error = _ERROR.search(stderr)
    if error is None:
        return None
    body = stderr[error.end():]
    access = _ACCESS.search(body)
    where = _WHERE.search(body)
    allocated = _ALLOCATED.search(body)
    function, location = _first_frame(body) or ("?", "?")
    allocated_by = ""
    if allocated is not None:
        frame = _first_frame(body[allocated.end():])
        allocated_by = f"{frame[0]} ({frame[1]})" if frame else ""
    said = ""
    if where is not None:
        said = f"{where[1]} bytes {_NEWER.get(where[2], where[2])} {where[3]}-byte region"
    return AsanReport(error[1], access[1] if access else "", function, location, said,
                      allocated_by)


def _first_frame(text: str) -> tuple[str, str] | None:
    """The first stack frame in the program's own code: the sanitizer's interceptors
    (``malloc``, ``memcpy``, named differently by each compiler release) are skipped."""
    for frame in _FRAME.finditer(text):
        if any(part in frame[2] for part in ("libsanitizer", "compiler-rt", "/asan/")):
            continue
        return frame[1], f"{PurePath(frame[2]).name}:{frame[3]}"
    return None
