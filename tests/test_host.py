"""labkit.inprocess.host: discovery, self-validation and hot swap, with the real sample plugins and
plugins built here; every sample is loaded (or refused) and its behaviour checked."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import labkit

SWAP = """
#include <stdio.h>
#include "plugin_api.h"
static size_t transform(lab_state *s, const char *text, char *out, size_t cap) {
    (void)s;
    return (size_t)snprintf(out, cap, "%s:%s", @VERSION@, text);
}
static const lab_plugin d = {LAB_PLUGIN_ABI_VERSION, sizeof(lab_plugin), "swap", "swaps",
                             NULL, transform, NULL, NULL};
const lab_plugin *lab_plugin_entry(void) { return &d; }
"""


def build_plugin(folder: Path, source: str, name: str, *, version: str = "v1",
                 body: str | None = None) -> Path:
    """Build a plugin from text against the real plugin_api.h into ``folder``."""
    text = (body or source).replace("@VERSION@", f'"{version}"')
    return labkit.build_shared(text, name, out_dir=folder,
                               cflags=[f"-I{labkit.PLUGINS_C}"]).path


@pytest.fixture
def host(samples: dict[str, labkit.Sample]) -> labkit.PluginHost:
    h = labkit.PluginHost(samples["upper"].path.parent)
    yield h
    h.close()


@pytest.fixture
def swap_dir(workdir: Path) -> Path:
    folder = workdir / "swapplugins"
    folder.mkdir()
    return folder


def test_every_sample_is_documented_at_its_top(samples: dict[str, labkit.Sample]) -> None:
    for sample in samples.values():
        first = sample.source.read_text().splitlines()[0]
        assert first.startswith(f"/* {sample.source.name}: ") and first.endswith("*/")
        assert sample.summary and sample.summary in str(sample)


def test_discovery_checks_without_loading(host: labkit.PluginHost, samples: dict[str, labkit.Sample]) -> None:
    found = {c.id: c for c in host.discover()}
    assert sorted(found) == sorted(labkit.SAMPLES)
    assert {pid for pid, c in found.items() if not c.loadable} == {"needs_lib", "needs_version", "no_entry"}
    assert [p.kind for p in found["no_entry"].problems] == ["missing-symbol"]
    assert not any(labkit.is_mapped(c.path) for c in found.values())


def test_well_behaved_plugin(host: labkit.PluginHost) -> None:
    plugin = host.load("upper", letter_case="upper", repeat=2)
    assert (plugin.id, plugin.name, plugin.abi_version) == ("upper", "upper", 1)
    assert plugin.transform("hello") == "HELLOHELLO"
    assert plugin.transform("x" * 300) == "X" * 600  # longer than the first buffer
    assert plugin.scale(2.0) == 5.0
    assert repr(plugin) == f"<Plugin upper: 'upper', ABI 1, from {labkit.show(plugin.path)}>"


def test_the_v2_plugin_passes_the_checks_and_computes_garbage(host: labkit.PluginHost) -> None:
    plugin = host.load("upper_v2", letter_case="upper", repeat=2, width=3)
    assert plugin.abi_version == 1  # it claims the old version: the checks cannot see the drift
    assert plugin.transform("hello") == "hellohellohello"  # TITLE read as 1, width read as repeat
    assert plugin.scale(2.0) != 5.0  # a double passed where a float is read


@pytest.mark.parametrize(("pid", "check", "declared"), [
    ("no_entry", "entry-symbol", {}),
    ("future_abi", "abi-version", {"abi_version": 2, "size": 56}),
    ("needs_lib", "load", {}),
    ("needs_version", "load", {}),
])
def test_samples_that_fail_validation(host: labkit.PluginHost, pid: str, check: str,
                                      declared: dict[str, object]) -> None:
    with pytest.raises(labkit.PluginError, match=rf"plugin '{pid}'.*failed the check '{check}'(?s:.*)Fix: ") as info:
        host.load(pid)
    assert (info.value.check, info.value.declared) == (check, declared)
    assert not labkit.is_mapped(host.path_of(pid))  # a refused plugin is closed again
    assert pid not in host.plugins


@pytest.mark.parametrize(("body", "check", "said"), [
    ("static const lab_plugin d = {1, 8, \"small\", 0, 0, 0, 0, 0};\n"
     "const lab_plugin *lab_plugin_entry(void) { return &d; }\n", "size", "size=8"),
    ("static const lab_plugin d = {1, sizeof(lab_plugin), \"lazy\", 0, 0, 0, 0, 0};\n"
     "const lab_plugin *lab_plugin_entry(void) { return &d; }\n", "functions", "name='lazy'"),
    ("const lab_plugin *lab_plugin_entry(void) { return 0; }\n", "descriptor", "nothing"),
])
def test_descriptor_checks(swap_dir: Path, body: str, check: str, said: str) -> None:
    build_plugin(swap_dir, "", "bad", body='#include "plugin_api.h"\n' + body)
    host = labkit.PluginHost(swap_dir)
    with pytest.raises(labkit.PluginError, match=rf"failed the check '{check}'.*it declared: .*{said}"):
        host.load("bad")


def test_crashing_plugin_runs_in_a_child(host: labkit.PluginHost) -> None:
    outcome = host.trial("crasher", "boom")
    assert outcome.signal == "SIGSEGV" and outcome.crashed
    good = host.trial("upper", "fine", letter_case="upper")
    assert good.ok and good.value == "FINE"


def test_unknown_id_lists_what_is_there(host: labkit.PluginHost) -> None:
    with pytest.raises(labkit.InputError, match=r"no plugin 'nope'.*found: crasher, future_abi"):
        host.load("nope")
    with pytest.raises(labkit.InputError, match=r"plugin folder 'nowhere' does not exist"):
        labkit.PluginHost("nowhere")


def test_hot_swap(swap_dir: Path) -> None:
    build_plugin(swap_dir, SWAP, "swap", version="v1")
    host = labkit.PluginHost(swap_dir)
    plugin = host.load("swap")
    assert plugin.transform("a") == "v1:a"
    build_plugin(swap_dir, SWAP, "swap", version="v2")  # replaces the file on disk
    assert plugin.transform("a") == "v1:a"  # the mapped copy is unchanged
    plugin.reload()
    assert plugin.transform("a") == "v2:a" and plugin.reloads == 1
    plugin.close()
    with pytest.raises(labkit.PluginError, match=r"is closed"):
        plugin.transform("a")


def test_a_refused_swap_keeps_the_old_copy(swap_dir: Path, samples: dict[str, labkit.Sample]) -> None:
    path = build_plugin(swap_dir, SWAP, "swap", version="v1")
    host = labkit.PluginHost(swap_dir)
    plugin = host.load("swap")
    shutil.copy(samples["future_abi"].path, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    with pytest.raises(labkit.PluginError, match=r"failed the check 'abi-version'"):
        plugin.reload()
    assert plugin.transform("still") == "v1:still" and plugin.reloads == 0


def test_install_renames_over_a_loaded_plugin_and_never_writes_into_it(
    swap_dir: Path, tmp_path: Path
) -> None:
    path = build_plugin(swap_dir, SWAP, "swap", version="v1")
    host = labkit.PluginHost(swap_dir)
    plugin = host.load("swap")  # maps swap_dir/libswap.so itself
    assert labkit.is_mapped(path)
    mapped_inode = path.stat().st_ino
    v2 = build_plugin(tmp_path / "v2", SWAP, "swap", version="v2")
    assert host.install("swap", v2) == path
    assert path.stat().st_ino != mapped_inode  # a new file took the name
    assert plugin.transform("a") == "v1:a"  # the mapped pages are the old file's, intact
    plugin.reload()
    assert plugin.transform("a") == "v2:a"
    assert [p.name for p in swap_dir.iterdir() if p.name.startswith(".")] == []  # no leftovers
    with pytest.raises(labkit.InputError, match=r"plugin file '.*nothere.so' does not exist"):
        host.install("swap", tmp_path / "nothere.so")
    plugin.close()


def test_calls_keep_working_while_swapping(swap_dir: Path) -> None:
    for version in ("v1", "v2"):  # both builds in the cache, so each swap is a file copy
        build_plugin(swap_dir / version, SWAP, "swap", version=version)
    shutil.copy(swap_dir / "v1" / "libswap.so", swap_dir / "libswap.so")
    plugin = labkit.PluginHost(swap_dir).load("swap")
    results: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def caller() -> None:
        try:
            while not stop.is_set():
                results.append(plugin.transform("x"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(20):
        version = ("v2", "v1")[i % 2]
        tmp = swap_dir / ".libswap.so.tmp"
        shutil.copy(swap_dir / version / "libswap.so", tmp)
        tmp.replace(swap_dir / "libswap.so")
        plugin.reload()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert set(results) == {"v1:x", "v2:x"} and plugin.reloads == 20
    assert plugin.transform("x") == "v1:x"
    plugin.close()


def test_panel_prints_what_it_shows(host: labkit.PluginHost, swap_dir: Path) -> None:
    panel = labkit.PluginPanel(host, "hi", start="upper", letter_case="upper")
    assert panel.picker.options == ("crasher", "future_abi", "upper", "upper_v2")
    assert str(panel) == "upper (upper): transform('hi') = 'HI'"
    assert "transform(&#x27;hi&#x27;) = &#x27;HI&#x27;" in panel.output.value
    panel.picker.value = "crasher"  # as a click would: tried in a child, refused
    assert str(panel).startswith("crasher: refused, because in a trial in a child process "
                                 "the child was killed by SIGSEGV")
    assert panel.select("future_abi").startswith("future_abi: plugin 'future_abi'")
    build_plugin(swap_dir, SWAP, "swap", version="v1")
    swap = labkit.PluginPanel(labkit.PluginHost(swap_dir), "x")
    assert str(swap) == "swap (swap): transform('x') = 'v1:x'"
    build_plugin(swap_dir, SWAP, "swap", version="v2")
    assert swap.reload() == "swap (swap, swapped 1x): transform('x') = 'v2:x'"
