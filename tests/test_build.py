"""labkit.build.c with real compilers: cc natively, zig cc for musl, aarch64 and wasm32."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.build.c import compile_c

from .conftest import HELLO_C


def test_shared_object_is_built_where_asked(hello_so: labkit.Artifact) -> None:
    assert hello_so.path == Path("build/libhello.so")
    assert hello_so.path.read_bytes()[:4] == b"\x7fELF"
    assert str(hello_so) == "build/libhello.so"
    assert "-shared" in hello_so.command and "-fPIC" in hello_so.command


def test_executable_runs(workdir: Path) -> None:
    exe = labkit.build_executable('#include <stdio.h>\nint main(void){puts("ran");return 3;}\n', "prog")
    proc = subprocess.run([str(exe.path.resolve())], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (3, "ran\n")


def test_a_cache_hit_shows_the_command_a_fresh_build_ran(workdir: Path, unique: str) -> None:
    source = workdir / "withheader.c"
    (workdir / "withheader.h").write_text("#define ANSWER 42\n")
    source.write_text(unique + '#include "withheader.h"\nint answer(void) { return ANSWER; }\n')
    fresh = labkit.build_shared(source)
    again = labkit.build_shared(source)
    assert not fresh.from_cache and again.from_cache
    assert f"-I{workdir}" in " ".join(fresh.command)  # the header's folder, for the copy it builds
    assert again.command == fresh.command and again.command_line == fresh.command_line


def test_second_build_is_a_cache_hit(workdir: Path, unique: str) -> None:
    first = labkit.build_shared(unique + HELLO_C, "cached")
    assert not first.from_cache
    os.remove(first.path)
    second = labkit.build_shared(unique + HELLO_C, "cached")
    assert second.from_cache and second.key == first.key
    assert second.path.read_bytes() == (
        labkit.build_shared(unique + HELLO_C, "cached").path.read_bytes()
    )


def test_a_python_reached_through_a_symlinked_folder_hits_the_same_cache(
    workdir: Path, unique: str, tmp_path: Path
) -> None:
    """Binder's postBuild and kernels run /srv/conda/envs/notebook/bin/python; a venv reached
    through a symlink is the same tools, so warm's builds must serve it (zig is keyed on the
    Python that runs it, Go on the go next to that Python)."""
    source = unique + "int twice(int x) { return 2 * x; }\n"
    first = labkit.build_shared(source, "twice", target="aarch64-linux-gnu")
    assert not first.from_cache
    link = tmp_path / "env"
    link.symlink_to(Path(sys.prefix), target_is_directory=True)
    probe = ("import labkit\n"
             f"a = labkit.build_shared({source!r}, 'twice', target='aarch64-linux-gnu')\n"
             "print(a.from_cache, a.key, labkit.toolchain.find_go().identity)")
    done = subprocess.run([str(link / "bin" / "python"), "-c", probe], cwd=workdir,
                          capture_output=True, text=True, timeout=120, check=True)
    from_cache, key, go = done.stdout.split(" ", 2)
    assert from_cache == "True" and key == first.key
    assert go.strip() == labkit.toolchain.find_go().identity


def test_changed_flags_miss_the_cache(workdir: Path, unique: str) -> None:
    plain = labkit.build_shared(unique + HELLO_C, "flags")
    hidden = labkit.build_shared(unique + HELLO_C, "flags", cflags=["-fvisibility=hidden"])
    assert plain.key != hidden.key and not hidden.from_cache


def test_rebuild_replaces_the_file_with_a_new_inode(workdir: Path, unique: str) -> None:
    a = labkit.build_shared(unique + "int v(void){return 1;}\n", "swap")
    inode = a.path.stat().st_ino
    labkit.build_shared(unique + "int v(void){return 2;}\n", "swap")
    assert a.path.stat().st_ino != inode  # a process with the old file mapped keeps it intact


def test_file_source(workdir: Path) -> None:
    src = workdir / "plug.c"
    src.write_text('#include "plug.h"\nint answer(void) { return ANSWER; }\n')
    (workdir / "plug.h").write_text("#define ANSWER 42\n")
    art = labkit.build_shared(src)
    assert art.path.name == "libplug.so"
    with labkit.load(art.path) as lib:
        assert lib.function("answer", "int(void)")() == 42


def test_syntax_error_names_the_line_and_keeps_stderr(workdir: Path, unique: str) -> None:
    with pytest.raises(labkit.BuildError, match=r"(?s)could not build.*broken\.c:3:.*error.*Fix:") as info:
        labkit.build_shared(unique + "int ok(void) { return 1; }\nint bad(void) { return }\n", "broken")
    assert info.value.returncode != 0 and "error" in info.value.stderr
    assert info.value.diagnosis.startswith("broken.c:3:")
    assert info.value.command[0].endswith("cc")


def test_missing_fpic_gets_the_fpic_hint(workdir: Path, unique: str) -> None:
    source = unique + "int counter;\nint bump(void) { return ++counter; }\n"
    with pytest.raises(labkit.BuildError, match=r"recompile with -fPIC(?s:.*)Fix: build position-independent code") as info:
        compile_c(source, name="nopic", default_flags=False, cflags=["-fno-pic", "-shared"])
    assert "recompile with -fPIC" in info.value.diagnosis
    assert info.value.fix == "build position-independent code: add -fPIC to cflags"


def test_file_errors_name_the_real_file(workdir: Path) -> None:
    src = workdir / "oops.c"
    src.write_text("int oops(void) { return x; }\n")
    with pytest.raises(labkit.BuildError, match=r"oops\.c:1:"):
        labkit.build_shared(src)


@pytest.mark.parametrize(
    ("source", "options", "message"),
    [
        pytest.param("hello.c", {}, r"(?s)looks like a file name.*\nFix: pass pathlib\.Path\('hello\.c'\)", id="filename-as-text"),
        pytest.param("int x;\n", {}, r"needs name=", id="text-without-name"),
        pytest.param(Path("nowhere.c"), {}, r"'nowhere\.c' does not exist", id="missing-file"),
        pytest.param(Path("."), {}, r"is a directory", id="directory"),
        pytest.param("int x;\n", {"name": "x", "target": "sparc-solaris"}, r"unknown target 'sparc-solaris'", id="bad-target"),
        pytest.param("int x;\n", {"name": "x", "kind": "static"}, r"kind 'static' is not something labkit builds\. Fix: pass kind='shared'", id="bad-kind"),
    ],
)
def test_bad_arguments(workdir: Path, source: object, options: dict[str, object], message: str) -> None:
    with pytest.raises(labkit.InputError, match=message):
        compile_c(source, **options)  # type: ignore[arg-type]


def test_missing_compiler_names_what_to_install(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(labkit.ToolchainError, match=r"no C compiler 'no-such-cc'(?s:.*)Fix: install a C compiler"):
        labkit.build_shared("int x;\n", "x")


@pytest.mark.parametrize(
    ("target", "machine"),
    [("aarch64-linux-gnu", "aarch64"), ("x86_64-linux-musl", "x86_64"), ("x86_64-linux-gnu", "x86_64")],
)
def test_zig_targets(workdir: Path, target: str, machine: str) -> None:
    art = labkit.build_shared("int add(int a, int b) { return a + b; }\n", "cross", target=target)
    info = labkit.read_elf(art.path)
    assert (info.machine, info.type, art.target) == (machine, "shared object", target)
    assert info.symbol("add") is not None and info.symbol("add").defined  # type: ignore[union-attr]


def test_musl_executable_asks_for_the_musl_interpreter(workdir: Path) -> None:
    exe = labkit.build_executable('#include <stdio.h>\nint main(void){return puts("x");}\n', "alpine",
                                  target="x86_64-linux-musl")
    assert labkit.read_elf(exe.path).interpreter == "/lib/ld-musl-x86_64.so.1"


def test_wasm32(workdir: Path) -> None:
    art = labkit.build_shared("int add(int a, int b) { return a + b; }\n", "adder", target="wasm32-freestanding")
    assert art.path.name == "adder.wasm" and art.path.read_bytes()[:4] == b"\0asm"


def test_missing_header_for_wasm_says_why(workdir: Path) -> None:
    with pytest.raises(labkit.BuildError, match=r"(?s)'stdio\.h' file not found.*Fix: a header is missing.*wasm32-freestanding has no C library") as info:
        labkit.build_shared("#include <stdio.h>\nint f(void) { return 1; }\n", "nolibc", target="wasm32-freestanding")
    assert info.value.diagnosis.startswith("nolibc.c:1:10: fatal error")
