"""WebAssembly plugins (the sample is built by :mod:`labkit.samples.wasm`), run in-process by
wasmtime.

A wasm plugin runs inside the host's process, yet cannot crash it: every memory access is
checked against the plugin's own linear memory, and a bad one becomes a *trap*, an error
the host catches. Fuel (a budget of instructions) and epochs (a deadline the host moves)
stop a plugin that never returns. :func:`load_wasm` returns a :class:`WasmPlugin`; a trap
raises :class:`~labkit.errors.WasmTrapError` with wasmtime's reason.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import wasmtime

from ..errors import InputError, WasmTrapError
from ..paths import existing_file, show

#: The time limit of a call when neither fuel nor a timeout is given: a call that never
#: returns would otherwise hang the notebook's kernel for good.
DEFAULT_TIMEOUT = 10.0


class WasmPlugin:
    """One instance of a wasm module in its own wasmtime store.

    Parameters of :func:`load_wasm`: ``fuel`` caps the instructions of every call (None: no
    cap); ``timeout`` (seconds) interrupts a call that runs longer, through wasmtime's epochs:
    a watchdog thread of the plugin's moves the engine's epoch when a call's deadline passes.
    """

    def __init__(self, path: Path, fuel: int | None, timeout: float | None) -> None:
        self.path = path
        self.fuel = fuel
        self.timeout = timeout
        config = wasmtime.Config()
        config.consume_fuel = fuel is not None
        config.epoch_interruption = timeout is not None
        self.engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(self.engine)
        try:
            self.module = wasmtime.Module.from_file(self.engine, str(path))
        except wasmtime.WasmtimeError as exc:
            raise InputError(f"{show(path)!r} is not a WebAssembly module wasmtime accepts: "
                             f"{exc}", fix="build it with target='wasm32-freestanding'",
                             path=path) from None
        if self.module.imports:
            wanted = ", ".join(f"{i.module}.{i.name}" for i in self.module.imports)
            raise InputError(f"{show(path)!r} imports {wanted}; labkit gives a plugin no "
                             "imports", fix="build it freestanding (no libc calls)", path=path)
        self._watchdog = _Watchdog(self.engine, timeout) if timeout is not None else None
        self._refuel()
        if self._watchdog is not None:
            self.store.set_epoch_deadline(1)
        self.instance = wasmtime.Instance(self.store, self.module, [])
        self.exports = self.instance.exports(self.store)
        self._functions: dict[str, wasmtime.Func] = {}
        for export in self.module.exports:
            function = self.exports[export.name]
            if isinstance(function, wasmtime.Func):
                self._functions[export.name] = function

    @property
    def functions(self) -> list[str]:
        """The names of the functions the module exports."""
        return list(self._functions)

    @property
    def memory(self) -> wasmtime.Memory:
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        return memory

    @property
    def memory_size(self) -> int:
        """The size of the plugin's linear memory in bytes: all it can ever touch."""
        return int(self.memory.data_len(self.store))

    def call(self, name: str, *args: Any) -> Any:
        """Call the exported function ``name``. A trap (a bad memory access, fuel used up,
        the timeout) raises :class:`WasmTrapError`; the plugin stays usable afterwards."""
        function = self._functions.get(name)
        if function is None:
            raise InputError(f"{show(self.path)!r} exports no function {name!r}; it exports "
                             f"{', '.join(self.functions)}", fix=f"mark it EXPORT({name}) in C")
        self._refuel()
        if self._watchdog is not None:
            self.store.set_epoch_deadline(1)
            self._watchdog.arm()
        try:
            return function(self.store, *args)
        except wasmtime.Trap as trap:
            raise _trap(self.path, name, trap) from None
        finally:
            if self._watchdog is not None:
                self._watchdog.disarm()

    def write(self, offset: int, data: bytes) -> None:
        """Copy ``data`` into the plugin's memory at ``offset`` (the host's half of a call
        that passes bytes: nothing is shared, everything is copied)."""
        self.memory.write(self.store, data, offset)

    def read(self, offset: int, length: int) -> bytes:
        """Copy ``length`` bytes out of the plugin's memory."""
        return bytes(self.memory.read(self.store, offset, offset + length))

    def _refuel(self) -> None:
        if self.fuel is not None:
            self.store.set_fuel(self.fuel)


    def __repr__(self) -> str:
        limits = [f"fuel={self.fuel}"] if self.fuel is not None else []
        limits += [f"timeout={self.timeout:g}s"] if self.timeout is not None else []
        return (f"<WasmPlugin {show(self.path)}: {', '.join(self.functions)}"
                f"{' (' + ', '.join(limits) + ')' if limits else ''}>")


