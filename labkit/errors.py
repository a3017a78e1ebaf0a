"""The one error hierarchy of labkit.

Every error labkit raises is a :class:`LabkitError`. Each one says what went wrong, naming
the thing as the user gave it (``what``), and how to fix it (``fix``); the root class renders
both, the same way for every error. Each subclass carries its context as attributes (the
path, the symbol, the command, the raw text of the tool underneath).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: The longest line an error puts its fix on, after what went wrong.
LINE = 100


class LabkitError(Exception):
    """Root of every error labkit raises on purpose: ``what`` went wrong, and the ``fix``.

    ``str()`` is ``what``, then ``Fix: ...``: after a full stop when both fit one line of
    :data:`LINE` characters, else on a line of its own (after a compiler's output, say).
    """

    def __init__(self, what: str, *, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def __str__(self) -> str:
        if not self.fix:
            return self.what
        what = self.what.rstrip()
        stop = "" if what.endswith((".", "?", "!", ":")) else "."
        if "\n" in what or len(what) + len(stop) + len(" Fix: ") + len(self.fix) > LINE:
            return f"{what}\nFix: {self.fix}"
        return f"{what}{stop} Fix: {self.fix}"


class InputError(LabkitError, ValueError):
    """An argument that labkit cannot work with: a missing path, a directory, a bad option."""

    def __init__(self, what: str, *, fix: str, path: Path | None = None) -> None:
        super().__init__(what, fix=fix)
        self.path = path


class ToolchainError(LabkitError):
    """A tool the lab needs (a compiler, abidiff, go) is missing or unusable."""

    def __init__(self, tool: str, what: str, *, fix: str) -> None:
        super().__init__(what, fix=fix)
        self.tool = tool


class BuildError(LabkitError):
    """A compiler or linker refused the source; the compiler's own stderr is kept.

    ``diagnosis`` is the compiler's line that says what went wrong, ``fix`` the remedy.
    """

    def __init__(
        self,
        what: str,
        *,
        fix: str,
        source: str,
        command: Sequence[str],
        returncode: int,
        stderr: str,
        diagnosis: str = "",
    ) -> None:
        super().__init__(what, fix=fix)
        self.source = source
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr
        self.diagnosis = diagnosis


class ElfError(LabkitError):
    """A file is not an ELF file labkit can read (empty, text, truncated, damaged).

    ``reason`` is a short kind (``empty``, ``not-elf``, ``truncated``).
    """

    def __init__(self, what: str, *, fix: str, path: Path, reason: str) -> None:
        super().__init__(what, fix=fix)
        self.path = path
        self.reason = reason


class LoadError(LabkitError):
    """dlopen refused a file. ``problems`` holds labkit's diagnosis, ``dlerror`` the raw text."""

    def __init__(
        self, what: str, *, fix: str = "", path: Path, dlerror: str, problems: Sequence[object] = ()
    ) -> None:
        super().__init__(what, fix=fix)
        self.path = path
        self.dlerror = dlerror
        self.problems = tuple(problems)


class SymbolError(LabkitError):
    """dlsym did not find a symbol in a loaded library, or the library is closed."""

    def __init__(self, what: str, *, fix: str = "", path: Path, symbol: str,
                 dlerror: str = "") -> None:
        super().__init__(what, fix=fix)
        self.path = path
        self.symbol = symbol
        self.dlerror = dlerror


class IsolationError(LabkitError):
    """A child process run by :mod:`labkit.isolate` failed: crashed, timed out or raised.

    ``result`` is the :class:`labkit.isolate.Outcome` with the exit status, the signal and
    the child's output.
    """

    def __init__(self, what: str, *, fix: str = "", result: object) -> None:
        super().__init__(what, fix=fix)
        self.result = result


class PluginError(LabkitError):
    """A plugin failed the host's checks, or failed while the host called it.

    ``check`` names the check (``load``, ``entry-symbol``, ``descriptor``, ``abi-version``,
    ``size``, ``functions``, ``name``, ``call``); ``declared`` holds what the plugin said
    about itself (its ABI version, descriptor size and name) as far as it got.
    """

    def __init__(
        self, what: str, *, fix: str = "", plugin_id: str, path: Path, check: str,
        declared: dict[str, object] | None = None,
    ) -> None:
        super().__init__(what, fix=fix)
        self.plugin_id = plugin_id
        self.path = path
        self.check = check
        self.declared = dict(declared or {})


class AbiToolError(LabkitError):
    """abidiff could not compare two files: missing tool, unreadable or non-ELF input.

    ``status`` is abidiff's exit status (-1 when it did not run), ``output`` its text.
    """

    def __init__(self, what: str, *, fix: str = "", status: int, output: str = "") -> None:
        super().__init__(what, fix=fix)
        self.status = status
        self.output = output


class HandshakeError(LabkitError, ValueError):
    """A plugin's first line on stdout is not a go-plugin handshake line labkit accepts.

    ``line`` is the text read, ``reason`` a short kind: ``empty``, ``too-long``, ``garbage``,
    ``core-version``, ``network``, ``protocol``.
    """

    def __init__(self, what: str, *, fix: str = "", line: str, reason: str) -> None:
        super().__init__(what, fix=fix)
        self.line = line
        self.reason = reason


class RPCPluginError(LabkitError):
    """An RPC plugin process failed: at start, in the handshake, in a call, at shutdown.

    ``stage`` is ``verify`` (the checksum), ``start``, ``handshake``, ``connect``, ``health``,
    ``call`` or ``broker``; ``command``
    the plugin's command line; ``returncode`` and ``signal`` how the process ended (None
    while it runs); ``stderr_tail`` its last stderr lines; ``status`` the gRPC status name
    of a failed call.
    """

    def __init__(
        self, what: str, *, fix: str = "", stage: str, command: Sequence[str],
        returncode: int | None = None, signal: str | None = None,
        stderr_tail: Sequence[str] = (), status: str = "",
    ) -> None:
        super().__init__(what, fix=fix)
        self.stage = stage
        self.command = tuple(command)
        self.returncode = returncode
        self.signal = signal
        self.stderr_tail = tuple(stderr_tail)
        self.status = status


class WasmTrapError(LabkitError):
    """A WebAssembly plugin trapped: a bad memory access, its fuel used up, a timeout.

    ``reason`` is wasmtime's (``out of bounds memory access``, ``all fuel consumed by
    WebAssembly``, ``interrupt``); ``text`` wasmtime's whole report. The host is unharmed.
    """

    def __init__(self, what: str, *, fix: str = "", path: Path, function: str, reason: str,
                 text: str) -> None:
        super().__init__(what, fix=fix)
        self.path = path
        self.function = function
        self.reason = reason
        self.text = text


class ExtismError(LabkitError):
    """Extism refused a plugin, or a call to it failed.

    ``kind`` says what happened: at load, ``missing-host-function``, ``needs-wasi`` or
    ``load``; in a call, ``timeout`` (the manifest's ``timeout_ms``), ``memory-limit`` (its
    ``memory.max_pages``), ``trap`` (the wasm code trapped or exited), ``plugin-error`` (the
    plugin returned a failure and its message), ``exit-code`` (a failure without a message)
    or ``host-function`` (a host function raised, or its answer did not fit). ``function`` is
    the export called (``""`` at load), ``text`` Extism's own message and ``frames`` the wasm
    backtrace it gave, innermost first. The host is unharmed.
    """

    def __init__(self, what: str, *, fix: str = "", path: Path, function: str, kind: str,
                 text: str, frames: Sequence[str] = ()) -> None:
        super().__init__(what, fix=fix)
        self.path = path
        self.function = function
        self.kind = kind
        self.text = text
        self.frames = tuple(frames)
