"""labkit's reading of LD_DEBUG, on plugins built here and loaded by the real loader: where it
searched, what it bound to what, which scopes it looked in, and what LD_PRELOAD and
RTLD_DEEPBIND change; the search agrees with labkit's own model of the loader."""

from __future__ import annotations

from pathlib import Path

import pytest

import labkit
from labkit import trace_load

PLUGIN = """
int dep_value(void);
int lab_entry(void) { return dep_value(); }
"""


@pytest.fixture
def plugin(workdir: Path) -> Path:
    """``libplug.so`` needing ``libdep.so`` (dep_value returns 7), found through its RUNPATH
    ``$ORIGIN/lib``; and ``libpre.so``, whose dep_value returns 99."""
    dep = labkit.build_shared("int dep_value(void) { return 7; }\n", "dep", out_dir="lib")
    labkit.build_shared("int dep_value(void) { return 99; }\n", "pre", out_dir="pre")
    built = labkit.build_shared(PLUGIN, "plug", libs=[dep.path],
                                ldflags=["-Wl,-rpath,$ORIGIN/lib", "-Wl,--enable-new-dtags"],
                                out_dir=".")
    return built.path


def test_the_trace_shows_where_each_library_was_found_and_agrees_with_the_model(
        plugin: Path) -> None:
    trace = trace_load(plugin, call="lab_entry")
    assert trace.ok and trace.outcome.stdout.strip() == "lab_entry() returned 7"
    [search] = trace.searches
    assert search.needed == "libdep.so" and search.found == "lib/libdep.so"
    assert [how for _, how in search.searched] == ["RUNPATH from file ./libplug.so"]
    model = labkit.find_library("libdep.so", info=labkit.read_elf(plugin))
    assert model is not None and labkit.show(model) == search.found
    assert trace.loaded == ("lib/libdep.so",)
    assert trace.inits == ("lib/libdep.so", "libplug.so")  # a dependency's constructor first


def test_each_binding_names_the_object_that_defined_the_symbol(plugin: Path) -> None:
    trace = trace_load(plugin, call="lab_entry")
    bound = trace.bound("dep_value", "libplug.so")
    assert bound is not None and bound.to == "lib/libdep.so" and bound.version is None
    assert trace.bound("dep_value", plugin.resolve()) == bound  # any form of the path
    assert trace.bound("dep_value", "./libplug.so") == bound
    assert trace.bound("dep_value", "other.so") is None
    assert list(trace.bindings_frame(files=[plugin.resolve()])["symbol"]) == \
        list(trace.bindings_frame(files=["libplug.so"])["symbol"]) != []
    puts_like = [b for b in trace.bindings if b.file == "libplug.so" and b.version]
    assert all(b.version.startswith("GLIBC_") for b in puts_like if b.version)
    checked = {(v.version, v.required_by) for v in trace.versions}
    assert {(b.version, "libplug.so") for b in puts_like} <= checked
    frame = trace.bindings_frame(["libplug.so"])
    assert list(frame.columns) == ["in", "symbol", "version", "bound to"]
    assert "dep_value" in set(frame["symbol"])


def test_ld_preload_comes_first_in_the_global_scope_and_wins(plugin: Path) -> None:
    trace = trace_load(plugin, call="lab_entry",
                       env={"LD_PRELOAD": str(plugin.parent / "pre" / "libpre.so")})
    assert trace.outcome.stdout.strip() == "lab_entry() returned 99"
    bound = trace.bound("dep_value", "libplug.so")
    assert bound is not None and bound.to == "pre/libpre.so"
    global_scope, local_scope = trace.scopes["libplug.so"]
    assert global_scope[1] == "pre/libpre.so"  # right after the program
    assert local_scope[:2] == ("libplug.so", "lib/libdep.so")


def test_deepbind_puts_the_plugin_s_own_scope_first(plugin: Path) -> None:
    trace = trace_load(plugin, flags=("now", "deepbind"), call="lab_entry",
                       env={"LD_PRELOAD": str(plugin.parent / "pre" / "libpre.so")})
    assert trace.outcome.stdout.strip() == "lab_entry() returned 7"
    bound = trace.bound("dep_value", "libplug.so")
    assert bound is not None and bound.to == "lib/libdep.so"
    assert trace.scopes["libplug.so"][0][:2] == ("libplug.so", "lib/libdep.so")


def test_a_missing_library_shows_every_file_tried_as_explain_predicts(plugin: Path) -> None:
    (plugin.parent / "lib" / "libdep.so").unlink()
    trace = trace_load(plugin)
    assert not trace.ok and "libdep.so: cannot open shared object file" in trace.outcome.stderr
    [search] = trace.searches
    assert search.found is None and "lib/libdep.so" in search.tried
    hows = [how for _, how in search.searched]
    assert hows[0] == "RUNPATH from file ./libplug.so" and hows[-1] == "system search path"
    assert "ld.so.cache" in hows
    assert [p.kind for p in labkit.explain(plugin).problems] == ["missing-library"]


def test_unknown_flags_are_refused(plugin: Path) -> None:
    with pytest.raises(labkit.InputError, match="not ones the trace host knows"):
        trace_load(plugin, flags=("now", "sideways"))


def test_rtld_global_adds_the_plugin_and_its_library_to_the_global_scope(plugin: Path) -> None:
    made = trace_load(plugin, flags=("now", "global"))
    assert made.made_global == ("libplug.so", "lib/libdep.so")
    assert trace_load(plugin).made_global == ()
    scopes = made.scopes_frame(names_only=True)
    assert scopes[scopes.object == "libplug.so"]["searched in order"].iloc[1].startswith(
        "libplug.so libdep.so")
    bound = made.bindings_frame(names_only=True)
    assert "/" not in "".join(bound["in"]) + "".join(bound["bound to"])
