"""Go plugins for real: every failure of Go's plugin package reproduced with a real Go host,
the runtime's own words asserted, and ``explain --host`` shown to have predicted them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import labkit
from labkit.build.progress import Progress
from labkit.samples.go import GO_OTHER_TOOLCHAIN
from labkit.toolchain import find_go
from tests.conftest import COUNT_OPENS, run_cli


@pytest.fixture(scope="session")
def go_samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("go")
    built = labkit.build_go_samples(out)
    return {name: artifact.path for name, artifact in built.items()}


def test_explain_reads_a_go_pair_once(go_samples: dict[str, Path]) -> None:
    # the Go build information and package fingerprints come from the same read as the rest
    result = subprocess.run(
        [sys.executable, "-c", COUNT_OPENS, go_samples["greeter"], go_samples["host"]],
        capture_output=True, text=True, check=True)
    assert result.stdout.split("\n") == ["True 1 1", "True 1 1", ""]


def predicted(verdict: labkit.Verdict) -> str:
    """The Go runtime message a problem quotes ("..."), the prediction to check."""
    quoted = re.findall(r'"([^"]+)"', verdict.problems[0].message)
    assert quoted, verdict.problems[0].message
    return quoted[0]


def test_the_plugin_opens_in_its_host(go_samples: dict[str, Path]) -> None:
    outcome = labkit.run_go_host(go_samples["host"], go_samples["greeter"])
    assert outcome.ok, outcome.stderr
    assert 'Greet("gopher") = "bonjour, gopher"' in outcome.stdout  # the variable was set
    assert 'Transform("plugin") = "PLUGIN"' in outcome.stdout
    assert labkit.explain(go_samples["greeter"], host=go_samples["host"]).ok


@pytest.mark.parametrize(("host", "plugin", "kind"), [
    ("host", "greeter_v2", "go-package"),
    ("host", "greeter_trim", "go-package"),
    ("host_nocgo", "greeter", "go-no-cgo"),
    ("host", "greeter_go126", "go-toolchain"),
    ("host", "shout", "go-not-plugin"),
], ids=["changed-shared-package", "trimpath", "host-without-cgo", "other-toolchain",
        "c-shared-is-not-a-plugin"])
def test_each_failure_is_real_and_predicted(
    go_samples: dict[str, Path], host: str, plugin: str, kind: str
) -> None:
    verdict = labkit.explain(go_samples[plugin], host=go_samples[host])
    assert [p.kind for p in verdict.problems] == [kind]
    outcome = labkit.run_go_host(go_samples[host], go_samples[plugin])
    assert not outcome.ok
    said = outcome.stdout + outcome.stderr
    assert predicted(verdict) in said, (str(verdict), said)


def test_changed_package_is_named_the_way_go_names_it(go_samples: dict[str, Path]) -> None:
    outcome = labkit.run_go_host(go_samples["host"], go_samples["greeter_v2"])
    assert "plugin was built with a different version of package pluginlab/api" in outcome.stdout
    assert outcome.returncode == 1
    verdict = labkit.explain(go_samples["greeter_v2"], host=go_samples["host"])
    assert "plugin -tags=api_v2, host without -tags" in verdict.problems[0].message


def test_trimpath_is_blamed_on_the_flag(go_samples: dict[str, Path]) -> None:
    verdict = labkit.explain(go_samples["greeter_trim"], host=go_samples["host"])
    assert "plugin with -trimpath, host without -trimpath" in verdict.problems[0].message
    assert "CGO_CFLAGS" not in verdict.problems[0].message  # -trimpath omits empty ones


def test_other_toolchain_kills_the_host_with_a_fatal_error(go_samples: dict[str, Path]) -> None:
    outcome = labkit.run_go_host(go_samples["host"], go_samples["greeter_go126"])
    assert outcome.returncode == 2
    assert "fatal error: runtime: no plugin module data" in labkit.host_report(outcome)
    info = labkit.go_info(go_samples["greeter_go126"])
    assert info.go_version == GO_OTHER_TOOLCHAIN
    problem = labkit.explain(go_samples["greeter_go126"], host=go_samples["host"]).problems[0]
    assert problem.kind == "go-toolchain"
    assert "most likely dies with \"fatal error: runtime: no plugin module data\"" in problem.message


def test_release_skew_depends_on_the_pair() -> None:
    from labkit.diagnose.goplugin import release_skew

    assert "refuses it with \"plugin was built with a different version" in release_skew("go1.27.0", "go1.27.3")
    assert "dies with \"fatal error: runtime: no plugin module data\"" in release_skew("go1.26.0", "go1.27.3")


def test_a_plugin_init_runs_only_after_plugin_opens_checks(go_samples: dict[str, Path]) -> None:
    go = labkit.build_go_samples(go_samples["host"].parent, ["greeter_noisy", "greeter_noisy_v2"])
    accepted = labkit.run_go_host(go_samples["host"], go["greeter_noisy"])
    assert accepted.ok and accepted.stdout.startswith("[greeter] init: plugin.Open's checks passed\nopen ")
    refused = labkit.run_go_host(go_samples["host"], go["greeter_noisy_v2"])
    assert refused.returncode == 1 and "[greeter] init" not in refused.stdout + refused.stderr
    assert "different version of package pluginlab/api" in refused.stdout


def test_a_plugin_built_from_its_files_loads_beside_the_package_build(
    go_samples: dict[str, Path],
) -> None:
    """Another plugin path is another plugin to the runtime: both copies load, and stay."""
    files = labkit.build_go_samples(go_samples["host"].parent, ["greeter_files"])["greeter_files"]
    assert files.command_line.endswith("-o greeter_files.so ./greeter/main.go")
    assert re.fullmatch(r"plugin/unnamed-[0-9a-f]{40}", labkit.go_info(files.path).plugin_path)
    outcome = labkit.run_go_host(go_samples["host"], go_samples["greeter"], files.path)
    assert outcome.ok and outcome.stdout.count('Greeting = "hello", set to "bonjour"') == 2


def test_host_without_cgo_says_not_implemented(go_samples: dict[str, Path]) -> None:
    outcome = labkit.run_go_host(go_samples["host_nocgo"], go_samples["greeter"])
    assert outcome.stdout.rstrip().endswith("plugin: not implemented")
    assert labkit.go_info(go_samples["host_nocgo"]).settings["CGO_ENABLED"] == "0"


def test_a_plugin_opens_once_and_a_copy_is_refused(
    go_samples: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.so"
    shutil.copy(go_samples["greeter"], copy)
    plugin = go_samples["greeter"]
    outcome = labkit.run_go_host(go_samples["host"], plugin, plugin, copy)
    lines = outcome.stdout.splitlines()
    assert f"open {plugin}: the same *plugin.Plugin as {plugin} (Go opens a plugin once)" in lines
    assert lines[-1].endswith("plugin already loaded")
    verdict = labkit.explain(plugin, host=go_samples["host"])
    assert verdict.ok and "'pluginlab/greeter'" in verdict.notes[0]
    assert "plugin already loaded" in verdict.notes[0]


def test_self_validation_refuses_the_impostor(go_samples: dict[str, Path]) -> None:
    outcome = labkit.run_go_host(go_samples["host"], go_samples["impostor"])
    assert outcome.returncode == 1
    assert outcome.stdout.splitlines()[-1] == "  refused: Greeting is a *int, not a *string"
    # the runtime accepts it: only the host's own type assertions can catch this
    assert labkit.explain(go_samples["impostor"], host=go_samples["host"]).ok


def test_musl_host_cannot_start_and_explain_knows_why(go_samples: dict[str, Path]) -> None:
    host = go_samples["host_musl"]
    outcome = labkit.run_go_host(host, go_samples["greeter"])
    assert outcome.returncode is None and outcome.error is not None
    assert outcome.error["kind"] == "FileNotFoundError"
    assert "No such file or directory" in outcome.error["message"]
    assert host.exists()  # the file is there; its interpreter is not
    verdict = labkit.explain(host)
    assert [p.kind for p in verdict.problems] == ["missing-interpreter"]
    assert "/lib/ld-musl-x86_64.so.1" in str(verdict)


def test_a_plugin_cannot_go_into_a_program_that_is_not_go(go_samples: dict[str, Path]) -> None:
    verdict = labkit.explain(go_samples["greeter"], host="/bin/sh")
    assert [p.kind for p in verdict.problems] == ["go-host-not-go"]


def test_a_c_library_cannot_go_into_a_go_host(
    go_samples: dict[str, Path], hello_so: labkit.Artifact
) -> None:
    verdict = labkit.explain(hello_so.path, host=go_samples["host"])
    assert [p.kind for p in verdict.problems] == ["go-not-plugin"]


def test_explain_cli_exit_status_for_go(go_samples: dict[str, Path]) -> None:
    good = run_cli("explain", go_samples["greeter"], "--host", go_samples["host"])
    assert good.returncode == 0 and "a Go plugin built by go1." in good.stdout
    bad = run_cli("explain", go_samples["greeter_v2"], "--host", go_samples["host"])
    assert bad.returncode == 1 and "- go-package: package pluginlab/api" in bad.stdout


@pytest.mark.parametrize("name", list(labkit.GO_SAMPLES))
def test_go_info_matches_go_version_m(go_samples: dict[str, Path], name: str) -> None:
    path = go_samples[name]
    go = find_go()
    expected = subprocess.run([*go.command, "version", "-m", str(path)], capture_output=True,
                              text=True, check=True).stdout.rstrip()
    mine = labkit.go_info(path).version_m()
    assert mine.split("\n", 1)[1] == expected.split("\n", 1)[1]
    assert mine.split(": ", 1)[1].split("\n")[0] == expected.split(": ", 1)[1].split("\n")[0]


def test_go_info_reads_the_build(go_samples: dict[str, Path]) -> None:
    plugin = labkit.go_info(go_samples["greeter_v2"])
    assert plugin.buildmode == "plugin" and plugin.cgo
    assert plugin.settings["-tags"] == "api_v2"
    assert plugin.main is not None and plugin.main.path == "pluginlab"
    assert plugin.plugin_path == "pluginlab/greeter"
    assert "pluginlab/api" in plugin.fingerprints and "runtime" in plugin.fingerprints
    host = labkit.go_info(go_samples["host"])
    assert host.fingerprints["runtime"] == plugin.fingerprints["runtime"]
    assert host.fingerprints["pluginlab/api"] != plugin.fingerprints["pluginlab/api"]
    assert labkit.go_info(go_samples["host_nocgo"]).fingerprints == {}  # cannot use plugins


def test_go_info_refuses_what_go_did_not_build(hello_so: labkit.Artifact, bad: dict[str, Path]) -> None:
    assert not labkit.is_go(hello_so.path)
    with pytest.raises(labkit.ElfError, match="no Go build information"):
        labkit.go_info(hello_so.path)
    with pytest.raises(labkit.ElfError, match="not an ELF file"):
        labkit.go_info(bad["text"])
    with pytest.raises(labkit.InputError, match="does not exist"):
        labkit.go_info(bad["missing"])


def test_c_shared_library_called_from_python(go_samples: dict[str, Path]) -> None:
    header = go_samples["shout"].with_suffix(".h").read_text()
    assert "extern char* Shout(char* text);" in header
    snippet = f"""
