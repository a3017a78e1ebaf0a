"""labkit abi-diff: abidiff's report read into a verdict, on real builds; struct layouts
from DWARF checked against cffi's own layout of the same header."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.inprocess.host import api
from labkit.inspect.abi import parse_report
from tests.conftest import run_cli

OLD = """
struct point { int x; int y; };
double area(double r) { return r * r; }
int norm(struct point *p) { return p->x + p->y; }
int gone(void) { return 1; }
"""
NEW = """
struct point { int id; int x; int y; };
double area(float r) { return r * r; }
int norm(struct point *p) { return p->x + p->y; }
int added(void) { return 2; }
"""


def test_v2_sample_breaks_the_abi_in_three_ways(samples: dict[str, labkit.Sample]) -> None:
    report = labkit.abi_diff(samples["upper"].path, samples["upper_v2"].path)
    assert not report.compatible
    assert report.status == 4 and report.status_bits == ("ABI_CHANGE",)  # abidiff: "review"
    kinds = {c.kind for c in report.changes}
    assert {"size-changed", "member-inserted", "offset-changed", "enumerator-changed",
            "type-changed"} <= kinds
    # options is a member of the plugin's private struct lab_state, which lab_plugin's
    # member create returns: the path says so, outer member included
    where = {c.where for c in report.changes if c.kind == "offset-changed"}
    assert where == {"const lab_plugin* lab_plugin_entry(void): member create: return type: "
                     "struct lab_state: member options: struct lab_options"}
    assert any("'lab_case::LAB_CASE_UPPER' from value '1' to '2'" in c.detail for c in report.changes)
    scale = {c.where for c in report.changes if "from 'double' to 'float'" in c.detail}
    assert scale == {"const lab_plugin* lab_plugin_entry(void): member scale: return type",
                     "const lab_plugin* lab_plugin_entry(void): member scale: parameter 2"}
    result = run_cli("abi-diff", samples["upper"].path, samples["upper_v2"].path, "--struct", "lab_options")
    assert result.returncode == 1 and "INCOMPATIBLE" in result.stdout
    assert "CHANGED" in result.stdout and "indent" in result.stdout


def test_same_file_is_compatible(samples: dict[str, labkit.Sample]) -> None:
    report = labkit.abi_diff(samples["upper"].path, samples["upper"].path)
    assert report.compatible and report.status == 0 and report.changes == ()
    assert run_cli("abi-diff", samples["upper"].path, samples["upper"].path).returncode == 0


def test_removed_symbol_changed_parameter_and_struct(workdir: Path) -> None:
    old = labkit.build_shared(OLD, "shapes_old")
    new = labkit.build_shared(NEW, "shapes_new")
    report = labkit.abi_diff(old.path, new.path)
    assert report.status_bits == ("ABI_CHANGE", "ABI_INCOMPATIBLE_CHANGE")
    by_kind = {c.kind: c for c in report.changes}
    assert by_kind["removed-function"].where == "int gone(void)"
    assert by_kind["added-function"].where == "int added(void)" and not by_kind["added-function"].breaking
    assert by_kind["type-changed"].where == "double area(double): parameter 1"
    assert by_kind["member-inserted"].where == "int norm(point*): parameter 1: struct point"
    assert not report.compatible


#: A function's own parameters and return type (distinct bodies, so that gcc's identical
#: code folding does not merge two functions into one symbol).
SIGNATURES_OLD = """
int gain(int a) { return a + 1; }
int lose(int a, int b) { return a * b + 2; }
int widen(int a) { return a * 3; }
int retype(int a) { return a * 5; }
void *pointer(int a) { return (void *)(long)(a * 7); }
int nothing(int *a) { return *a * 11; }
int constant(char *s) { return s[0] + 13; }
"""
SIGNATURES_NEW = """
int gain(int a, int b) { return a + b + 1; }
int lose(int a) { return a * 2; }
int widen(long a) { return (int)(a * 3); }
long retype(int a) { return a * 5L; }
int *pointer(int a) { return (int *)(long)(a * 7); }
int nothing(int a) { return a * 11; }
int constant(const char *s) { return s[0] + 13; }
"""


def test_any_change_to_a_functions_parameters_or_return_type_breaks(workdir: Path) -> None:
    """abidiff 2.2-2.6 sets only its ABI_CHANGE bit (4) for all of these: labkit reviews
    them, and only an added const is compatible."""
    report = labkit.abi_diff(labkit.build_shared(SIGNATURES_OLD, "sig_old").path,
                             labkit.build_shared(SIGNATURES_NEW, "sig_new").path)
    assert not report.compatible
    found = {(c.where.split("(")[0].split()[-1], c.kind, c.breaking) for c in report.changes}
    assert ("gain", "parameter-added", True) in found
    assert ("lose", "parameter-removed", True) in found
    assert ("widen", "type-changed", True) in found
    assert ("retype", "type-changed", True) in found
    assert ("nothing", "entity-changed", True) in found
    assert not any(name == "constant" and breaking for name, _, breaking in found)
    result = run_cli("abi-diff", "build/libsig_old.so", "build/libsig_new.so", cwd=workdir)
    assert result.returncode == 1 and "[BREAKS] parameter-added: int gain(int): parameter 2 of type 'int' was added" in result.stdout


def test_a_gained_parameter_alone_is_incompatible(workdir: Path) -> None:
    old = labkit.build_shared("int f(int a) { return a + 1; }\n", "gain_old")
    new = labkit.build_shared("int f(int a, int b) { return a + b; }\n", "gain_new")
    report = labkit.abi_diff(old.path, new.path)
    assert report.status & 4  # abidiff 2.2-2.6 leave it to be reviewed (bit 8 unset)
    assert [(c.kind, c.where) for c in report.changes] == [("parameter-added", "int f(int)")]
    assert not report.compatible
    assert run_cli("abi-diff", old.path, new.path, cwd=workdir).returncode == 1


def test_parse_report_on_parameter_words() -> None:
    """The words libabigail's default reporter uses for a function's parameters (and a
    function pointer's: the path names the member)."""
    text = """Functions changes summary: 0 Removed, 1 Changed, 0 Added function

1 function with some indirect sub-type change:

  [C] 'function int gain(int)' at new.c:3:1 has some indirect sub-type changes:
    parameter 2 of type 'int' was added
    parameter 3 of type 'long int' was removed
    parameter 1 of type 'char*' changed:
      in pointed to type 'char':
        entity changed from 'char' to 'const char'
        type size hasn't changed
    parameter 4 of type 'int*' changed:
      entity changed from 'int*' to 'int'
      type size changed from 64 to 32 (in bits)
"""
    assert [(c.kind, c.where, c.breaking) for c in parse_report(text)] == [
        ("parameter-added", "int gain(int)", True),
        ("parameter-removed", "int gain(int)", True),
        ("qualifier-changed", "int gain(int): parameter 1", False),
        ("entity-changed", "int gain(int): parameter 4", True),
        ("size-changed", "int gain(int): parameter 4", True),
    ]


def test_an_added_function_is_compatible(workdir: Path) -> None:
    old = labkit.build_shared("int one(void) { return 1; }\n", "grow_old")
    new = labkit.build_shared("int one(void) { return 1; }\nint two(void) { return 2; }\n", "grow_new")
    report = labkit.abi_diff(old.path, new.path)
    assert report.compatible and report.status == 4
    assert [c.kind for c in report.changes] == ["added-function"]
    assert run_cli("abi-diff", old.path, new.path, cwd=workdir).returncode == 0


def test_without_debug_info_symbols_still_count(workdir: Path) -> None:
    old = labkit.build_shared(OLD, "nodebug_old", default_flags=False, cflags=["-fPIC"])
    new = labkit.build_shared(NEW, "nodebug_new", default_flags=False, cflags=["-fPIC"])
    report = labkit.abi_diff(old.path, new.path)
    assert ("removed-symbol", "gone") in {(c.kind, c.where) for c in report.changes}
    with pytest.raises(labkit.InputError, match=r"has no DWARF debug information"):
        labkit.struct_layout(old.path, "point")


def test_two_unrelated_libraries(samples: dict[str, labkit.Sample], workdir: Path) -> None:
    other = labkit.build_shared("int unrelated(void) { return 0; }\n", "unrelated")
    report = labkit.abi_diff(samples["upper"].path, other.path)
    assert not report.compatible
    assert ("removed-function", "const lab_plugin* lab_plugin_entry(void)") in {(c.kind, c.where) for c in report.changes}
    assert run_cli("abi-diff", samples["upper"].path, other.path).returncode == 1


@pytest.mark.parametrize("name", ["empty", "text", "truncated", "directory", "missing"])
def test_bad_input_is_a_tool_error(bad: dict[str, Path], hello_so: labkit.Artifact, name: str) -> None:
    result = run_cli("abi-diff", hello_so.path, bad[name])
    assert result.returncode == 2
    assert result.stderr.startswith("labkit abi-diff: ") and repr(labkit.show(bad[name]))[1:-1] in result.stderr


def test_abidiff_missing_is_said_clearly(hello_so: labkit.Artifact, tmp_path: Path) -> None:
    assert not Path(sys.executable).with_name("abidiff").exists()  # else PATH cannot hide it
    env = dict(os.environ, PATH=str(tmp_path))  # an empty folder: no abidiff on PATH
    result = run_cli("abi-diff", hello_so.path, hello_so.path, env=env)
    assert result.returncode == 2
    assert "'abidiff' is not on PATH" in result.stderr and "apt-get install abigail-tools" in result.stderr


def test_an_object_file_is_compared_by_its_symbols(hello_so: labkit.Artifact, workdir: Path) -> None:
    obj = workdir / "f.o"
    subprocess.run(["gcc", "-c", "-x", "c", "-", "-o", str(obj)], input="int f(void){return 1;}\n",
                   text=True, check=True)
    report = labkit.abi_diff(hello_so.path, obj)
    assert ("added-symbol", "f") in {(c.kind, c.where) for c in report.changes}
    assert not report.compatible  # add, greet and counter are gone


@pytest.mark.parametrize("header", ["plugin_api.h", "plugin_api_v2.h"])
def test_struct_layout_matches_cffi(samples: dict[str, labkit.Sample], header: str) -> None:
    """DWARF's offsets against cffi's layout of the header the build used."""
    ffi, _ = api(labkit.PLUGINS_C / header)  # the host's own reading of the header
    build = samples["upper" if header == "plugin_api.h" else "upper_v2"].path
    for struct in ("lab_options", "lab_plugin"):
        layout = labkit.struct_layout(build, struct)
        assert layout.size == ffi.sizeof(struct)
        for member in layout.members:
            assert member.offset == ffi.offsetof(struct, member.name), (struct, member.name)
            assert member.size == ffi.sizeof(dict(ffi.typeof(struct).fields)[member.name].type)


def test_padding_is_found(workdir: Path) -> None:
    lib = labkit.build_shared("struct pad { char c; double d; short s; };\n"
                              "int f(struct pad *p) { return p->c + p->s; }\n", "pad")
    layout = labkit.struct_layout(lib.path, "pad")
    assert layout.size == 24
    assert layout.holes == ((1, 7), (18, 6))
    assert "(padding)" in str(layout)
    with pytest.raises(labkit.InputError, match=r"has no struct 'nothere'"):
        labkit.struct_layout(lib.path, "nothere")


def test_parse_report_on_abidiff_words() -> None:
    text = """Functions changes summary: 1 Removed, 0 Changed, 0 Added function

1 Removed function:

  [D] 'function int gone()'    {gone}
"""
    assert [(c.kind, c.where) for c in parse_report(text)] == [("removed-function", "int gone()")]
    assert [c.where for c in parse_report(text, c=True)] == ["int gone(void)"]


#: Real reports of abidiff 2.2 (Debian 12), 2.4 (Ubuntu 24.04, Binder's image) and 2.6
#: (Debian 13) on the same pairs of builds: tests/data/abidiff/README.md says how they were made.
REPORTS = Path(__file__).parent / "data" / "abidiff"
PAIRS = sorted(p.stem for p in (REPORTS / "2.2").glob("*.txt"))


def _reading(version: str, pair: str) -> tuple[int, list[str]]:
    status, text = (REPORTS / version / f"{pair}.txt").read_text().split("\n", 1)
    return int(status.removeprefix("exit ")), [str(c) for c in parse_report(text, c=True)]


@pytest.mark.parametrize("pair", PAIRS)
def test_every_libabigail_release_reads_the_same(pair: str) -> None:
    """2.2 and 2.4 write f() and 'int (int)* member', 2.6 writes f(void) and
    'int (* member)(int)'; labkit's reading of all three is one and the same."""
    versions = sorted(p.name for p in REPORTS.iterdir() if p.is_dir())
    assert versions == ["2.2", "2.4", "2.6"]
    readings = {version: _reading(version, pair) for version in versions}
    assert readings["2.2"] == readings["2.4"] == readings["2.6"], readings
    assert not any("()" in change for change in readings["2.6"][1])


def test_the_reports_differ_where_labkit_evens_them_out() -> None:
    """Else the test above would prove nothing: the raw texts do differ between releases."""
    old = (REPORTS / "2.2" / "upper--upper_v2.txt").read_text()
    new = (REPORTS / "2.6" / "upper--upper_v2.txt").read_text()
    assert "lab_plugin_entry()'" in old and "lab_plugin_entry(void)'" in new
    assert "'lab_state* (const lab_options*)* create'" in old
    assert "'lab_state* (* create)(const lab_options*)'" in new
    member_scale = [c for c in _reading("2.6", "upper--upper_v2")[1] if "member scale" in c]
    assert len(member_scale) == 4  # found through the function pointer's new spelling


#: abi-diff of upper (the reference build) against each sample: only the interface counts,
#: so future_abi's version number and crasher's bug are invisible to it, by design.
AGAINST_UPPER = {"upper": True, "upper_v2": False, "no_entry": False, "future_abi": True,
                 "crasher": True, "needs_lib": True, "needs_version": True}


@pytest.mark.parametrize("sample_id", list(labkit.SAMPLES))
def test_every_sample_against_upper(samples: dict[str, labkit.Sample], sample_id: str) -> None:
    assert set(AGAINST_UPPER) == set(labkit.SAMPLES)
    report = labkit.abi_diff(samples["upper"].path, samples[sample_id].path)
    assert report.compatible is AGAINST_UPPER[sample_id]
    result = run_cli("abi-diff", samples["upper"].path, samples[sample_id].path)
    assert result.returncode == (0 if AGAINST_UPPER[sample_id] else 1), result.stderr
