"""The loader's rules that explain follows (labkit.loader, labkit.statictls), each case built
for real and checked against what dlopen does: the failures explain used to miss, then the
search order. Whatever could use up this process's static TLS is loaded in a child."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import pytest

import labkit
from labkit.diagnose.loader import Process
from labkit.diagnose.statictls import StaticTls, glibc_version, surplus_size, tunables_of
from tests.conftest import run_cli

DEEP = "int deep(void) { return 3; }\n"
MID = "int deep(void);\nint mid(void) { return deep() + 1; }\n"
TOP = "int mid(void);\nint top(void) { return mid() + 1; }\n"


def _tls_source(size: int, model: str = "initial-exec", align: int = 0) -> str:
    aligned = f" __attribute__((aligned({align})))" if align else ""
    return (f'__thread char block[{size}] __attribute__((tls_model("{model}"))){aligned};\n'
            f"int touch(void) {{ return ++block[{size - 1}]; }}\n")


def _explain_and_load(path: str) -> dict[str, Any]:
    """In a forked copy of this process: explain's verdict, then what dlopen says; and the
    static TLS explain counts as free before and after."""
    verdict = labkit.explain(path)
    free = Process.current().tls.free
    try:
        labkit.load(path)
        said = ""
    except labkit.LoadError as err:
        said = err.dlerror
    return {"kinds": [p.kind for p in verdict.problems], "text": str(verdict), "said": said,
            "free": free, "left": Process.current().tls.free}


def _in_child(path: Path) -> dict[str, Any]:
    outcome = labkit.run_isolated(_explain_and_load, str(path.resolve()))
    assert outcome.ok, outcome.summary()
    result: dict[str, Any] = outcome.value
    return result


# -- the failures explain used to miss ---------------------------------------------------

def test_a_missing_dependency_of_a_dependency(workdir: Path) -> None:
    deep = labkit.build_shared(DEEP, "deep", out_dir="build/link")
    mid = labkit.build_shared(MID, "mid", libs=[deep.path], out_dir="build/deps")
    top = labkit.build_shared(TOP, "top", libs=[mid.path],
                              ldflags=["-Wl,-rpath,$ORIGIN/deps",
                                       f"-Wl,-rpath-link={workdir / 'build/link'}"])
    verdict = labkit.explain(top.path)
    assert [p.kind for p in verdict.problems] == ["missing-library"]
    assert "needs 'libdeep.so' through 'libmid.so'" in verdict.problems[0].message
    with pytest.raises(labkit.LoadError, match=r"needs 'libdeep\.so' through 'libmid\.so'") as info:
        labkit.load(top.path)
    assert info.value.dlerror.startswith("libdeep.so: cannot open shared object file")
    result = run_cli("explain", top.path, cwd=workdir)
    assert result.returncode == 1 and "missing-library: 'build/libtop.so' needs 'libdeep.so'" in result.stdout
    # given its folder on LD_LIBRARY_PATH (explain's env), it loads, and so says the loader
    env = {"LD_LIBRARY_PATH": str(workdir / "build/link")}
    assert labkit.explain(top.path, env=env).ok
    loaded = labkit.run_isolated("import labkit\nprint(labkit.load('build/libtop.so')"
                                 ".function('top', 'int(void)')())", env=env, cwd=workdir)
    assert loaded.ok and loaded.stdout == "5\n"


def test_initial_exec_tls_at_and_past_the_free_surplus(workdir: Path) -> None:
    """The threshold is computed (what this process has left), then dlopen decides."""
    free = Process.current().tls.free
    fits = labkit.build_shared(_tls_source(free), "tls_fits")
    over = labkit.build_shared(_tls_source(free + 1), "tls_over")
    fitting = _in_child(fits.path)
    assert fitting["kinds"] == [] and fitting["said"] == "" and fitting["free"] == free
    assert fitting["left"] == 0  # once loaded, it holds what was left: explain counts that too
    result = _in_child(over.path)
    assert result["kinds"] == ["static-tls"] and result["free"] == free
    assert "cannot allocate memory in static TLS block" in result["said"]
    assert f"has {free} bytes of it free" in result["text"]


def test_static_tls_in_the_cli_and_its_fix(workdir: Path) -> None:
    big = labkit.build_shared(_tls_source(8192), "tls_big")
    result = run_cli("explain", big.path, cwd=workdir)
    assert result.returncode == 1 and "static-tls: 'build/libtls_big.so' has 8192 bytes" in result.stdout
    with pytest.raises(labkit.LoadError, match=r"static-tls|initial-exec TLS model") as info:
        labkit.load(big.path)  # fails before it takes anything
    assert "cannot allocate memory in static TLS block" in info.value.dlerror
    tunable = result.stdout.split("GLIBC_TUNABLES=")[1].split()[0]
    loads = labkit.run_isolated("import labkit\nlabkit.load('build/libtls_big.so')",
                                env={"GLIBC_TUNABLES": tunable}, cwd=workdir)
    assert loads.ok, loads.stderr  # the suggested surplus is enough
    verdict = labkit.run_isolated(
        "import labkit\nprint(labkit.explain('build/libtls_big.so').ok)",
        env={"GLIBC_TUNABLES": tunable}, cwd=workdir)
    assert verdict.stdout == "True\n"


@pytest.mark.parametrize(("name", "source", "kinds"), [
    ("global_dynamic", _tls_source(8192, "global-dynamic"), []),
    ("overaligned", _tls_source(16, align=128), ["static-tls"]),
], ids=["global-dynamic-needs-no-static-tls", "aligned-past-the-static-block"])
def test_tls_models_and_alignment(workdir: Path, name: str, source: str, kinds: list[str]) -> None:
    lib = labkit.build_shared(source, name)
    result = _in_child(lib.path)
    assert result["kinds"] == kinds
    assert bool(result["said"]) == bool(kinds)


def test_tls_descriptors_take_the_optional_surplus_first(workdir: Path) -> None:
    """A TLS descriptor (-mtls-dialect=gnu2) takes static TLS while the optional part lasts,
    and what it takes is gone for an initial-exec library loaded after it."""
    free = Process.current().tls.free
    desc = labkit.build_shared(_tls_source(400, "global-dynamic"), "tls_desc",
                               cflags=["-mtls-dialect=gnu2"])
    size = free - 399  # fits alone (checked above at the exact size), not after 400 bytes
    tight = labkit.build_shared(
        "int touch(void);\n"
        f'__thread char mine[{size}] __attribute__((tls_model("initial-exec")));\n'
        f"int own(void) {{ return ++mine[{size - 1}] + touch(); }}\n",
        "tls_tight", libs=[desc.path], ldflags=["-Wl,-rpath,$ORIGIN"])
    assert labkit.read_elf(tight.path).needed == ("libtls_desc.so",)
    assert _in_child(desc.path)["kinds"] == []
    result = _in_child(tight.path)
    assert result["kinds"] == ["static-tls"], result["text"]
    assert "cannot allocate memory in static TLS block" in result["said"]


@pytest.mark.parametrize(("flags", "kind", "says"), [
    (["-fPIE", "-pie"], "pie-executable", "cannot dynamically load position-independent executable"),
    (["-fno-PIE", "-no-pie"], "executable", "cannot dynamically load executable"),
], ids=["pie", "non-pie"])
def test_a_program_runs_but_is_no_plugin(workdir: Path, flags: list[str], kind: str, says: str) -> None:
    exe = labkit.build_executable("int main(void) { return 0; }\n", f"prog_{kind}",
                                  cflags=flags, ldflags=flags)
    verdict = labkit.explain(exe.path)
    assert verdict.ok and verdict.action == "run"
    assert str(verdict).startswith(f"build/prog_{kind}: will run here as a program (")
    assert "Note: as a plugin it will not load: it is a program" in str(verdict) and says in str(verdict)
    assert labkit.run_program([exe.path.resolve()]).returncode == 0  # it does run
    as_plugin = labkit.explain(exe.path, load=True)
    assert [p.kind for p in as_plugin.problems] == [kind]
    with pytest.raises(labkit.LoadError, match=rf"dlopen says '{says}'") as info:
        labkit.load(exe.path)
    assert says in info.value.dlerror
    assert run_cli("explain", exe.path, cwd=workdir).returncode == 0
    for asked in (["--load"], ["--require", "main"]):
        result = run_cli("explain", exe.path, *asked, cwd=workdir)
        assert result.returncode == 1 and f"- {kind}: " in result.stdout


def test_a_program_in_place_of_a_dependency(workdir: Path) -> None:
    lib = labkit.build_shared("int dep(void) { return 1; }\n", "fakedep", out_dir="build/link")
    user = labkit.build_shared("int dep(void);\nint use(void) { return dep(); }\n", "usesfake",
                               libs=[lib.path], ldflags=["-Wl,-rpath,$ORIGIN"])
    labkit.build_executable("int dep(void) { return 2; }\nint main(void) { return dep(); }\n",
                            "libfakedep.so")  # a PIE where libfakedep.so should be
    verdict = labkit.explain(user.path)
    assert [p.kind for p in verdict.problems] == ["pie-executable"]
    assert "needs 'libfakedep.so', and the file the loader finds for it" in verdict.problems[0].message
    with pytest.raises(labkit.LoadError, match=r"needs 'libfakedep\.so'") as info:
        labkit.load(user.path)
    assert "cannot dynamically load position-independent executable" in info.value.dlerror


def test_a_library_marked_nodlopen(workdir: Path) -> None:
    lib = labkit.build_shared("int f(void) { return 1; }\n", "nodlopen", ldflags=["-Wl,-z,nodlopen"])
    assert [p.kind for p in labkit.explain(lib.path).problems] == ["no-dlopen"]
    with pytest.raises(labkit.LoadError, match=r"DF_1_NOOPEN") as info:
        labkit.load(lib.path)
    assert "shared object cannot be dlopen()ed" in info.value.dlerror


def test_a_newer_glibc_is_named_by_its_newest_public_version(workdir: Path) -> None:
    """A stand-in libc.so.6 with a GLIBC_2.99 version to link against: the real one lacks it,
    and the message names the newest version it has, never GLIBC_PRIVATE."""
    script = workdir / "glibc.map"
    script.write_text("GLIBC_2.99 { global: lab_tomorrow; local: *; };\n")
    stub = labkit.build_shared("int lab_tomorrow(void) { return 1; }\n", "libc.so.6",
                               out_dir="build/stub",
                               ldflags=["-Wl,-soname,libc.so.6", f"-Wl,--version-script={script}"])
    newer = labkit.build_shared("int lab_tomorrow(void);\nint f(void) { return lab_tomorrow(); }\n",
                                "needs_glibc_2_99", libs=[stub.path])
    libc = next(o for o in Process.current().objects if "libc.so.6" in o.names)
    release = "GLIBC_" + platform.libc_ver()[1]
    assert release in labkit.read_elf(libc.path).version_defs  # this glibc defines its own release
    [problem] = labkit.explain(newer.path).problems
    assert problem.kind == "missing-version"
    assert f"stops at '{release}'" in problem.message and "PRIVATE" not in problem.message
    with pytest.raises(labkit.LoadError, match=rf"stops at '{release}'") as info:
        labkit.load(newer.path)
    assert "version `GLIBC_2.99' not found" in info.value.dlerror
    result = run_cli("explain", newer.path, cwd=workdir)
    assert result.returncode == 1 and "it was built against a newer glibc" in result.stdout


# -- the search order ----------------------------------------------------------------------

@pytest.mark.parametrize(("dtags", "loads"), [("--disable-new-dtags", True), ("--enable-new-dtags", False)],
                         ids=["rpath-serves-the-whole-tree", "runpath-serves-only-its-own"])
def test_rpath_is_inherited_and_runpath_is_not(workdir: Path, dtags: str, loads: bool) -> None:
    deep = labkit.build_shared(DEEP, "deep", out_dir="build/sub")
    mid = labkit.build_shared(MID, "mid", libs=[deep.path], out_dir="build/sub")
    top = labkit.build_shared(TOP, f"top_{loads}", libs=[mid.path],
                              ldflags=["-Wl,-rpath,$ORIGIN/sub", f"-Wl,{dtags}"])
    verdict = labkit.explain(top.path)
    assert verdict.ok is loads
    outcome = labkit.run_isolated(f"import labkit\nlabkit.load({str(top.path)!r})", cwd=workdir)
    assert outcome.ok is loads
    if not loads:
        assert "libdeep.so: cannot open shared object file" in outcome.stderr
        assert "build/sub/libdeep.so is in the DT_RUNPATH of libtop_False.so, but a RUNPATH " \
            "serves only its own object's dependencies" in verdict.problems[0].message


def test_a_bare_name_in_ld_library_path_given_as_env(workdir: Path) -> None:
    lib = labkit.build_shared("int f(void) { return 7; }\n", "onpath", out_dir="elsewhere")
    env = {"LD_LIBRARY_PATH": f"/nonexistent;{lib.path.parent}"}  # ';' separates too
    assert labkit.diagnose_load("libonpath.so", env=env) == []
    assert [p.kind for p in labkit.diagnose_load("libonpath.so", env={})] == ["not-found"]
    outcome = labkit.run_isolated("import labkit\nprint(labkit.load('libonpath.so')"
                                  ".function('f', 'int(void)')())", env=env)
    assert outcome.stdout == "7\n"


def test_an_origin_in_dt_needed_with_versions_stops_the_process(workdir: Path) -> None:
    """glibc expands $ORIGIN in a DT_NEEDED name, then cannot find the library again by the
    name its version requirement carries: an assertion ends the process. explain says so."""
    script = workdir / "dep.map"
    script.write_text("DEP_1 { global: dep; local: *; };\n")
    dep = labkit.build_shared("int dep(void) { return 1; }\n", "origindep",
                              ldflags=["-Wl,-soname,$ORIGIN/liborigindep.so",
                                       f"-Wl,--version-script={script}"])
    user = labkit.build_shared("int dep(void);\nint use(void) { return dep(); }\n", "originuser",
                               libs=[dep.path])
    assert labkit.read_elf(user.path).needed[0] == "$ORIGIN/liborigindep.so"
    [problem] = labkit.explain(user.path).problems
    assert problem.kind == "loader-abort" and "_dl_check_map_versions" in problem.message
    outcome = labkit.run_isolated(f"import ctypes\nctypes.CDLL({str(user.path)!r})", cwd=workdir)
    assert outcome.returncode == 127 and "Inconsistency detected by ld.so: dl-version.c" in outcome.stderr
    with pytest.raises(labkit.LoadError, match=r"an assertion in (glibc's|its) loader ends the whole process"):
        labkit.load(user.path)  # labkit refuses before dlopen, and this process lives on


def test_a_versioned_reference_to_a_library_without_versions_stops_glibc_before_2_41(
        workdir: Path) -> None:
    script = workdir / "lab.map"
    script.write_text("LAB_1 { global: lab_data; local: *; };\n")
    source = "int lab_data = 4;\n"  # no libc call: the library has no symbol versions at all
    versioned = labkit.build_shared(source, "plain", out_dir="build/link", default_flags=False,
                                    cflags=["-fPIC"], ldflags=[f"-Wl,--version-script={script}"])
    labkit.build_shared(source, "plain", out_dir="build", default_flags=False, cflags=["-fPIC"])
    user = labkit.build_shared("extern int lab_data;\nint get(void) { return lab_data; }\n",
                               "usesplain", libs=[versioned.path], ldflags=["-Wl,-rpath,$ORIGIN"])
    assert not labkit.read_elf(workdir / "build/libplain.so").symbol_versions
    verdict = labkit.explain(user.path)
    outcome = labkit.run_isolated(f"import ctypes\nctypes.CDLL({str(user.path)!r})", cwd=workdir)
    if glibc_version() < (2, 41):  # check_match asserts (glibc commit bdaf500353 removed it)
        [problem] = verdict.problems
        assert problem.kind == "loader-abort" and "check_match" in problem.message
        assert outcome.returncode == 127
        assert "Inconsistency detected by ld.so: dl-lookup.c" in outcome.stderr
        with pytest.raises(labkit.LoadError,
                           match=r"an assertion in (glibc's|its) loader ends the whole process"):
            labkit.load(user.path)  # labkit refuses before dlopen, and this process lives on
    else:  # the loader takes the unversioned symbol, and so does explain
        assert verdict.ok and not verdict.problems
        assert outcome.ok, outcome.summary()
        labkit.load(user.path).close()


# -- the static TLS surplus, from glibc's formula ------------------------------------------

def test_the_surplus_follows_elf_dl_tls_c() -> None:
    assert surplus_size(4, 512) == 1664  # glibc's historic default
    assert surplus_size(4, 0) == 1152 and surplus_size(1, 512) == 800
    assert tunables_of({"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=0x100:glibc.rtld.nns=99"}) \
        == {"glibc.rtld.optional_static_tls": 256}  # nns out of range: ignored, as glibc does
    tls = StaticTls.at_startup([], machine="EM_X86_64", env={}, glibc=(2, 36))
    assert tls.free == 1664 and tls.align == 64


@pytest.mark.parametrize("optional", [0, 64, 512])
def test_the_tunable_moves_the_threshold_as_computed(workdir: Path, optional: int) -> None:
    """A new process started with glibc.rtld.optional_static_tls=N: what its explain says is
    free fits, one byte more does not."""
    env = {"GLIBC_TUNABLES": f"glibc.rtld.optional_static_tls={optional}"}
    free = int(labkit.run_isolated("from labkit.diagnose.loader import Process\n"
                                   "print(Process.current().tls.free)", env=env).stdout)
    assert free >= 1664 - 512 + optional - 64  # the surplus, less what the start used to round
    for size, loads in ((free, True), (free + 1, False)):
        lib = labkit.build_shared(_tls_source(size), f"tls_{optional}_{size}")
        outcome = labkit.run_isolated(f"import labkit\nlabkit.load({str(lib.path.resolve())!r})",
                                      env=env)
        assert outcome.ok is loads, outcome.stderr[-500:]


def test_this_process_has_the_startup_layout_of_its_program() -> None:
    here = Process.current()
    fresh = Process.start(os.path.realpath("/proc/self/exe"), os.environ)
    startup = [o.path.name for o in here.objects if o.startup and o.dyn.tls]
    assert startup == [o.path.name for o in fresh.objects if o.startup and o.dyn.tls]
    assert here.tls.free <= fresh.tls.free  # what it loaded since can only have taken some