import labkit
lib = labkit.load({str(go_samples["shout"])!r})
shout = lib.function("Shout", "char *(char *)")
free = lib.function("FreeString", "void (char *)")
result = shout(b"go from python")
print(labkit.c_string(result))
free(result)
print(lib.function("Add", "long (long, long)")(40, 2))
"""
    outcome = labkit.run_isolated(snippet)
    assert outcome.ok, outcome.stderr
    assert outcome.stdout.splitlines() == ["GO FROM PYTHON!", "42"]


def test_build_errors_carry_go_output(workdir: Path) -> None:
    with pytest.raises(labkit.BuildError, match="requires external \\(cgo\\) linking") as info:
        labkit.build_go("greeter", "nocgo", mode="plugin", cgo=False)
    assert info.value.fix.startswith("a Go plugin needs cgo")
    assert info.value.returncode != 0


def test_a_changed_interface_fails_the_build_with_go_words(workdir: Path) -> None:
    module = workdir / "mod"
    shutil.copytree(labkit.PLUGINS_GO, module, ignore=shutil.ignore_patterns("registry"))
    api = module / "api" / "api.go"
    api.write_text(api.read_text().replace("Transform(text string) string",
                                           "Transform(text string) string\n\tName() string"))
    with pytest.raises(labkit.BuildError, match="does not implement") as info:
        labkit.build_go("greeter", mode="plugin", module=module)
    assert "missing method Name" in info.value.diagnosis


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"package": "nowhere"}, "no Go package 'nowhere'.*Fix: use one of api, cshared"),
    ({"package": "greeter", "mode": "archive"}, "mode 'archive' is not a -buildmode labkit builds. Fix: use one of exe"),
    ({"package": "greeter", "toolchain": "1.26"}, "toolchain '1.26' does not name a Go release. Fix: name one such"),
    ({"package": "greeter", "target": "riscv64-linux-gnu"}, "unknown target"),
    ({"package": "greeter", "module": "/"}, "is not a Go module"),
], ids=["no-package", "mode", "toolchain", "target", "module"])
def test_bad_build_input_is_refused_clearly(
    workdir: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(labkit.InputError, match=message):
        labkit.build_go(**kwargs)  # type: ignore[arg-type]


def test_build_cache_keys_on_module_content(workdir: Path) -> None:
    release = uuid.uuid4().hex  # a change no earlier run has cached
    module = workdir / "mod"
    shutil.copytree(labkit.PLUGINS_GO, module, ignore=shutil.ignore_patterns("registry"))
    first = labkit.build_go("greeter", mode="plugin", module=module)
    before = labkit.go_info(first.path).fingerprints["pluginlab/api"]
    again = labkit.build_go("greeter", mode="plugin", module=module)
    assert again.from_cache and again.key == first.key
    api = module / "api" / "api.go"
    api.write_text(api.read_text().replace('Release = "1.0"', f'Release = "{release}"'))
    changed = labkit.build_go("greeter", mode="plugin", module=module)
    assert not changed.from_cache and changed.key != first.key
    assert labkit.go_info(changed.path).fingerprints["pluginlab/api"] != before


def test_shown_command_has_the_settings_that_matter(go_samples: dict[str, Path]) -> None:
    built = labkit.build_go_samples(go_samples["host"].parent, ["host_nocgo", "greeter_go126"])
    assert built["host_nocgo"].command_line.startswith("CGO_ENABLED=0 go build -buildmode=exe")
    assert built["greeter_go126"].command_line.startswith("GOTOOLCHAIN=go1.26.0 go build")
    assert built["host_nocgo"].from_cache


def test_registry_needs_a_rebuild_for_a_new_plugin(workdir: Path) -> None:
    stock = labkit.build_go("registry/cmd/stock", "stock").path
    custom = labkit.build_go("registry/cmd/custom", "custom").path
    refused = labkit.run_program([stock, "trim,shout", " hi "])
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[0] == "compiled-in plugins: lower, trim"
    assert 'unknown plugin "shout": this binary was built without it' in refused.stdout
    accepted = labkit.run_program([custom, "trim,shout", " hi "])
    assert accepted.ok
    assert accepted.stdout.splitlines() == ["compiled-in plugins: lower, shout, trim",
                                            'trim   " hi " -> "hi"', 'shout  "hi" -> "HI!"']


def test_run_program_reports_exec_failure_and_timeout(workdir: Path) -> None:
    missing = labkit.run_program([workdir / "nothing-here"])
    assert missing.error is not None and missing.error["kind"] == "FileNotFoundError"
    assert missing.summary().startswith("the program could not start: [Errno 2]")
    slow = labkit.run_program(["sleep", "30"], timeout=0.5)
    assert slow.timed_out and slow.signal == "SIGKILL" and slow.seconds < 5
    with pytest.raises(labkit.InputError, match="argv is empty"):
        labkit.run_program([])


def test_progress_stays_silent_outside_a_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("go build", after=0.0) as progress:
        progress.tick()
        assert progress._label is None
    assert capsys.readouterr() == ("", "")


def test_plugin_open_is_dlopen_underneath(go_samples: dict[str, Path]) -> None:
    lines = labkit.dlopen_trace(go_samples["host"], go_samples["greeter"])
    assert any(line.endswith(f"dynamically loaded by {labkit.show(go_samples['host'])} [0]")
               and line.startswith("file=") for line in lines), lines
    assert any(line.startswith("calling init:") for line in lines)
    assert f"add {labkit.show(go_samples['greeter'].resolve())} [0] to global scope" in lines  # RTLD_GLOBAL


def test_go_said_is_the_runtimes_verdict(go_samples: dict[str, Path]) -> None:
    def said(host: str, plugin: str) -> str:
        return labkit.go_said(labkit.run_go_host(go_samples[host], go_samples[plugin]))

    assert said("host", "greeter") == "ok"
    assert said("host", "greeter_v2") == ("plugin was built with a different version of "
                                          "package pluginlab/api")
    assert said("host", "shout") == "fatal error: runtime: no plugin module data"
    assert said("host", "impostor") == "refused: Greeting is a *int, not a *string"
    assert said("host_nocgo", "greeter") == "plugin: not implemented"
    assert said("host_musl", "greeter").startswith(
        "could not start: [Errno 2] No such file or directory")
