"""Extism plugins (the sample is built by :func:`labkit.samples.wasm.build_extism_sample`),
run in-process by libextism, Extism's runtime on wasmtime, through the pinned ``extism``
Python SDK.

Extism fixes what a host and a wasm plugin must agree on. An export takes no wasm
parameters and returns an ``i32``, 0 for success; its input and its output are bytes in
Extism's memory, which belongs to a second wasm module, Extism's kernel, linked in as
``extism:host/env`` with the functions that read and write it (go-pdk wraps them as
``pdk.Input`` and ``pdk.Output``); a failure is a message the plugin sets. Host functions are
imported from ``extism:host/user``. A manifest names the modules and the limits:
``memory.max_pages`` and ``timeout_ms`` here, ``allowed_hosts`` and ``allowed_paths`` too.

What labkit adds to the SDK:

- every call's export has a time limit (``timeout_ms``, 10 s unless given), as with
  :func:`~labkit.inprocess.wasm.load_wasm` (instantiation, which runs the module's
  ``_initialize``, on the first call and after a new instance, has none);
- a host function is a Python function from bytes to bytes. If it raises, the call fails
  with its exception (cffi prints it and the plugin goes on with an empty answer, since
  Extism's C API gives a host function no return path for an error; cancelling the call is
  the only, imperfect, way, and it reports a timeout); its answer is copied into
  Extism's memory only when Extism found room for it (the SDK's ``return_bytes`` writes at
  the start of the memory when the allocation failed, which for an answer larger than the
  memory ends the host process with SIGSEGV);
- after a trap (the timeout, the memory limit, a fault), the next call gets a fresh instance:
  a trap stops the wasm code wherever it was, and Extism keeps that instance, whose state may
  be half changed (Go's runtime, stopped inside its allocator, keeps its heap locked);
- Extism's messages become :class:`~labkit.errors.ExtismError` with a kind and a fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExtismError, InputError
from ..inspect.wasm import WasmInfo, read_wasm
from ..paths import show

#: A call's time limit when none is given: a call that never returns would otherwise hang the
#: notebook's kernel for good (Extism itself sets none).
DEFAULT_TIMEOUT_MS = 10_000
#: Where a plugin's host functions are imported from, and where its Extism functions are.
USER_MODULE = "extism:host/user"
KERNEL_MODULE = "extism:host/env"
WASI_MODULE = "wasi_snapshot_preview1"
#: The one signature of a labkit host function: the offset of a block of Extism memory in
#: (the question), the offset of a block out (the answer; 0 for none).
HOST_SIGNATURE = "(i64) -> i64"
PAGE = 65536

#: A host function: the plugin's question in, the host's answer out.
HostFunction = Callable[[bytes], bytes | str]

_FRAME = re.compile(r"^\s*\d+:\s+0x[0-9a-f]+ - (?:[^!\n]*!)?(.+?)\s*$", re.M)


@dataclass
class _Host:
    """What one host function's bridge needs: the Python function, and where it leaves a
    failure for the call to raise. The SDK's registry keeps the bridge for good, so the
    bridge holds this and not the plugin."""

    name: str
    function: HostFunction
    failure: list[tuple[str, str, BaseException | None]] = field(default_factory=list)


class ExtismPlugin:
    """One Extism plugin: its manifest, its host functions, an instance in libextism.

    Made by :func:`load_extism`. ``sdk`` is the ``extism.Plugin`` it calls (after a trap, a
    new one), ``info`` what the module imports and exports, ``manifest`` what Extism was
    given.
    """

    def __init__(self, path: Path, info: WasmInfo, manifest: dict[str, Any],
                 host_functions: Mapping[str, HostFunction], wasi: bool,
                 fresh_after_trap: bool) -> None:
        import extism
        from extism.extism import CompiledPlugin  # the SDK's class, not re-exported

        self._sdk = extism
        self.path = path
        self.info = info
        self.manifest = manifest
        self.host_functions = dict(host_functions)
        self.wasi = wasi
        self.fresh_after_trap = fresh_after_trap
        self.instances = 1
        self._hosts = [_Host(name, fn) for name, fn in self.host_functions.items()]
        self._callable = frozenset(self.functions)
        functions = [_bridge(host) for host in self._hosts]
        try:
            self._compiled = CompiledPlugin(manifest, wasi=wasi, functions=functions)
            self.sdk = extism.Plugin(self._compiled)
        except extism.Error as exc:
            raise ExtismError(f"Extism could not load {show(path)!r}: {exc}", fix="check the "
                              "manifest and the module; the message is Extism's", path=path,
                              function="", kind="load", text=str(exc)) from None
        self._stale = False

    @property
    def functions(self) -> list[str]:
        """The functions a host may call: the exports Extism can call (no parameters; an
        ``i32`` result or none), without the runtime's start-up (``_initialize``)."""
        return [e.name for e in self.info.exports if e.kind == "func"
                and e.signature in ("() -> i32", "() -> ()") and not e.name.startswith("_")]

    @property
    def max_pages(self) -> int | None:
        """The manifest's memory limit in 64 KiB pages (None: none)."""
        pages = self.manifest.get("memory", {}).get("max_pages")
        return int(pages) if pages is not None else None

    @property
    def timeout_ms(self) -> int:
        """The manifest's time limit of one call, in milliseconds."""
        return int(self.manifest["timeout_ms"])

    def call(self, name: str, data: bytes | str = b"") -> bytes:
        """Call the export ``name`` with ``data`` as its input (a ``str`` is sent as UTF-8)
        and return its output. Raises :class:`~labkit.errors.ExtismError` when it fails:
        the plugin's own message, the timeout, the memory limit, a trap, or a host
        function's exception. A host function runs in Python: the timeout interrupts wasm
        code only, so it takes effect once the host function has returned."""
        if name not in self._callable:
            raise InputError(f"{show(self.path)!r} exports no function {name!r} Extism can "
                             f"call; it exports {', '.join(self.functions)}",
                             fix="call one of those, or export it (Go: //go:wasmexport "
                             f"{name} on a func() int32)")
        if not isinstance(data, (bytes, str)):
            if not isinstance(data, bytearray):
                raise InputError(f"the input of {name}() is {type(data).__name__}, not bytes",
                                 fix="pass bytes, or a str (sent as UTF-8)")
            data = bytes(data)
        if self._stale:
            self.sdk = self._sdk.Plugin(self._compiled)
            self.instances += 1
            self._stale = False
        for host in self._hosts:
            host.failure.clear()
        try:
            output: bytes = self.sdk.call(name, data)
        except self._sdk.Error as exc:
            error = self._failure(name, str(exc))
            self._stale = self.fresh_after_trap and error.kind in ("timeout", "memory-limit",
                                                                    "trap")
            failed = self._host_failure(name)
            if failed is not None:
                raise failed from failed.__cause__
            raise error from None
        failed = self._host_failure(name)
        if failed is not None:
            raise failed
        return output

    def _host_failure(self, function: str) -> ExtismError | None:
        for host in self._hosts:
            for what, fix, exc in host.failure:
                error = ExtismError(
                    f"the host function {host.name} failed while {function}() of "
                    f"{show(self.path)!r} called it: {what}. Extism gives a host function no "
                    f"way to fail the call, so the plugin went on with an empty answer; "
                    f"labkit discards its output", fix=fix, path=self.path,
                    function=function, kind="host-function", text=what)
                error.__cause__ = exc
                return error
        return None

    def _failure(self, function: str, text: str) -> ExtismError:
        """Extism's message for a failed call, read: the runtime's own messages are known
        texts; any other text is the plugin's (Extism's C API gives the host the message
        only, so a plugin that sets the error "timeout" would read as a timeout)."""
        where = f"{function}() of {show(self.path)!r}"
        frames = _FRAME.findall(text) if text.startswith("error while executing") else []
        if text == "timeout":
            kind, what = "timeout", (f"{where} ran past the manifest's timeout_ms "
                                     f"({self.timeout_ms} ms): Extism interrupted it")
            fix = "raise timeout_ms, or fix the plugin's loop"
        elif text in ("oom", "failed to allocate extism memory"):
            limit = f"memory.max_pages ({self.max_pages} pages of 64 KiB)"
            kind, what = "memory-limit", (
                f"{where} needed more memory than the manifest's {limit} lets it grow by"
                if text == "oom" else
                f"Extism found no room for the input or the output of {where} under {limit}")
            fix = "raise max_pages, or make the plugin allocate less"
        elif frames:
            kind, what = "trap", f"{where} trapped: {_go_said(frames)}"
            fix = ("the plugin's code failed; labkit gives it a fresh instance for the next "
                   "call" if self.fresh_after_trap else "load it again (or keep "
                   "fresh_after_trap=True): the instance is left as the trap found it")
        elif (code := re.fullmatch(r"Error code: (-?\d+)", text)) is not None:
            kind, what = "exit-code", (f"{where} returned {code[1]} (failure) without a "
                                       "message")
            fix = "the plugin should set an error message (Go: pdk.SetErrorString)"
        else:
            kind, what = "plugin-error", f"{where} failed, and says: {text}"
            fix = "the plugin refused its input: read its message"
        return ExtismError(what, fix=fix, path=self.path, function=function, kind=kind,
                           text=text, frames=frames)

    def __repr__(self) -> str:
        limits = [f"max_pages={self.max_pages}"] if self.max_pages is not None else []
        limits.append(f"timeout_ms={self.timeout_ms}")
        hosts = f"; host functions: {', '.join(self.host_functions)}" if self._hosts else ""
        return (f"<ExtismPlugin {show(self.path)}: {', '.join(self.functions)} "
                f"({', '.join(limits)}{', wasi' if self.wasi else ''}{hosts})>")


