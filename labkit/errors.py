"""The one error hierarchy of labkit.

Every error labkit raises is a :class:`LabkitError`. Each subclass carries its context as
attributes (the path, the symbol, the command, the raw text of the tool underneath) and its
message names the thing, says what went wrong and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class LabkitError(Exception):
    """Root of every error labkit raises on purpose."""


class InputError(LabkitError, ValueError):
    """An argument that labkit cannot work with: a missing path, a directory, a bad option."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class ToolchainError(LabkitError):
    """A tool the lab needs (a compiler, abidiff, go) is missing or unusable."""

    def __init__(self, tool: str, message: str, *, fix: str) -> None:
        super().__init__(f"{message}\nFix: {fix}")
        self.tool = tool
        self.fix = fix


class BuildError(LabkitError):
    """A compiler or linker refused the source; the compiler's own stderr is kept.

    ``diagnosis`` is the compiler's line that says what went wrong, ``fix`` the remedy.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        command: Sequence[str],
        returncode: int,
        stderr: str,
        diagnosis: str = "",
        fix: str = "",
    ) -> None:
        super().__init__(message)
        self.source = source
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr
        self.diagnosis = diagnosis
        self.fix = fix


class ElfError(LabkitError):
    """A file is not an ELF file labkit can read (empty, text, truncated, damaged).

    ``reason`` is a short kind (``empty``, ``not-elf``, ``truncated``), ``what`` the finding
    and ``fix`` the remedy; the message is both.
    """

    def __init__(self, what: str, *, path: Path, reason: str, fix: str) -> None:
        super().__init__(f"{what}\nFix: {fix}")
        self.path = path
        self.reason = reason
        self.what = what
        self.fix = fix


class LoadError(LabkitError):
    """dlopen refused a file. ``problems`` holds labkit's diagnosis, ``dlerror`` the raw text."""

    def __init__(
        self, message: str, *, path: Path, dlerror: str, problems: Sequence[object] = ()
    ) -> None:
        super().__init__(message)
        self.path = path
        self.dlerror = dlerror
        self.problems = tuple(problems)


class SymbolError(LabkitError):
    """dlsym did not find a symbol in a loaded library, or the library is closed."""

    def __init__(self, message: str, *, path: Path, symbol: str, dlerror: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.symbol = symbol
        self.dlerror = dlerror


class IsolationError(LabkitError):
    """A child process run by :mod:`labkit.isolate` failed: crashed, timed out or raised.

    ``result`` is the :class:`labkit.isolate.Outcome` with the exit status, the signal and
    the child's output.
    """

    def __init__(self, message: str, *, result: object) -> None:
        super().__init__(message)
        self.result = result


class PluginError(LabkitError):
    """A plugin failed the host's checks, or failed while the host called it.

    ``check`` names the check (``load``, ``entry-symbol``, ``descriptor``, ``abi-version``,
    ``size``, ``functions``, ``name``, ``call``); ``declared`` holds what the plugin said
    about itself (its ABI version, descriptor size and name) as far as it got.
    """

    def __init__(
        self, message: str, *, plugin_id: str, path: Path, check: str,
        declared: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.plugin_id = plugin_id
        self.path = path
        self.check = check
        self.declared = dict(declared or {})


class AbiToolError(LabkitError):
    """abidiff could not compare two files: missing tool, unreadable or non-ELF input.

    ``status`` is abidiff's exit status (-1 when it did not run), ``output`` its text.
    """

    def __init__(self, message: str, *, status: int, output: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.output = output


class HandshakeError(LabkitError, ValueError):
    """A plugin's first line on stdout is not a go-plugin handshake line labkit accepts.

    ``line`` is the text read, ``reason`` a short kind: ``empty``, ``too-long``, ``garbage``,
    ``core-version``, ``network``, ``protocol``.
    """

    def __init__(self, message: str, *, line: str, reason: str) -> None:
        super().__init__(message)
        self.line = line
        self.reason = reason


class RPCPluginError(LabkitError):
    """An RPC plugin process failed: at start, in the handshake, in a call, at shutdown.

    ``stage`` is ``start``, ``handshake``, ``connect``, ``health`` or ``call``; ``command``
    the plugin's command line; ``returncode`` and ``signal`` how the process ended (None
    while it runs); ``stderr_tail`` its last stderr lines; ``status`` the gRPC status name
    of a failed call.
    """

    def __init__(
        self, message: str, *, stage: str, command: Sequence[str],
        returncode: int | None = None, signal: str | None = None,
        stderr_tail: Sequence[str] = (), status: str = "",
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.command = tuple(command)
        self.returncode = returncode
        self.signal = signal
        self.stderr_tail = tuple(stderr_tail)
        self.status = status


class WasmTrap(LabkitError):
    """A WebAssembly plugin trapped: a bad memory access, its fuel used up, a timeout.

    ``reason`` is wasmtime's (``out of bounds memory access``, ``all fuel consumed by
    WebAssembly``, ``interrupt``); ``text`` wasmtime's whole report. The host is unharmed.
    """

    def __init__(self, message: str, *, path: Path, function: str, reason: str, text: str) -> None:
        super().__init__(message)
        self.path = path
        self.function = function
        self.reason = reason
        self.text = text
