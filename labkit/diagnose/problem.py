"""A reason a file will not load (:class:`Problem`), and who would load it (:class:`Context`):
what :mod:`labkit.diagnose.why`, :mod:`labkit.diagnose.binding` and
:mod:`labkit.diagnose.goplugin` return, and :class:`~labkit.errors.LoadError` carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..inspect.elf import ElfInfo


@dataclass(frozen=True)
class Problem:
    """One reason a file will not load: a short ``kind``, what is wrong, and the fix."""

    kind: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}\n  Fix: {self.fix}"

    def line(self) -> str:
        """The problem on one line: ``kind: message. Fix: fix``."""
        return f"{self.kind}: {self.message.rstrip('.')}. Fix: {self.fix}"


@dataclass(frozen=True)
class Context:
    """Who would load the file, for the symbol check: ``host`` is a program whose exported
    symbols count, ``provided`` a test for names already defined in the loading process,
    ``require`` the names the host will look up with dlsym."""

    host: ElfInfo | None = None
    provided: Callable[[str], bool] | None = None
    require: tuple[str, ...] = ()