def _go_said(frames: list[str]) -> str:
    """The wasm backtrace in a sentence, innermost first; Go's fatal errors and panics
    named (Go writes their message to the plugin's stderr, which Extism discards)."""
    shown = frames if len(frames) <= 6 else [*frames[:4], "...", *frames[-2:]]
    said = f"the wasm code stopped in {frames[0]} (backtrace: {' <- '.join(shown)})"
    for marker, what in (("runtime.throw", "Go's runtime threw a fatal error"),
                         ("runtime.gopanic", "the Go code panicked")):
        if marker in frames:
            caller = frames[frames.index(marker) + 1:][:1]
            said += f"; {what}{' in ' + caller[0] if caller else ''}"
    return said


def _bridge(host: _Host) -> Any:
    """The SDK's host function for ``host``: reads the question from Extism's memory, calls
    the Python function, and copies its answer into a block Extism allocated."""
    import extism

    i64 = extism.ValType.I64

    def bridge(current: Any, inputs: list[Any], outputs: list[Any], *_: Any) -> None:
        outputs[0].value = 0
        try:
            answer = host.function(current.input_bytes(inputs[0]))
            if isinstance(answer, str):
                answer = answer.encode()
            if not isinstance(answer, (bytes, bytearray)):
                raise TypeError(f"it returned {type(answer).__name__}, not bytes or a str")
        except Exception as exc:  # the plugin's call fails with it, not this callback
            host.failure.append((f"{type(exc).__name__}: {exc}", "fix the host function: it "
                                 "takes the plugin's bytes and returns bytes or a str", exc))
            return
        if not answer:
            return
        block = current.alloc(len(answer))
        memory = current.memory(block) if block.offset else None
        if memory is None or len(memory) != len(answer):
            host.failure.append((f"Extism found no room for its answer of {len(answer)} "
                                 "bytes under the manifest's memory.max_pages",
                                 "raise max_pages, or answer with fewer bytes", None))
            return
        memory[:] = bytes(answer)
        outputs[0].value = block.offset

    return extism.host_fn(name=host.name, namespace=USER_MODULE,
                          signature=([i64], [i64]))(bridge)


