"""labkit.load: real dlopen/dlsym/dlclose, the loader's flags, and diagnosed failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import labkit
from labkit import RTLD

CALLS_MISSING = "int missing_fn(void);\nint calls_missing(void) { return missing_fn(); }\nint fine(void) { return 7; }\n"


def test_load_and_call(hello_so: labkit.Artifact) -> None:
    with labkit.load(hello_so.path) as lib:
        add = lib.function("add", "int(int, int)")
        assert add(2, 3) == 5
        assert lib.variable("counter", "int")[0] == 0
        assert lib.has("greet") and not lib.has("nope")
        assert repr(lib) == "<Library build/libhello.so (RTLD_NOW | RTLD_LOCAL)>"


def test_missing_symbol_keeps_dlerror(hello_so: labkit.Artifact) -> None:
    lib = labkit.load(hello_so.path)
    with pytest.raises(labkit.SymbolError, match=r"'build/libhello\.so' has no symbol 'nope'.*undefined symbol: nope(?s:.*)Fix:") as info:
        lib.symbol("nope")
    assert info.value.symbol == "nope" and "undefined symbol: nope" in info.value.dlerror


def test_closed_library_refuses_calls(workdir: Path, unique: str) -> None:
    art = labkit.build_shared(unique + "int one(void) { return 1; }\n", "closing")
    lib = labkit.load_fresh(art.path)
    one = lib.function("one", "int(void)")
    assert lib.close() == 0 and lib.closed
    with pytest.raises(labkit.SymbolError, match=r"is closed, so 'one' may no longer be mapped"):
        one()


def test_same_path_same_handle_and_old_code(workdir: Path, unique: str) -> None:
    art = labkit.build_shared(unique + "int version(void) { return 1; }\n", "swap")
    first = labkit.load(art.path)
    labkit.build_shared(unique + "int version(void) { return 2; }\n", "swap")  # file replaced
    second = labkit.load(art.path)
    assert first.handle == second.handle
    assert second.function("version", "int(void)")() == 1  # the loader kept the old object
    fresh = labkit.load_fresh(art.path)
    assert fresh.handle != first.handle
    assert fresh.function("version", "int(void)")() == 2
    assert fresh.name == "build/libswap.so"


def test_dlclose_unmaps_the_last_handle(workdir: Path, unique: str) -> None:
    art = labkit.build_shared(unique + "int x(void) { return 1; }\n", "unmap")
    a, b = labkit.load(art.path), labkit.load(art.path)
    a.close()
    assert labkit.is_mapped(art.path)  # b still holds it
    b.close()
    assert not labkit.is_mapped(art.path)


def test_now_fails_at_load_lazy_at_call(workdir: Path) -> None:
    art = labkit.build_shared(CALLS_MISSING, "lazy")
    with pytest.raises(labkit.LoadError, match=r"(?s)cannot load 'build/liblazy\.so'.*uses the symbol 'missing_fn'.*Fix: link the library.*dlerror: .*undefined symbol: missing_fn") as info:
        labkit.load(art.path, RTLD.NOW)
    assert [p.kind for p in info.value.problems] == ["undefined-symbol"]
    lazy = labkit.load_fresh(art.path, RTLD.LAZY)
    assert lazy.function("fine", "int(void)")() == 7
    # calling the function that needs the missing symbol kills the process: only in a child
    out = labkit.run_isolated(
        "import labkit\n"
        f"lib = labkit.load_fresh({str(art.path)!r}, labkit.RTLD.LAZY)\n"
        "lib.function('calls_missing', 'int(void)')()\n"
    )
    assert out.returncode == 127 and "symbol lookup error" in out.stderr and "missing_fn" in out.stderr


def test_global_makes_symbols_visible_to_later_libraries(workdir: Path, unique: str) -> None:
    provider = labkit.build_shared(unique + "int shared_helper(void) { return 41; }\n", "provider")
    user = labkit.build_shared(unique + "int shared_helper(void);\nint use(void) { return shared_helper() + 1; }\n", "consumer")
    labkit.load_fresh(provider.path, RTLD.NOW)  # RTLD_LOCAL: invisible to others
    with pytest.raises(labkit.LoadError, match="shared_helper"):
        labkit.load_fresh(user.path, RTLD.NOW)
    labkit.load_fresh(provider.path, RTLD.NOW | RTLD.GLOBAL)
    assert labkit.load_fresh(user.path).function("use", "int(void)")() == 42


def test_bad_flags(hello_so: labkit.Artifact) -> None:
    with pytest.raises(labkit.InputError, match=r"neither RTLD\.NOW nor RTLD\.LAZY, and dlopen requires one\nFix: add RTLD\.NOW"):
        labkit.load(hello_so.path, RTLD.GLOBAL)


@pytest.mark.parametrize(
    ("which", "kind", "message"),
    [
        pytest.param("text", "not-elf", r"'bad/notes\.so' is not an ELF file", id="text"),
        pytest.param("empty", "empty", r"'bad/empty\.so' is empty", id="empty"),
        pytest.param("truncated", "truncated", r"'bad/truncated\.so' is truncated: .* ends at byte \d+, but the file has only 600 bytes", id="truncated"),
        pytest.param("directory", "directory", r"'bad/folder\.so' is a directory", id="directory"),
        pytest.param("missing", "missing-file", r"'bad/missing\.so' does not exist", id="missing"),
    ],
)
def test_bad_files_are_diagnosed(bad: dict[str, Path], which: str, kind: str, message: str) -> None:
    with pytest.raises(labkit.LoadError, match=message) as info:
        labkit.load(bad[which])
    assert [p.kind for p in info.value.problems] == [kind]
    assert "Fix:" in str(info.value)
    if which in ("text", "empty", "directory"):
        assert info.value.dlerror  # the loader's own text is kept
    if which == "truncated":  # dlopen would have died of SIGBUS: labkit never called it
        assert info.value.dlerror == "" and "did not call dlopen" in str(info.value)


def test_aarch64_library_is_named_for_what_it_is(workdir: Path, aarch64_so: Path) -> None:
    local = workdir / "libarm.so"
    shutil.copy(aarch64_so, local)
    with pytest.raises(labkit.LoadError, match=r"(?s)holds aarch64 code; this machine runs x86_64.*Fix: rebuild it for x86_64") as info:
        labkit.load(local)
    assert [p.kind for p in info.value.problems] == ["wrong-machine"]
    assert "No such file or directory" in info.value.dlerror or "ELF" in info.value.dlerror


def test_musl_library_on_glibc(workdir: Path, musl_so: Path) -> None:
    with pytest.raises(labkit.LoadError, match=r"built against musl libc") as info:
        labkit.load(musl_so)
    assert "musl" in [p.kind for p in info.value.problems]


def test_missing_dependency_and_rpath_origin(workdir: Path, unique: str) -> None:
    dep = labkit.build_shared(unique + "int dep_value(void) { return 5; }\n", "depvalue", out_dir="build/deps")
    user = labkit.build_shared(unique + "int dep_value(void);\nint get(void) { return dep_value(); }\n",
                               "needsdep", libs=[dep.path])
    with pytest.raises(labkit.LoadError, match=r"needs 'libdepvalue\.so', which the loader cannot find") as info:
        labkit.load(user.path)
    assert [p.kind for p in info.value.problems] == ["missing-library"]
    # the same library with an $ORIGIN rpath finds its dependency beside it
    fixed = labkit.build_shared(unique + "int dep_value(void);\nint get(void) { return dep_value(); }\n",
                                "withrpath", libs=[dep.path], ldflags=["-Wl,-rpath,$ORIGIN/deps"])
    assert labkit.diagnose_load(fixed.path) == []
    assert labkit.load(fixed.path).function("get", "int(void)")() == 5


def test_executable_is_not_a_library(workdir: Path) -> None:
    exe = labkit.build_executable("int main(void){return 0;}\n", "tool")
    with pytest.raises(labkit.LoadError, match=r"is a pie executable, not a shared object"):
        labkit.load(exe.path)


def test_bare_names_use_the_search_path(workdir: Path) -> None:
    assert labkit.load("libm.so.6").has("cos")
    with pytest.raises(labkit.LoadError, match=r"'libnothere\.so\.9' is not on the loader's search path"):
        labkit.load("libnothere.so.9")


def test_a_loaded_library_is_found_by_soname_not_file_name(workdir: Path, unique: str) -> None:
    plain = labkit.build_shared(unique + "int p(void) { return 1; }\n", "plainname")
    named = labkit.build_shared(unique + "int q(void) { return 2; }\n", "withsoname",
                                ldflags=["-Wl,-soname,libwithsoname.so.1"])
    labkit.load(plain.path)
    labkit.load(named.path)
    with pytest.raises(labkit.LoadError, match=r"'libplainname\.so' is not on the loader's search path"):
        labkit.load("libplainname.so")  # glibc does not match a loaded file by its file name
    assert labkit.load("libwithsoname.so.1").function("q", "int(void)")() == 2  # but by soname


def test_ld_library_path_is_honoured(workdir: Path, unique: str) -> None:
    dep = labkit.build_shared(unique + "int z(void) { return 1; }\n", "zdep", out_dir="elsewhere")
    user = labkit.build_shared(unique + "int z(void);\nint w(void) { return z(); }\n", "zuser", libs=[dep.path])
    assert labkit.diagnose_load(user.path, env={"LD_LIBRARY_PATH": str(workdir / "elsewhere")}) == []
    assert [p.kind for p in labkit.diagnose_load(user.path, env={})] == ["missing-library"]


def test_load_diagnosis_counts_what_this_process_defines(workdir: Path, unique: str) -> None:
    """The interpreter's own symbols are in the global scope: a failed load does not blame
    them, while explain, which knows no host, lists both."""
    source = unique + ("void *PyLong_FromLong(long);\nint missing_fn(void);\n"
                       "void *both(void) { return missing_fn() ? PyLong_FromLong(1) : 0; }\n")
    lib = labkit.build_shared(source, "usespython")
    with pytest.raises(labkit.LoadError) as info:
        labkit.load(lib.path)
    [problem] = info.value.problems
    assert "'missing_fn'" in problem.message and "PyLong_FromLong" not in problem.message
    assert "nor anything loaded globally before it" in problem.message
    [alone] = labkit.explain(lib.path).problems
    assert "'PyLong_FromLong', 'missing_fn'" in alone.message