def shout(plugin: WasmPlugin, text: str) -> str:
    """Call the sample's ``shout`` the way a host passes data to wasm: copy the text into the
    plugin's memory, call, copy the answer out."""
    data = text.encode()
    capacity = plugin.call("capacity")
    if len(data) >= capacity:
        raise InputError(f"{len(data)} bytes do not fit the plugin's buffer ({capacity} bytes)",
                         fix=f"pass a text shorter than {capacity} bytes")
    where = plugin.call("buffer")
    plugin.write(where, data)
    length = plugin.call("shout", len(data))
    return plugin.read(where, length).decode()


_UNSET: Any = object()


def load_wasm(
    path: str | os.PathLike[str], *, fuel: int | None = None, timeout: float | None = _UNSET,
) -> WasmPlugin:
    """Compile and instantiate a ``.wasm`` module with wasmtime (no imports given).

    Every call has a limit: ``fuel`` instructions, or ``timeout`` seconds, or both. Without
    either, the timeout is :data:`DEFAULT_TIMEOUT`; ``timeout=None`` is accepted only with
    fuel, since a call with no limit at all that never returns hangs the caller for good."""
    source = existing_file(path, "WebAssembly module")
    if fuel is not None and fuel <= 0:
        raise InputError(f"fuel must be positive, not {fuel!r}",
                         fix="pass a number of instructions above 0, e.g. fuel=1_000_000")
    if timeout is _UNSET:
        timeout = DEFAULT_TIMEOUT if fuel is None else None
    if timeout is None and fuel is None:
        raise InputError("a wasm plugin needs a limit: with neither fuel nor a timeout, a call "
                         "that never returns would hang this process for good", fix="pass "
                         "fuel=N, or a timeout in seconds")
    if timeout is not None and timeout <= 0:
        raise InputError(f"timeout must be positive, not {timeout!r}",
                         fix="pass a number of seconds above 0")
    return WasmPlugin(source, fuel, timeout)


class _Watchdog:
    """One daemon thread per plugin that moves the engine's epoch when a call outlives its
    deadline (cheaper than a timer thread per call). Arming a call wakes the thread only when
    the deadline comes before the thread's own next wake-up (at most a second away), so a
    call under a long limit costs two attribute writes, not a thread switch."""

    def __init__(self, engine: wasmtime.Engine, seconds: float) -> None:
        self._engine = engine
        self._seconds = seconds
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._wakes_at = 0.0  # when the thread wakes by itself next
        threading.Thread(target=_watch, args=(weakref.ref(self),), name="labkit-wasm-watchdog",
                         daemon=True).start()

    def arm(self) -> None:
        deadline = time.monotonic() + self._seconds
        self._deadline = deadline
        if deadline < self._wakes_at:
            with self._cond:
                self._cond.notify()

    def disarm(self) -> None:
        self._deadline = None

    def _check(self) -> None:
        """Wait for the deadline, at most a second at a time; move the epoch once it passed."""
        with self._cond:
            deadline = self._deadline
            now = time.monotonic()
            if deadline is not None and deadline <= now:
                self._deadline = None
                self._engine.increment_epoch()
                return
            wait = 1.0 if deadline is None else min(deadline - now, 1.0)
            self._wakes_at = now + wait
            self._cond.wait(wait)


def _watch(ref: weakref.ref[_Watchdog]) -> None:
    """The watchdog's thread: it ends within a second of its plugin being dropped."""
    while (watchdog := ref()) is not None:
        watchdog._check()
        del watchdog


def _trap(path: Path, function: str, trap: wasmtime.Trap) -> WasmTrapError:
    text = str(trap)
    reasons = re.findall(r"wasm trap: (.+)", text)
    reason = reasons[-1].strip() if reasons else trap.message.strip().splitlines()[-1]
    fault = re.search(r"(memory fault at wasm address \w+ in linear memory of size \w+)", text)
    fixes = {
        "out of bounds memory access": "the plugin must stay inside its linear memory; check "
        "the pointer it used",
        "all fuel consumed by WebAssembly": "give the call more fuel, or fix the plugin's loop",
        "interrupt": "raise the timeout, or fix the plugin's loop",
    }
    message = (f"wasm plugin {show(path)!r} trapped in {function}(): {reason}"
               f"{' (' + fault.group(1) + ')' if fault else ''}. The host is unharmed and the "
               f"plugin can be called again")
    return WasmTrapError(message, fix=fixes.get(reason, "fix the plugin"), path=path,
                         function=function, reason=reason, text=text)