def load_extism(
    path: str | os.PathLike[str],
    *,
    host_functions: Mapping[str, HostFunction] | None = None,
    max_pages: int | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    wasi: bool | None = None,
    fresh_after_trap: bool = True,
) -> ExtismPlugin:
    """Load the Extism plugin at ``path`` with a manifest of its limits.

    Parameters:
        host_functions: ``{name: function}``, each a Python function that takes the bytes
            the plugin sends and returns bytes (or a str); the plugin imports it from
            ``extism:host/user`` with the signature ``(i64) -> i64``. Every host function
            the plugin imports must be given: Extism cannot instantiate it otherwise.
        max_pages: the manifest's ``memory.max_pages``: how many 64 KiB pages the plugin's
            memory and Extism's may grow by once it is instantiated (its initial memory
            must fit too); None for no limit.
        timeout_ms: the manifest's ``timeout_ms``, the time limit of each call.
        wasi: give the plugin WASI (preview 1): clocks and random numbers, but no files, no
            environment, and no stdout or stderr unless the host process sets
            ``EXTISM_ENABLE_WASI_OUTPUT``. By default on when the module imports it (Go's
            runtime does).
        fresh_after_trap: after a call that trapped, the next call gets a new instance
            (the default); False keeps Extism's behaviour, the same instance.

    The module is compiled once (libextism has wasmtime cache the machine code on disk, in
    ``~/.cache/wasmtime``, so a second load, even in another process, takes tens of
    milliseconds, not a second); an instance is made on the first call.
    """
    info = read_wasm(path)
    source = info.path
    hosts = dict(host_functions or {})
    for name, function in hosts.items():
        if not callable(function):
            raise InputError(f"host_functions[{name!r}] is {type(function).__name__}, not a "
                             "function", fix="give a function that takes bytes and returns "
                             "bytes")
    imported = info.imported_from(USER_MODULE)
    missing = [e for e in imported if e.name not in hosts]
    if missing:
        wanted = ", ".join(f"{e.name} {e.signature}" for e in missing)
        raise ExtismError(f"{show(source)!r} imports the host function{'s' * (len(missing) > 1)}"
                          f" {wanted} from {USER_MODULE}, and host_functions gives none by "
                          f"that name", fix=f"pass host_functions={{{missing[0].name!r}: a "
                          "function from bytes to bytes}", path=source, function="",
                          kind="missing-host-function", text="")
    for entry in imported:
        if entry.signature != HOST_SIGNATURE:
            raise ExtismError(f"{show(source)!r} imports the host function {entry.name} as "
                              f"{entry.signature}; a labkit host function is "
                              f"{HOST_SIGNATURE} (a block of bytes in, one out)",
                              fix=f"declare it in the plugin as taking and returning uint64 "
                              f"offsets (Go: func {entry.name}(uint64) uint64)", path=source,
                              function="", kind="load", text="")
    needs_wasi = any(e.module == WASI_MODULE for e in info.imports)
    if wasi is None:
        wasi = needs_wasi
    elif needs_wasi and not wasi:
        raise ExtismError(f"{show(source)!r} imports WASI ({WASI_MODULE}) and wasi=False",
                          fix="pass wasi=True (or leave it unset): Go's runtime needs WASI",
                          path=source, function="", kind="needs-wasi", text="")
    if max_pages is not None and (not isinstance(max_pages, int) or max_pages < 1):
        raise InputError(f"max_pages={max_pages!r}: the memory limit is a number of 64 KiB "
                         "pages", fix="pass a whole number of pages above 0, or None")
    if not isinstance(timeout_ms, int) or timeout_ms < 1:
        raise InputError(f"timeout_ms={timeout_ms!r}: every Extism call in labkit has a time "
                         "limit, in whole milliseconds", fix="pass a whole number of "
                         "milliseconds above 0, e.g. timeout_ms=1000")
    manifest: dict[str, Any] = {"wasm": [{"path": os.fspath(path)}]}
    if max_pages is not None:
        manifest["memory"] = {"max_pages": max_pages}
    manifest["timeout_ms"] = timeout_ms
    return ExtismPlugin(source, info, manifest, hosts, wasi, fresh_after_trap)
