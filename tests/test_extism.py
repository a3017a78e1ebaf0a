"""Extism for real: the pinned Go builds plugins/wasm/extism for wasip1 with extism/go-pdk,
libextism (the pinned extism SDK) runs it in this process, the Python host function is called
back, and the manifest's memory limit and timeout stop it with the right error."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import wasmtime

import labkit
from labkit.errors import ExtismError, InputError


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> labkit.Artifact:
    return labkit.build_extism_sample(tmp_path_factory.mktemp("extism"))


class Counter:
    """A host function that numbers the texts the plugin shows it, and keeps them."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, text: bytes) -> bytes:
        self.seen.append(text)
        return str(len(self.seen)).encode()


def load(built: labkit.Artifact, **options: object) -> labkit.ExtismPlugin:
    hosts = options.pop("host_functions", {"next_number": Counter()})
    return labkit.load_extism(built, host_functions=hosts, **options)  # type: ignore[arg-type]


# -- the build ----------------------------------------------------------------------------------

def test_the_go_plugin_builds_for_wasip1_through_labkit(built: labkit.Artifact,
                                                         tmp_path: Path) -> None:
    assert built.path.name == "extism_plugin.wasm"
    assert built.path.read_bytes()[:4] == b"\0asm"
    assert built.command_line == ("CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm go build "
                                  "-buildmode=c-shared -o extism_plugin.wasm .")
    again = labkit.build_extism_sample(tmp_path)
    assert again.from_cache and again.path.read_bytes() == built.path.read_bytes()


def test_go_pdk_is_pinned_with_its_checksum() -> None:
    module = labkit.EXTISM_SOURCE.parent
    assert "require github.com/extism/go-pdk v1.1.3\n" in (module / "go.mod").read_text()
    sums = (module / "go.sum").read_text().splitlines()
    assert [line.split()[:2] for line in sums] == [
        ["github.com/extism/go-pdk", "v1.1.3"], ["github.com/extism/go-pdk", "v1.1.3/go.mod"]]


@pytest.mark.parametrize(("options", "says"), [
    ({"mode": "plugin"}, "Go has no -buildmode=plugin for wasip1/wasm"),
    ({"mode": "c-shared", "cgo": True}, "cgo=True: Go's wasip1/wasm port has no cgo"),
], ids=["plugin-mode", "cgo"])
def test_build_go_refuses_what_wasip1_cannot_do(options: dict[str, object], says: str) -> None:
    with pytest.raises(InputError, match=re.escape(says)):
        labkit.build_go(".", module=labkit.EXTISM_SOURCE.parent, target="wasip1/wasm",
                        **options)  # type: ignore[arg-type]


# -- what the module asks for and offers, read from the binary ---------------------------------

def wasmtime_view(path: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """The imports and exports as wasmtime reads them, in read_wasm's words."""
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(path))

    def sig(ty: object) -> str:
        if not isinstance(ty, wasmtime.FuncType):
            return ""
        names = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}
        params = [names[str(t)] for t in ty.params]
        results = [names[str(t)] for t in ty.results]
        out = results[0] if len(results) == 1 else f"({', '.join(results)})"
        return f"({', '.join(params)}) -> {out}"

    imports = [(i.module, i.name or "", sig(i.type)) for i in module.imports]
    exports = [(e.name, sig(e.type)) for e in module.exports]
    return imports, exports


def test_read_wasm_agrees_with_wasmtime(built: labkit.Artifact, tmp_path: Path) -> None:
    c_wasm = labkit.build_wasm_sample(tmp_path)["wasm"].path
    for path in (built.path, c_wasm):
        info = labkit.read_wasm(path)
        imports, exports = wasmtime_view(path)
        assert [(e.module, e.name, e.signature) for e in info.imports] == imports
        assert [(e.name, e.signature) for e in info.exports] == exports
    info = labkit.read_wasm(built.path)
    assert [str(e) for e in info.imported_from("extism:host/user")] == [
        "extism:host/user.next_number (i64) -> i64"]
    assert info.functions() == ["_initialize", "transform", "numbered", "hog", "spin"]


def test_read_wasm_refuses_what_is_not_a_module(tmp_path: Path, built: labkit.Artifact) -> None:
    text = tmp_path / "notes.wasm"
    text.write_text("not a module")
    with pytest.raises(InputError, match=r"does not start with \\0asm"):
        labkit.read_wasm(text)
    cut = tmp_path / "cut.wasm"
    cut.write_bytes(built.path.read_bytes()[:3000])
    with pytest.raises(InputError, match="is not a WebAssembly module labkit can read"):
        labkit.read_wasm(cut)


# -- a call, and a host function called back ---------------------------------------------------

