"""labkit explain: the verdict on every sample and every failure kind, built for real, and
checked against what the loader (or the kernel) actually does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from tests.conftest import COUNT_OPENS, run_cli

HOST_API_USER = "int host_api(int);\nint use(void) { return host_api(1); }\n"
HOST = "int host_api(int x) { return x + 1; }\nint main(void) { return host_api(-1); }\n"


@pytest.mark.parametrize("sample_id", list(labkit.SAMPLES))
def test_every_sample_gets_the_documented_verdict(samples: dict[str, labkit.Sample], sample_id: str) -> None:
    verdict = labkit.explain(samples[sample_id].path)
    assert verdict.ok is labkit.SAMPLES[sample_id]
    result = run_cli("explain", samples[sample_id].path)
    assert result.returncode == (0 if verdict.ok else 1), result.stderr
    assert result.stdout.startswith(f"{samples[sample_id].path}: will ")  # as given


def test_the_command_line_shows_paths_as_given(tmp_path: Path) -> None:
    result = run_cli("explain", tmp_path)
    assert result.returncode == 2
    error = labkit.InputError(f"'{tmp_path}' is a directory, not a file",
                              fix="name a file inside it")
    assert result.stderr == f"labkit explain: {error}\n"
    assert labkit.show(tmp_path).startswith("<tmp>/")  # the notebooks' short form stays


def test_missing_library_matches_the_loader(samples: dict[str, labkit.Sample]) -> None:
    path = samples["needs_lib"].path
    assert [p.kind for p in labkit.explain(path).problems] == ["missing-library"]
    assert "'libgone.so'" in str(labkit.explain(path))
    with pytest.raises(labkit.LoadError) as info:
        labkit.load(path)
    assert "libgone.so: cannot open shared object file" in info.value.dlerror


def test_missing_symbol_version_matches_the_loader(samples: dict[str, labkit.Sample]) -> None:
    path = samples["needs_version"].path
    verdict = labkit.explain(path)
    assert [p.kind for p in verdict.problems] == ["missing-version"]
    assert "'LABHELPER_2.0'" in verdict.problems[0].message and "stops at 'LABHELPER_1.0'" in verdict.problems[0].message
    with pytest.raises(labkit.LoadError) as info:
        labkit.load(path)
    assert "version `LABHELPER_2.0' not found" in info.value.dlerror
    # with release 2 of libhelper first on the search path, it loads: the verdict follows
    sdk = str(path.parent.parent / "sdk")
    assert labkit.explain(path, env={"LD_LIBRARY_PATH": sdk}).ok


def test_musl_program_misses_its_interpreter(workdir: Path) -> None:
    exe = labkit.build_executable('#include <stdio.h>\nint main(void) { return puts("hi") < 0; }\n',
                                  "hello_musl", target="x86_64-linux-musl")
    verdict = labkit.explain(exe.path)
    assert verdict.action == "run"
    assert [p.kind for p in verdict.problems] == ["missing-interpreter"]
    assert "/lib/ld-musl-x86_64.so.1" in verdict.problems[0].message
    with pytest.raises(FileNotFoundError):  # what the shell reports as "No such file or directory"
        subprocess.run([str(exe.path.resolve())], check=False)
    result = run_cli("explain", exe.path, cwd=workdir)
    assert result.returncode == 1 and "will not run here" in result.stdout


def test_a_glibc_program_runs(workdir: Path) -> None:
    exe = labkit.build_executable("int main(void) { return 0; }\n", "fine")
    verdict = labkit.explain(exe.path)
    assert verdict.ok and verdict.action == "run"
    assert "interpreter /lib64/ld-linux-x86-64.so.2 found" in str(verdict)
    assert subprocess.run([str(exe.path.resolve())], check=False).returncode == 0


def test_wrong_machine_and_musl_library(aarch64_so: Path, musl_so: Path) -> None:
    assert [p.kind for p in labkit.explain(aarch64_so).problems] == ["wrong-machine"]
    assert [p.kind for p in labkit.explain(musl_so).problems] == ["musl"]
    assert run_cli("explain", aarch64_so).returncode == 1


def test_undefined_symbols_and_the_host(workdir: Path) -> None:
    plugin = labkit.build_shared(HOST_API_USER, "usehost")
    plain = labkit.build_executable(HOST, "host_plain")
    exporting = labkit.build_executable(HOST, "host_rdynamic", ldflags=["-rdynamic"])
    alone = labkit.explain(plugin.path)
    assert [p.kind for p in alone.problems] == ["undefined-symbol"]
    assert "'host_api'" in alone.problems[0].message and "--host" in alone.problems[0].message
    # a host that defines host_api but does not export it does not help: the loader agrees
    assert not labkit.explain(plugin.path, host=plain.path).ok
    assert labkit.explain(plugin.path, host=exporting.path).ok
    assert run_cli("explain", plugin.path, "--host", plain.path, cwd=workdir).returncode == 1
    assert run_cli("explain", plugin.path, "--host", exporting.path, cwd=workdir).returncode == 0


def test_explain_reads_each_file_once(workdir: Path) -> None:
    # the header, sections, dynamic table, relocations and the diagnosis all come from one read
    plugin = labkit.build_shared(HOST_API_USER, "usehost_once")
    host = labkit.build_executable(HOST, "host_once", ldflags=["-rdynamic"])
    result = subprocess.run([sys.executable, "-c", COUNT_OPENS, plugin.path, host.path],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split("\n") == ["True 1 1", "True 1 1", ""]  # the second: no read


def test_the_loader_agrees_about_undefined_symbols(workdir: Path) -> None:
    plugin = labkit.build_shared(HOST_API_USER, "usehost2")
    with pytest.raises(labkit.LoadError) as info:
        labkit.load(plugin.path)
    assert [p.kind for p in info.value.problems] == ["undefined-symbol"]
    assert "undefined symbol: host_api" in info.value.dlerror


def test_required_symbol(samples: dict[str, labkit.Sample]) -> None:
    result = run_cli("explain", samples["no_entry"].path, "--require", labkit.ENTRY_SYMBOL)
    assert result.returncode == 1
    assert "missing-symbol:" in result.stdout and "'lab_plugin_entry'" in result.stdout
    assert run_cli("explain", samples["upper"].path, "--require", labkit.ENTRY_SYMBOL).returncode == 0


@pytest.mark.parametrize(("name", "status", "expected"), [
    ("empty", 1, r"is empty \(0 bytes\)"),
    ("text", 1, r"is not an ELF file"),
    ("truncated", 1, r"is truncated"),
    ("tiny", 1, r"is truncated"),
    ("directory", 2, r"is a directory"),
    ("missing", 2, r"does not exist"),
])
def test_bad_input(bad: dict[str, Path], name: str, status: int, expected: str) -> None:
    result = run_cli("explain", bad[name])
    assert result.returncode == status
    assert re.search(expected, result.stdout + result.stderr)


def test_unreadable_file_and_bad_host(samples: dict[str, labkit.Sample], workdir: Path) -> None:
    result = run_cli("explain", "/proc/self/mem")  # readable by nobody, even root: EIO
    assert result.returncode == 2 and "cannot be read" in result.stderr
    Path("host.txt").write_text("not a program\n")
    result = run_cli("explain", samples["upper"].path, "--host", "host.txt", cwd=workdir)
    assert result.returncode == 2 and "the host 'host.txt' is not a program" in result.stderr
    assert run_cli("explain").returncode == 2  # usage


def test_verdict_lines(samples: dict[str, labkit.Sample]) -> None:
    text = str(labkit.explain(samples["needs_lib"].path))
    lines = text.splitlines()
    assert lines[0].endswith("will not load here (1 problem).")
    assert all(line.startswith("- ") and ". Fix: " in line for line in lines[1:])
    assert lines[0].startswith(labkit.show(samples["needs_lib"].path) + ": ")
