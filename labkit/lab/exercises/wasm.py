"""Exercises of notebook 09, WebAssembly plugins: the learner loads the sample with a fuel
budget, writes a wasm plugin, and loads the Extism plugin with a memory limit; the judges run
them in wasmtime or libextism in this process (a trap cannot crash it) with a timeout, so a
plugin that never returns is stopped too."""

from __future__ import annotations

from typing import Any

from ...errors import ExtismError, InputError, WasmTrapError
from ...inprocess.extism import ExtismPlugin, load_extism
from ...inprocess.wasm import WasmPlugin, load_wasm, shout
from .framework import Exercise, RefusedError, kind
from .judging import built_file

#: Seconds a judged wasm call may run before the judge's own timeout stops it.
LIMIT = 5.0
SHOUTED = ("hello", "forty characters of text, to be shouted.")


def fuel_budget(answer: Any) -> str:
    if not isinstance(answer, WasmPlugin):
        raise RefusedError(f"expected what labkit.load_wasm returned; got {kind(answer)}")
    missing = sorted({"shout", "spin", "buffer", "capacity"} - set(answer.functions))
    if missing:
        raise RefusedError(
            f"{answer.path.name} exports no {', '.join(missing)}: load the sample of "
            "section 1")
    if answer.fuel is None:
        raise RefusedError("it was loaded without fuel: only a timeout would stop spin")
    plugin = load_wasm(answer.path, fuel=answer.fuel, timeout=LIMIT)
    for text in SHOUTED:
        try:
            said = shout(plugin, text)
        except WasmTrapError as trap:
            raise RefusedError(f"{answer.fuel} fuel is too little for wasm_shout of {len(text)} "
                               f"characters: {trap.reason}") from None
        if said != text.upper() + "!":
            raise RefusedError(f"wasm_shout({text!r}) gave {said!r}")
    try:
        plugin.call("spin")
    except WasmTrapError as trap:
        if trap.reason == "interrupt":
            raise RefusedError(
                f"with {answer.fuel} fuel, spin was still running after {LIMIT:g} s: "
                "the budget stops it far too late") from None
        return (f"wasm_shout worked on {len(SHOUTED[0])} and {len(SHOUTED[1])} characters, and "
                f"spin was stopped: {trap.reason}")
    raise RefusedError("spin returned, which it never does")  # pragma: no cover


#: Byte strings the judge reverses through the plugin's memory.
REVERSED = (b"hello, wasm", b"", b"x", b"ab", bytes(range(1, 128)))


def _reverse(plugin: WasmPlugin, data: bytes) -> Any:
    where = plugin.call("buffer")
    plugin.write(where, data)
    length = plugin.call("reverse", len(data))
    return length, plugin.read(where, len(data))


def wasm_reverse(answer: Any) -> str:
    path = built_file(answer, "your .wasm build (what labkit.build_shared returned)")
    try:
        plugin = load_wasm(path, timeout=LIMIT)
    except InputError as error:
        raise RefusedError(str(error)) from None
    missing = sorted({"buffer", "capacity", "reverse"} - set(plugin.functions))
    if missing:
        raise RefusedError(f"{path.name} exports {plugin.functions}, no {', '.join(missing)}")
    try:
        capacity = plugin.call("capacity")
        if capacity < 128:
            raise RefusedError(f"capacity() says {capacity}: give the buffer room for 128 bytes")
        for data in (*REVERSED, b"y" * (capacity - 1) + b"z"):
            length, got = _reverse(plugin, data)
            if (length, got) != (len(data), data[::-1]):
                shown = f"{len(data)} bytes" if len(data) > 20 else repr(data)
                raise RefusedError(f"reverse of {shown} returned {length} and left "
                                   f"{got[:20]!r}{'...' if len(got) > 20 else ''} in the buffer")
        for wrong in (capacity + 1, -1):
            if (said := plugin.call("reverse", wrong)) != -1:
                raise RefusedError(
                    f"reverse({wrong}) returned {said}, not -1: {wrong} bytes do not "
                    f"fit a buffer of {capacity}")
    except WasmTrapError as trap:
        raise RefusedError(f"the plugin trapped: {trap.reason}") from None
    return (f"reverse turned {len(REVERSED) + 1} byte strings around in the plugin's memory, "
            "a full buffer included, and refused lengths that do not fit")


#: What hog must be allowed, and refused, under the learner's memory limit (MiB).
KEPT, REFUSED = 8, 16


def memory_limit(answer: Any) -> str:
    if not isinstance(answer, ExtismPlugin):
        raise RefusedError(f"expected what labkit.load_extism returned; got {kind(answer)}")
    if "hog" not in answer.functions:
        raise RefusedError(f"{answer.path.name} exports no hog: load the Extism plugin of "
                           "section 7")
    pages = answer.max_pages
    if pages is None:
        raise RefusedError("it was loaded without a memory limit: hog gets all it asks for")
    limit = f"a limit of {pages} pages ({pages * 64 / 1024:g} MiB to grow by)"
    for mib in (KEPT, REFUSED):
        plugin = load_extism(answer.path, host_functions=answer.host_functions,
                             max_pages=pages, timeout_ms=int(LIMIT * 1000))
        try:
            plugin.call("hog", str(mib))
        except ExtismError as error:
            if error.kind != "memory-limit":
                raise RefusedError(f"hog of {mib} MiB failed, not for memory: "
                                   f"{error.what}") from None
            if mib == KEPT:
                raise RefusedError(f"under {limit}, hog of {KEPT} MiB was refused: the "
                                   "limit is too low (the module's initial memory must fit "
                                   "it too, and Go's heap needs room beyond what hog asks "
                                   "for)") from None
        else:
            if mib == REFUSED:
                raise RefusedError(f"under {limit}, hog of {REFUSED} MiB was allocated too: "
                                   "the limit is too high")
    return (f"under {limit}, hog allocated {KEPT} MiB, and {REFUSED} MiB was refused: "
            "memory.max_pages")


EXERCISES = [
    Exercise(
        "09.1",
        "Load the wasm sample with a fuel budget that lets wasm_shout handle texts of up "
        "to 40 characters, and stops spin within 5 seconds.",
        ("Fuel is counted per call: try budgets and see which ones trap, for shout and for "
         "spin.",
         "Section 6 (A plugin that never returns) and help(labkit.load_wasm)."),
        fuel_budget),
    Exercise(
        "09.2",
        "Write a wasm plugin whose reverse(len) reverses the first len bytes of its buffer "
        "in place, or returns -1 if they do not fit.",
        ("The plugin sees numbers only; the bytes travel through its own memory.",
         "Sections 1, 2 and 4: transform.c's EXPORT, buffer and capacity, its wasm32 "
         "build, and how the host copies bytes in and out."),
        wasm_reverse),
    Exercise(
        "09.3",
        "Load the Extism plugin with a manifest whose memory limit lets hog allocate 8 MiB "
        "but refuses it 16 MiB.",
        ("A page is 64 KiB, and Go's heap needs room beyond what hog asks for: try limits.",
         "Section 10 (The manifest's memory limit) and help(labkit.load_extism)."),
        memory_limit),
]
