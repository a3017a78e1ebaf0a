"""C++ plugins: labkit builds them with the real c++, names them as nm -C does, and abi-diff names
a changed vtable as abidiff sees it, on generated interfaces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import labkit

LIBRARY = """
#include <string>
#include <vector>
namespace lab {
struct Shape { virtual ~Shape(); virtual double area() const = 0; };
Shape::~Shape() {}
template <typename T> T twice(T x) { return x + x; }
template int twice<int>(int);
template double twice<double>(double);
std::string name_of(const std::vector<int> &v, char sep) { return std::to_string(v.size()) + sep; }
struct Vec { int x; Vec operator+(const Vec &o) const { return {x + o.x}; } };
Vec add(Vec a, Vec b) { return a + b; }
}
extern "C" int lab_entry(void) { return lab::twice(21); }
"""


def test_a_cpp_file_is_built_by_the_cxx_compiler(workdir: Path) -> None:
    source = workdir / "shapes.cpp"
    source.write_text(LIBRARY)
    built = labkit.build_shared(source)
    assert built.command_line.startswith("c++ ") and built.command_line.endswith(" shapes.cpp")
    exported = labkit.read_elf(built).exported
    assert "lab_entry" in exported  # extern "C": the name as written
    assert "_ZN3lab5twiceIiEET_S1_" in exported  # C++: the mangled name
    again = labkit.build_shared(source)
    assert again.from_cache and again.command == built.command


def test_text_is_cxx_when_asked_and_c_otherwise(workdir: Path) -> None:
    text = "int f(int x) { return x; }\n"
    cxx = labkit.build_shared(text, "same", language="c++", out_dir="cxx")
    c = labkit.build_shared(text, "same", out_dir="c")
    assert cxx.key != c.key
    assert labkit.read_elf(cxx).exported == ("_Z1fi",)
    assert labkit.read_elf(c).exported == ("f",)


def test_demangle_agrees_with_nm_c(workdir: Path) -> None:
    built = labkit.build_shared(LIBRARY, "shapes", language="c++")
    raw = subprocess.run(["nm", "-D", "--defined-only", built.path], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    said = subprocess.run(["nm", "-DC", "--defined-only", built.path], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    pairs = {a.split(" ", 2)[2]: b.split(" ", 2)[2] for a, b in zip(raw, said, strict=True)}
    mangled = {name: plain for name, plain in pairs.items() if name.startswith("_Z")}
    assert len(mangled) >= 8
    assert labkit.demangle(pairs) == mangled
    assert mangled["_ZN3lab3addENS_3VecES0_"] == "lab::add(lab::Vec, lab::Vec)"


def test_the_symbol_table_names_cxx_symbols_only_for_cxx(workdir: Path) -> None:
    cxx = labkit.read_elf(labkit.build_shared(LIBRARY, "shapes", language="c++"))
    frame = cxx.symbols_frame(["lab_entry", "_ZN3lab3addENS_3VecES0_"])
    assert list(frame.columns[:2]) == ["name", "C++ name"]
    assert list(frame["C++ name"]) == ["", "lab::add(lab::Vec, lab::Vec)"]
    c = labkit.read_elf(labkit.build_shared("int f(void) { return 1; }\n", "plain"))
    assert "C++ name" not in c.symbols_frame().columns


def test_a_cxx_error_names_the_cpp_file(workdir: Path) -> None:
    source = workdir / "broken.cpp"
    source.write_text("struct S { int f() };\n")
    with pytest.raises(labkit.BuildError, match=r"c\+\+ could not build '.*broken\.cpp'") as info:
        labkit.build_shared(source)
    assert "broken.cpp:1:" in str(info.value)


def test_a_missing_cxx_compiler_names_what_to_install(workdir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-c++")
    with pytest.raises(labkit.ToolchainError, match="no C\\+\\+ compiler 'no-such-c\\+\\+'") as info:
        labkit.build_shared("int f() { return 1; }\n", "x", language="c++")
    assert "apt-get install g++" in info.value.fix


# -- the fragile base class: generated interfaces against abidiff -----------------------------

#: The interface a plugin implements, as a list of virtual functions, and each edit to it.
BASE = ["const char *name() const", "int transform(char *text, int size)", "int flush()"]
EDITS = {
    "insert-virtual-in-the-middle": ([*BASE[:1], "int version() const", *BASE[1:]], []),
    "append-virtual": ([*BASE, "int reset()"], []),
    "remove-virtual": (BASE[:1] + BASE[2:], []),
    "swap-two-virtuals": ([BASE[1], BASE[0], BASE[2]], []),
    "add-a-data-member": (BASE, ["int calls = 0;"]),
    "add-a-non-virtual-method": (BASE, ["int twice(int x) const;"]),
}
VTABLE_KINDS = {"virtual-added", "virtual-removed", "vtable-offset-changed"}


def _plugin(functions: list[str], members: list[str]) -> str:
    """An interface with those virtual functions and members, and a plugin implementing it."""
    declared = "".join(f"    virtual {f} = 0;\n" for f in functions)
    implemented = "".join(f"    {f} override {{ return 0; }}\n" for f in functions)
    helpers = "".join(f"    {m}\n" for m in members)
    defined = "int Transformer::twice(int x) const { return 2 * x; }\n" if any(
        "twice" in m for m in members) else ""
    return (f"struct Transformer {{\n    virtual ~Transformer();\n{declared}{helpers}}};\n"
            f"Transformer::~Transformer() {{}}\n{defined}"
            f"struct Plugin : Transformer {{\n{implemented}}};\n"
            'extern "C" Transformer *lab_create(void) { return new Plugin; }\n')


@pytest.mark.parametrize("edit", list(EDITS))
def test_abi_diff_names_a_vtable_change_where_abidiff_reports_one(workdir: Path, edit: str) -> None:
    old = labkit.build_shared(_plugin(BASE, []), "old", language="c++", out_dir="old")
    new = labkit.build_shared(_plugin(*EDITS[edit]), "new", language="c++", out_dir="new")
    report = labkit.abi_diff(old, new)
    kinds = {change.kind for change in report.changes}
    text = report.text  # abidiff's own words
    assert ("vtable-offset-changed" in kinds) == ("the vtable offset of" in text)
    virtual_lines = [line for line in text.splitlines() if ", virtual at voffset" in line]
    assert (kinds & {"virtual-added", "virtual-removed"} != set()) == bool(virtual_lines)
    if report.status & 8:  # what abidiff is sure breaks, labkit says breaks
        assert not report.compatible
    vtable = edit.endswith(("virtual", "virtuals", "middle"))
    assert bool(kinds & VTABLE_KINDS) == vtable, report
    assert report.compatible == (edit == "add-a-non-virtual-method"), report


def test_explain_names_a_missing_cxx_symbol_both_ways_as_the_loader_does(workdir: Path) -> None:
    plugin = labkit.build_shared(
        'namespace lab { int missing(int); }\nextern "C" int lab_entry(void) '
        "{ return lab::missing(1); }\n", "needy", language="c++", ldflags=["-Wl,-z,now"])
    verdict = labkit.explain(plugin)
    assert [problem.kind for problem in verdict.problems] == ["undefined-symbol"]
    assert "'_ZN3lab7missingEi' (lab::missing(int))" in verdict.problems[0].message
    loader = labkit.run_isolated(f"import ctypes\nctypes.CDLL({str(plugin.path)!r})")
    assert not loader.ok and "undefined symbol: _ZN3lab7missingEi" in loader.stderr


# -- the sample C++ plugin and hosts of plugins/cpp ------------------------------------------


@pytest.fixture
def cpp(workdir: Path) -> dict[str, Path]:
    """The release 1 plugin, and the host built with each release of the interface."""
    return {
        "plugin": labkit.build_shared(labkit.PLUGINS_CPP / "upper.cpp").path,
        "host1": labkit.build_executable(labkit.PLUGINS_CPP / "host.cpp", "host1",
                                         libs=["dl"]).path,
        "host2": labkit.build_executable(labkit.PLUGINS_CPP / "host.cpp", "host2",
                                         cflags=["-DLAB_RELEASE=2"], libs=["dl"]).path,
    }


def test_the_host_calls_the_plugin_through_its_interface(cpp: dict[str, Path]) -> None:
    done = labkit.run_program([cpp["host1"], cpp["plugin"], "hello"])
    assert done.ok, done.stderr
    assert done.stdout.splitlines() == [
        "name: upper", "greeting: hello from upper, release 1", "transform: HELLO"]


def test_a_release_2_host_calls_the_wrong_slot_of_a_release_1_plugin(cpp: dict[str, Path]) -> None:
    done = labkit.run_program([cpp["host2"], cpp["plugin"], "hello"])
    lines = done.stdout.splitlines()
    assert lines[:2] == ["name: upper", "author: hello from upper, release 1"]  # greeting()'s slot
    # greeting() lands on transform's slot, transform() past the vtable's end: what follows is
    # undefined (here a crash), but never the right answer
    assert "greeting: hello from upper, release 1" not in lines
    assert "transform: HELLO" not in lines


def test_the_factory_is_found_by_its_c_name_and_only_so(cpp: dict[str, Path], workdir: Path) -> None:
    exported = labkit.read_elf(cpp["plugin"]).exported
    assert {"lab_create", "lab_destroy"} <= set(exported)
    source = (labkit.PLUGINS_CPP / "upper.cpp").read_text().replace('extern "C" ', "")
    (workdir / "transformer.hpp").write_text((labkit.PLUGINS_CPP / "transformer.hpp").read_text()
                                             .replace('extern "C" ', ""))
    (workdir / "mangled.cpp").write_text(source)
    mangled = labkit.build_shared(workdir / "mangled.cpp")
    names = labkit.read_elf(mangled).exported
    assert "lab_create" not in names and "_Z10lab_createv" in names
    done = labkit.run_program([cpp["host1"], mangled.path, "hello"])
    assert done.returncode == 1 and "undefined symbol: lab_create" in done.stderr


def test_a_string_across_the_two_libstdcxx_abis_is_predicted_as_the_loader_fails(
        workdir: Path) -> None:
    old = labkit.build_shared('#include <string>\nstd::string shout(const std::string &s) '
                              '{ return s + "!"; }\n', "old", language="c++",
                              cflags=["-D_GLIBCXX_USE_CXX11_ABI=0"])
    user = labkit.build_shared(
        '#include <string>\nstd::string shout(const std::string &s);\n'
        'extern "C" int lab_entry(void) { return (int)shout("hi").size(); }\n', "user",
        language="c++", libs=[old.path], ldflags=["-Wl,-rpath,$ORIGIN", "-Wl,-z,now"])
    assert "_Z5shoutRKSs" in labkit.read_elf(old).exported  # the old ABI's std::string
    [problem] = labkit.explain(user).problems
    assert problem.kind == "undefined-symbol"
    assert "(shout(std::__cxx11::basic_string<char, std::char_traits<char>, " in problem.message
    assert "-D_GLIBCXX_USE_CXX11_ABI=0" in problem.fix
    loader = labkit.run_isolated(f"import ctypes\nctypes.CDLL({str(user.path)!r})")
    assert "undefined symbol: _Z5shoutRKNSt7__cxx1112basic_string" in loader.stderr
    plain = labkit.explain(labkit.build_shared(
        'int missing(int);\nextern "C" int f(void) { return missing(1); }\n', "plain",
        language="c++", ldflags=["-Wl,-z,now"])).problems[0]
    assert "_GLIBCXX_USE_CXX11_ABI" not in plain.fix


THROWER = """#include <stdexcept>
extern "C" int lab_work(int x) { if (x < 0) throw std::runtime_error("negative input"); return x; }
"""
CATCHER = """#include <dlfcn.h>
#include <cstdio>
#include <exception>
int main(int argc, char **argv) {
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    auto work = reinterpret_cast<int (*)(int)>(dlsym(plugin, "lab_work"));
#ifdef LAB_NO_TRY
    std::printf("%d\\n", work(-1));
#else
    try { std::printf("%d\\n", work(-1)); }
    catch (const std::exception &e) { std::printf("caught: %s\\n", e.what()); }
#endif
    return 0;
}
"""


@pytest.mark.parametrize(("plugin_flags", "host_flags", "caught"), [
    ([], [], True),
    # the plugin links its own copy of libstdc++ and the unwinder, but exports them: the
    # host's libstdc++ in the global scope wins every lookup, so the plugin's copies never run
    (["-static-libstdc++", "-static-libgcc"], [], True),
    # hidden, they do run: the plugin's own runtime throws, and the host cannot catch it
    (["-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL"], [], False),
    ([], ["-fno-exceptions", "-DLAB_NO_TRY"], False),  # no handler: std::terminate, abort
])
def test_an_exception_crosses_the_boundary_when_the_host_can_catch_it(
        workdir: Path, plugin_flags: list[str], host_flags: list[str], caught: bool) -> None:
    plugin = labkit.build_shared(THROWER, "thrower", language="c++", ldflags=plugin_flags)
    host = labkit.build_executable(CATCHER, "catcher", language="c++", cflags=host_flags,
                                   libs=["dl"])
    done = labkit.run_program([host.path, plugin.path])
    if caught:
        assert done.ok and done.stdout == "caught: negative input\n", done
    else:
        assert done.signal == "SIGABRT" and done.stdout == ""
        if "-Wl,--exclude-libs,ALL" not in plugin_flags:  # the private runtime aborts silently
            assert "terminate called after throwing an instance of 'std::runtime_error'" \
                in done.stderr
    throws_with = labkit.run_program([host.path, plugin.path], env={"LD_DEBUG": "bindings"})
    bound = {line.split(" to ")[1].split(" [")[0].rsplit("/", 1)[-1]
             for line in throws_with.stderr.splitlines()
             if "binding file" in line and "`__cxa_throw'" in line}
    assert bound == (set() if "-Wl,--exclude-libs,ALL" in plugin_flags else {"libstdc++.so.6"})


def test_an_exception_into_a_c_host_ends_it_with_terminate(workdir: Path) -> None:
    plugin = labkit.build_shared(THROWER, "thrower", language="c++")
    host = labkit.build_executable(
        '#include <dlfcn.h>\n#include <stdio.h>\nint main(int argc, char **argv) {\n'
        '    void *plugin = dlopen(argv[1], RTLD_NOW);\n'
        '    int (*work)(int) = (int (*)(int))dlsym(plugin, "lab_work");\n'
        '    printf("%d\\n", work(-1));\n    return 0;\n}\n', "c_host", libs=["dl"])
    done = labkit.run_program([host.path, plugin.path])
    assert done.signal == "SIGABRT" and done.stdout == ""
    assert "terminate called after throwing an instance of 'std::runtime_error'" in done.stderr