def test_a_call_passes_bytes_in_and_out(built: labkit.Artifact) -> None:
    plugin = load(built)
    assert plugin.functions == ["transform", "numbered", "hog", "spin"]
    assert plugin.call("transform", b"hello, extism") == b"HELLO, EXTISM"
    assert plugin.call("transform", "a str goes as UTF-8: é") == "A STR GOES AS UTF-8: É".encode()
    assert plugin.call("transform") == b""
    big = bytes(range(97, 123)) * 40_000  # about 1 MB through Extism's memory
    assert plugin.call("transform", big) == big.upper()
    assert plugin.manifest == {"wasm": [{"path": str(built.path)}], "timeout_ms": 10_000}
    assert repr(plugin).endswith(": transform, numbered, hog, spin (timeout_ms=10000, wasi; "
                                 "host functions: next_number)>")


def test_the_plugin_calls_the_host_function_back(built: labkit.Artifact) -> None:
    counter = Counter()
    plugin = load(built, host_functions={"next_number": counter})
    assert plugin.call("numbered", b"hello") == b"1: HELLO"
    assert plugin.call("numbered", "again") == b"2: AGAIN"
    assert counter.seen == [b"hello", b"again"]  # the host saw the plugin's bytes
    assert plugin.call("transform", b"no callback") == b"NO CALLBACK"
    assert counter.seen == [b"hello", b"again"]


def test_a_host_function_may_answer_a_str_or_nothing(built: labkit.Artifact) -> None:
    plugin = load(built, host_functions={"next_number": lambda text: f"#{len(text)}"})
    assert plugin.call("numbered", b"four") == b"#4: FOUR"
    silent = load(built, host_functions={"next_number": lambda text: b""})
    assert silent.call("numbered", b"x") == b": X"


def test_a_plugin_that_needs_a_host_function_is_refused_without_it(built: labkit.Artifact) -> None:
    with pytest.raises(ExtismError, match=r"imports the host function next_number \(i64\) -> "
                       r"i64 from extism:host/user, and host_functions gives none by that name\n"
                       r"Fix: pass host_functions=\{'next_number': a function from bytes to "
                       r"bytes\}") as info:
        labkit.load_extism(built, host_functions={"next": Counter()})
    assert info.value.kind == "missing-host-function"
    with pytest.raises(InputError, match=r"host_functions\['next_number'\] is int"):
        labkit.load_extism(built, host_functions={"next_number": 1})  # type: ignore[dict-item]


def test_a_host_function_that_raises_fails_the_call(
    built: labkit.Artifact, capfd: pytest.CaptureFixture[str],
) -> None:
    def broken(text: bytes) -> bytes:
        raise KeyError(text)

    plugin = load(built, host_functions={"next_number": broken})
    with pytest.raises(ExtismError, match=r"the host function next_number failed while "
                       r"numbered\(\) of '.*extism_plugin.wasm' called it: KeyError: b'x'\. "
                       r"Extism gives a host function no way to fail the call, so the plugin "
                       r"went on with an empty answer; labkit discards its output") as info:
        plugin.call("numbered", b"x")
    assert info.value.kind == "host-function" and isinstance(info.value.__cause__, KeyError)
    assert capfd.readouterr().err == ""  # not the SDK's "Exception ignored from cffi callback"
    assert plugin.call("transform", b"fine") == b"FINE"
    wrong = load(built, host_functions={"next_number": lambda text: 42})
    with pytest.raises(ExtismError, match="TypeError: it returned int, not bytes or a str"):
        wrong.call("numbered", b"x")


BIG_ANSWER = """
import extism
from extism import ValType
@extism.host_fn(name="next_number", signature=([ValType.I64], [ValType.I64]))
def next_number(current, inputs, outputs):
    current.return_bytes(outputs[0], b"7" * 5_000_000)
plugin = extism.Plugin({{"wasm": [{{"path": {path!r}}}], "memory": {{"max_pages": 64}}}},
                       wasi=True, functions=[next_number])
plugin.call("numbered", b"x")
"""


def test_an_answer_without_room_is_refused_where_the_sdk_crashes(built: labkit.Artifact) -> None:
    """The SDK's return_bytes copies the answer to offset 0 when Extism could not allocate
    it; 5 MB past the start of a small memory is outside it: SIGSEGV. labkit checks first."""
    outcome = labkit.run_program([sys.executable, "-c", BIG_ANSWER.format(path=str(built.path))])
    assert outcome.signal == "SIGSEGV", outcome.summary()
    plugin = load(built, host_functions={"next_number": lambda text: b"7" * 5_000_000},
                  max_pages=64)
    with pytest.raises(ExtismError, match="Extism found no room for its answer of 5000000 "
                       r"bytes under the manifest's memory.max_pages.*\nFix: raise max_pages, "
                       "or answer with fewer bytes"):
        plugin.call("numbered", b"x")


# -- the manifest's limits ---------------------------------------------------------------------

