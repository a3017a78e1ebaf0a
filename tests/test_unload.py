"""What dlclose does, watched in a child (labkit.unload), and which copy of a library a plugin
reaches (labkit.call_beside, dlmopen through labkit.load): each checked against what the
loader itself says with LD_DEBUG, or against readelf."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import labkit
from labkit import RTLD

LOADER = labkit.PLUGINS_C / "loader"
UNIQUE = ("inline int &counter() { static int n; return n; }\n"
          'extern "C" int bump(void) { return ++counter(); }\n')


def test_the_file_leaves_at_the_last_close_and_not_at_all_when_pinned(workdir: Path) -> None:
    plain = labkit.build_shared("int answer(void) { return 42; }\n", "plain")
    twice = labkit.unload(plain, calls=["answer"], opens=2)
    assert twice.outcome.ok and twice.mapped == (True, True, True, False) and twice.unmapped
    assert "answer() returned 42" in twice.steps
    for pinned in (labkit.unload(plain, flags=RTLD.NOW | RTLD.NODELETE),
                   labkit.unload(labkit.build_shared("int answer(void) { return 1; }\n",
                                                     "nodelete", ldflags=["-Wl,-z,nodelete"]))):
        assert pinned.outcome.ok and pinned.mapped == (True, True) and not pinned.unmapped


def test_a_unique_symbol_pins_its_object_as_the_loader_says(workdir: Path) -> None:
    unique = labkit.build_shared(UNIQUE, "unique", language="c++")
    [symbol] = [s for s in labkit.read_elf(unique).symbols if s.binding == "GNU_UNIQUE"]
    readelf = subprocess.run(["readelf", "--dyn-syms", "-W", unique.path], capture_output=True,
                             text=True, check=True).stdout
    assert [line.split()[-1] for line in readelf.splitlines() if " UNIQUE " in line] == [symbol.name]
    assert symbol.name in labkit.read_elf(unique).exported
    unloading = labkit.unload(unique, calls=["bump"])
    assert unloading.outcome.ok and unloading.mapped == (True, True)
    trace = labkit.trace_load(unique, call="bump")
    assert any("as NODELETE due to unique symbol" in line for line in trace.lines)
    plain = labkit.build_shared(UNIQUE, "not_unique", language="c++", cflags=["-fno-gnu-unique"])
    assert not [s for s in labkit.read_elf(plain).symbols if s.binding == "GNU_UNIQUE"]
    assert labkit.unload(plain, calls=["bump"]).unmapped


def test_atexit_runs_inside_dlclose_and_what_is_left_behind_crashes_after(workdir: Path) -> None:
    lingering = labkit.build_shared(LOADER / "lingering.c", libs=["pthread"])
    at_exit = labkit.unload(lingering, calls=["note_at_exit"])
    assert at_exit.outcome.ok
    close = at_exit.steps.index("dlclose")
    assert at_exit.steps[close + 1:close + 3] == ("lingering: the atexit handler runs",
                                                  "mapped: no")
    ticker = labkit.unload(lingering, calls=["start_ticker"], linger=1.5)  # it ticks each second
    assert ticker.outcome.signal == "SIGSEGV" and ticker.mapped == (True, False)
    assert not any(step.endswith("still alive") for step in ticker.steps)
    key = labkit.unload(lingering, thread_calls=["remember"])
    assert key.outcome.signal == "SIGSEGV" and key.steps[-1] == "the second thread ends"
    assert key.mapped == (True, False)


def test_a_thread_local_destructor_keeps_its_object_mapped(workdir: Path) -> None:
    source = ('#include <cstdio>\nstruct Noisy { ~Noisy() { std::puts("bye"); std::fflush(stdout); } };\n'
              'thread_local Noisy noisy;\nextern "C" int touch(void) { (void)&noisy; return 1; }\n')
    unloading = labkit.unload(labkit.build_shared(source, "noisy", language="c++"),
                              thread_calls=["touch"])
    assert unloading.outcome.ok and unloading.mapped == (True, True, True)
    assert unloading.steps.index("bye") > unloading.steps.index("the second thread ends")
    assert unloading.steps[-2:] == ("0.3 s later, still alive", "mapped: yes")


def test_unload_refuses_bad_input(workdir: Path) -> None:
    with pytest.raises(labkit.InputError, match=r"plugin 'nowhere\.so'"):
        labkit.unload("nowhere.so")
    plain = labkit.build_shared("int f(void) { return 1; }\n", "f")
    with pytest.raises(labkit.InputError, match="opens must be 1 or more"):
        labkit.unload(plain, opens=0)


# -- two copies of one library ----------------------------------------------------------------

@pytest.fixture
def tally(workdir: Path) -> dict[str, Path]:
    return {
        "host": labkit.build_shared(LOADER / "tally.c", "tally", cflags=["-DTALLY_RELEASE=1"],
                                    out_dir="host").path,
        "bundler": labkit.build_shared(LOADER / "bundler.c").path,
        "sealed": labkit.build_shared(
            LOADER / "bundler.c", "sealed",
            ldflags=[f"-Wl,--version-script={LOADER / 'bundler.map'}"]).path,
    }


CALLS = ["plugin_release", "plugin_count", "plugin_count"]


@pytest.mark.parametrize(("plugin", "how", "release", "host_total"), [
    ("bundler", {}, 1, 2),
    ("bundler", {"flags": RTLD.NOW | RTLD.DEEPBIND}, 2, 0),
    ("bundler", {"namespace": "new"}, 2, 0),
    ("sealed", {}, 2, 0),
])
def test_which_copy_a_plugin_reaches(tally: dict[str, Path], plugin: str, how: dict[str, object],
                                     release: int, host_total: int) -> None:
    beside = labkit.call_beside(tally["host"], tally[plugin], CALLS, host_calls=["tally_total"],
                                **how)  # type: ignore[arg-type]
    assert beside.outcome.ok, beside.outcome.stderr
    assert beside.answers == (("plugin_release", release), ("plugin_count", 1),
                              ("plugin_count", 2))
    assert beside.host_says == (("tally_total", host_total),)
    assert beside.namespace == (1 if how.get("namespace") else 0)


def test_the_loader_binds_the_plugin_s_call_where_call_beside_says(tally: dict[str, Path]) -> None:
    preload = {"LD_PRELOAD": str(tally["host"].resolve())}  # the host's copy, in the global scope
    default = labkit.trace_load(tally["bundler"], call="plugin_release", env=preload)
    assert default.outcome.stdout.strip() == "plugin_release() returned 1"
    assert default.bound("tally_release", "build/libbundler.so").to == "host/libtally.so"
    sealed = labkit.trace_load(tally["sealed"], call="plugin_release", env=preload)
    assert sealed.outcome.stdout.strip() == "plugin_release() returned 2"
    assert sealed.bound("tally_release") is None  # bound when it was linked
    assert labkit.read_elf(tally["sealed"]).exported == ("plugin_count", "plugin_release")


def test_a_new_namespace_refuses_rtld_global_as_dlmopen_does(tally: dict[str, Path]) -> None:
    with pytest.raises(labkit.InputError, match="refuses RTLD_GLOBAL"):
        labkit.load(tally["bundler"], RTLD.NOW | RTLD.GLOBAL, namespace="new")
    raw = labkit.run_isolated(
        "import ctypes, os\nlibc = ctypes.CDLL(None)\n"
        "libc.dlmopen.restype = ctypes.c_void_p\nlibc.dlerror.restype = ctypes.c_char_p\n"
        f"h = libc.dlmopen(ctypes.c_long(-1), {str(tally['bundler']).encode()!r}, "
        "os.RTLD_NOW | os.RTLD_GLOBAL)\nprint(h, libc.dlerror().decode())\n")
    assert raw.stdout.startswith("None ") and "invalid mode" in raw.stdout
    with pytest.raises(labkit.InputError, match="namespace 'old'"):
        labkit.load(tally["bundler"], namespace="old")


def test_a_library_in_a_new_namespace_sees_none_of_the_host_s_symbols(workdir: Path) -> None:
    needy = labkit.build_shared("int provided(void);\nint use(void) { return provided(); }\n",
                                "needy")
    provider = labkit.build_shared("int provided(void) { return 5; }\n", "provider")
    snippet = (f"import labkit\nlabkit.load({str(provider.path)!r}, labkit.RTLD.NOW | "
               f"labkit.RTLD.GLOBAL)\nprint(labkit.load({str(needy.path)!r}).function('use', "
               "'int(void)')())\ntry:\n"
               f"    labkit.load({str(needy.path)!r}, namespace='new')\n"
               "except labkit.LoadError as err:\n    print(err.dlerror.split(': ', 1)[-1])\n")
    ran = labkit.run_isolated(snippet)
    assert ran.stdout.splitlines() == ["5", "undefined symbol: provided"], ran.stderr


# -- building for an older glibc --------------------------------------------------------------

OLD_GLIBC = """
#include <pthread.h>
#include <sys/stat.h>
static void *nothing(void *arg) { return arg; }
int plugin_start(void) {
    struct stat info;
    pthread_t thread;
    if (stat("/", &info) != 0 || pthread_create(&thread, NULL, nothing, NULL) != 0) return -1;
    return pthread_join(thread, NULL) == 0;
}
"""


def _versions(path: Path) -> set[str]:
    return {v for need in labkit.read_elf(path).version_needs for v in need.versions}


def test_a_glibc_target_asks_only_for_that_glibc_s_versions_as_readelf_reads(
        workdir: Path) -> None:
    old = labkit.build_shared(OLD_GLIBC, "old", target="x86_64-linux-gnu.2.28", libs=["pthread"])
    native = labkit.build_shared(OLD_GLIBC, "native", libs=["pthread"])
    readelf = subprocess.run(["readelf", "-V", "-W", old.path], capture_output=True, text=True,
                             check=True).stdout
    assert {line.split("Name: ")[1].split()[0] for line in readelf.splitlines()
            if "Name: GLIBC" in line} == _versions(old.path)

    def newest(path: Path) -> tuple[int, ...]:
        return max(tuple(map(int, v.removeprefix("GLIBC_").split("."))) for v in _versions(path))

    assert newest(old.path) <= (2, 28) < newest(native.path)
    ran = labkit.run_isolated(lambda: labkit.load(old).function("plugin_start", "int(void)")())
    assert ran.ok and ran.value == 1
    with pytest.raises(labkit.InputError, match=r"unknown target 'x86_64-linux-gnu\.3\.1'"):
        labkit.build_shared(OLD_GLIBC, "bad", target="x86_64-linux-gnu.3.1")
