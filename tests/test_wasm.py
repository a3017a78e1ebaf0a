"""WebAssembly plugins for real: zig cc builds the sample for wasm32, wasmtime runs it in this
process, and the bugs that crash the native build only trap in wasm."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import labkit
from labkit.errors import InputError, WasmTrapError
from labkit.inprocess.wasm import DEFAULT_TIMEOUT


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, labkit.Artifact]:
    return labkit.build_wasm_sample(tmp_path_factory.mktemp("wasm"))


def test_the_sample_builds_for_wasm32_and_exports_its_functions(
    built: dict[str, labkit.Artifact],
) -> None:
    assert built["wasm"].path.read_bytes()[:4] == b"\0asm"
    plugin = labkit.load_wasm(built["wasm"])
    assert plugin.functions == ["add", "buffer", "capacity", "shout", "peek", "poke", "spin"]
    assert plugin.call("add", 40, 2) == 42
    assert labkit.wasm_shout(plugin, "hello, wasm") == "HELLO, WASM!"


def test_an_out_of_bounds_read_traps_and_the_plugin_lives_on(
    built: dict[str, labkit.Artifact],
) -> None:
    plugin = labkit.load_wasm(built["wasm"])
    with pytest.raises(WasmTrapError, match=r"trapped in peek\(\): out of bounds memory access "
                       r"\(memory fault at wasm address 0x110000 in linear memory of size "
                       r"0x110000\)") as info:
        plugin.call("peek", plugin.memory_size)
    assert info.value.reason == "out of bounds memory access"
    assert plugin.call("add", 1, 1) == 2  # still usable, and this process is still here


def test_the_same_bug_natively_kills_the_process(built: dict[str, labkit.Artifact]) -> None:
    native = built["native"]
    outcome = labkit.run_isolated(
        lambda: labkit.load(native).function("peek", "int(long)")(1 << 40))
    assert outcome.signal == "SIGSEGV"


def test_fuel_stops_a_plugin_that_never_returns(built: dict[str, labkit.Artifact]) -> None:
    plugin = labkit.load_wasm(built["wasm"], fuel=1_000_000)
    with pytest.raises(WasmTrapError, match="all fuel consumed by WebAssembly") as info:
        plugin.call("spin")
    assert info.value.function == "spin"
    assert plugin.call("add", 2, 2) == 4  # refuelled for the next call


def test_a_timeout_interrupts_a_plugin_that_never_returns(
    built: dict[str, labkit.Artifact],
) -> None:
    plugin = labkit.load_wasm(built["wasm"], timeout=0.3)
    began = time.monotonic()
    with pytest.raises(WasmTrapError, match=r"spin\(\): interrupt"):
        plugin.call("spin")
    assert 0.3 <= time.monotonic() - began < 3
    assert plugin.call("add", 3, 3) == 6


def test_bad_input_gets_clear_errors(built: dict[str, labkit.Artifact], tmp_path: Path) -> None:
    text = tmp_path / "notes.wasm"
    text.write_text("not wasm")
    with pytest.raises(InputError, match="is not a WebAssembly module wasmtime accepts"):
        labkit.load_wasm(text)
    with pytest.raises(InputError, match=r"WebAssembly module '.*' does not exist(\. |\n)Fix: check the path"):
        labkit.load_wasm(tmp_path / "missing.wasm")
    with pytest.raises(InputError, match="fuel must be positive"):
        labkit.load_wasm(built["wasm"], fuel=0)
    plugin = labkit.load_wasm(built["wasm"])
    with pytest.raises(InputError, match="exports no function 'nope'; it exports add, buffer"):
        plugin.call("nope")
    with pytest.raises(InputError, match="do not fit the plugin's buffer"):
        labkit.wasm_shout(plugin, "x" * 5000)


def test_a_module_with_imports_is_refused(tmp_path: Path) -> None:
    needs = labkit.build_shared(
        "__attribute__((import_module(\"env\"), import_name(\"host_log\")))\n"
        "extern int host_log(int);\n"
        "__attribute__((export_name(\"f\"))) int f(int x) { return host_log(x); }\n",
        "needs", target="wasm32-freestanding", out_dir=tmp_path)
    with pytest.raises(InputError, match=r"imports env\.host_log; labkit gives a plugin no imports"):
        labkit.load_wasm(needs)


def test_a_write_through_null_succeeds_in_wasm_and_crashes_natively(
    built: dict[str, labkit.Artifact],
) -> None:
    """Only an access outside linear memory traps: address 0 is the plugin's own memory, so
    the sandbox protects the host, not the plugin from itself."""
    plugin = labkit.load_wasm(built["wasm"])
    assert plugin.call("poke", 0, 42) == 42 and plugin.call("peek", 0) == 42
    native = built["native"]
    outcome = labkit.run_isolated(
        lambda: labkit.load(native).function("poke", "int(long, int)")(0, 42))
    assert outcome.signal == "SIGSEGV"


def test_every_call_has_a_limit(built: dict[str, labkit.Artifact]) -> None:
    plugin = labkit.load_wasm(built["wasm"])
    assert (plugin.fuel, plugin.timeout) == (None, DEFAULT_TIMEOUT)
    assert labkit.load_wasm(built["wasm"], fuel=1000).timeout is None  # fuel is a limit
    with pytest.raises(InputError, match=r"a wasm plugin needs a limit: with neither fuel nor a timeout"):
        labkit.load_wasm(built["wasm"], timeout=None)


def test_the_watchdog_thread_ends_with_its_plugin(built: dict[str, labkit.Artifact]) -> None:
    import gc
    import threading

    def watchdogs() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "labkit-wasm-watchdog"}

    before = watchdogs()  # other tests' plugins may still be ending theirs
    plugin = labkit.load_wasm(built["wasm"], timeout=5)
    (mine,) = watchdogs() - before
    assert plugin.call("add", 1, 2) == 3 and mine.is_alive()
    del plugin
    gc.collect()
    mine.join(timeout=5)
    assert not mine.is_alive()