def test_the_memory_limit_refuses_a_large_allocation(built: labkit.Artifact) -> None:
    plugin = load(built, max_pages=64)  # 4 MiB to grow by
    assert plugin.manifest["memory"] == {"max_pages": 64}
    assert plugin.call("hog", b"2") == b"2 MiB allocated"
    with pytest.raises(ExtismError, match=r"^hog\(\) of '.*extism_plugin.wasm' needed more "
                       r"memory than the manifest's memory.max_pages \(64 pages of 64 KiB\) lets "
                       r"it grow by\nFix: raise max_pages, or make the plugin allocate less$"
                       ) as info:
        plugin.call("hog", b"8")
    assert (info.value.kind, info.value.text, info.value.function) == ("memory-limit", "oom",
                                                                      "hog")
    assert plugin.call("hog", b"2") == b"2 MiB allocated"  # a fresh instance
    assert plugin.instances == 2
    assert load(built, max_pages=1024).call("hog", b"8") == b"8 MiB allocated"


def test_after_a_trap_extism_keeps_the_instance_as_it_was(built: labkit.Artifact) -> None:
    """The trap stopped Go's allocator with its heap locked: the next allocation of the same
    instance finds the lock held, and Go's runtime throws ("self deadlock")."""
    plugin = load(built, max_pages=64, fresh_after_trap=False)
    with pytest.raises(ExtismError, match=r"memory\.max_pages"):
        plugin.call("hog", b"8")
    with pytest.raises(ExtismError, match=r"hog\(\) of '.*' trapped: the wasm code stopped in "
                       r"runtime\.abort .*; Go's runtime threw a fatal error in runtime\.lock2\n"
                       r"Fix: load it again") as info:
        plugin.call("hog", b"1")
    assert info.value.kind == "trap" and info.value.frames[-2:] == ("main.hog", "hog")
    assert plugin.instances == 1


def test_an_input_without_room_is_a_memory_limit(built: labkit.Artifact) -> None:
    plugin = load(built, max_pages=64)
    with pytest.raises(ExtismError, match=r"Extism found no room for the input or the output "
                       r"of transform\(\)") as info:
        plugin.call("transform", b"x" * (8 << 20))
    assert info.value.kind == "memory-limit"


def test_the_timeout_stops_a_plugin_that_never_returns(built: labkit.Artifact) -> None:
    plugin = load(built, timeout_ms=200)
    start = time.monotonic()
    with pytest.raises(ExtismError, match=r"^spin\(\) of '.*' ran past the manifest's timeout_ms "
                       r"\(200 ms\): Extism interrupted it\nFix: raise timeout_ms, or fix the "
                       r"plugin's loop$") as info:
        plugin.call("spin")
    assert 0.2 <= time.monotonic() - start < 5
    assert (info.value.kind, info.value.text) == ("timeout", "timeout")
    assert plugin.call("transform", b"after") == b"AFTER"


def test_the_plugin_s_own_failure_is_its_message(built: labkit.Artifact) -> None:
    plugin = load(built)
    with pytest.raises(ExtismError, match=r"hog\(\) of '.*' failed, and says: hog wants a whole "
                       r"number of MiB, not \"lots\"") as info:
        plugin.call("hog", "lots")
    assert info.value.kind == "plugin-error"
    assert plugin.instances == 1  # no trap: the same instance goes on


TINY = """(module (memory (export "memory") 1)
  (func (export "ok") (result i32) i32.const 0)
  (func (export "fail") (result i32) i32.const 3)
  (func (export "crash") (result i32) unreachable))"""


def test_a_failure_without_a_message_and_a_bare_trap(tmp_path: Path) -> None:
    path = tmp_path / "tiny.wasm"
    path.write_bytes(wasmtime.wat2wasm(TINY))
    plugin = labkit.load_extism(path)
    assert not plugin.wasi and plugin.call("ok") == b""
    with pytest.raises(ExtismError, match=r"fail\(\) of '.*' returned 3 \(failure\) without a "
                       "message") as info:
        plugin.call("fail")
    assert info.value.kind == "exit-code"
    with pytest.raises(ExtismError, match=r"crash\(\) of '.*' trapped: the wasm code stopped "
                       r"in <wasm function 2>") as info:
        plugin.call("crash")
    assert info.value.kind == "trap" and plugin.call("ok") == b""


@pytest.mark.parametrize(("options", "says"), [
    ({"timeout_ms": 0}, "timeout_ms=0: every Extism call in labkit has a time limit"),
    ({"max_pages": 0}, "max_pages=0: the memory limit is a number of 64 KiB pages"),
], ids=["timeout", "max-pages"])
def test_limits_are_checked(built: labkit.Artifact, options: dict[str, object],
                            says: str) -> None:
    with pytest.raises(InputError, match=re.escape(says)):
        load(built, **options)


def test_wasi_is_needed_by_go_and_calls_name_what_exists(built: labkit.Artifact) -> None:
    with pytest.raises(ExtismError, match=r"imports WASI \(wasi_snapshot_preview1\) and "
                       r"wasi=False") as info:
        load(built, wasi=False)
    assert info.value.kind == "needs-wasi"
    plugin = load(built)
    with pytest.raises(InputError, match=r"exports no function 'shout' Extism can call; it "
                       r"exports transform, numbered, hog, spin"):
        plugin.call("shout")
    with pytest.raises(InputError, match=r"the input of transform\(\) is int, not bytes"):
        plugin.call("transform", 42)  # type: ignore[arg-type]
