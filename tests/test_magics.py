"""The cell magics as a notebook uses them: a real IPython shell, real compilers, real loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import labkit


@pytest.fixture
def shell(workdir: Path) -> Iterator[Any]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "labkit")
    yield ip
    InteractiveShell.clear_instance()


def test_cplugin_builds_loads_and_binds_the_cell(
    shell: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    shell.run_cell_magic("cplugin", "triple", "int triple(int x) { return 3 * x; }\n")
    lib = shell.user_ns["triple"]
    assert isinstance(lib, labkit.Library)
    assert lib.function("triple", "int(int)")(7) == 21
    out = capsys.readouterr().out
    assert out.startswith("triple: loaded build/libtriple.so (cc ") and "exports triple" in out


def test_cplugin_rerun_with_new_code_gives_the_new_code(shell: Any) -> None:
    shell.run_cell_magic("cplugin", "f", "int f(void) { return 1; }\n")
    first = shell.user_ns["f"].function("f", "int(void)")
    shell.run_cell_magic("cplugin", "f", "int f(void) { return 2; }\n")
    assert shell.user_ns["f"].function("f", "int(void)")() == 2
    assert first() == 1  # the old copy stays mapped for whoever holds it


def test_cplugin_errors_point_at_the_cells_lines(shell: Any) -> None:
    with pytest.raises(UsageError, match=r"(?s)cplugin bad: cc could not build.*"
                       r"cell line 2, column 13: error: expected expression"):
        shell.run_cell_magic("cplugin", "bad", "int f(int x) {\n  return x +;\n}\n")
    assert "bad" not in shell.user_ns


def test_a_constructor_that_crashes_is_caught_in_a_trial_child(shell: Any) -> None:
    with pytest.raises(UsageError, match=r"failed while loading in a trial child") as info:
        shell.run_cell_magic("cplugin", "crashing",
                             "#include <signal.h>\n"
                             "__attribute__((constructor)) static void boom(void) {\n"
                             "    raise(SIGSEGV);\n}\nint f(void) { return 1; }\n")
    assert "SIGSEGV" in str(info.value) and "the kernel is safe" in str(info.value)
    assert "crashing" not in shell.user_ns
    assert not labkit.is_mapped("build/libcrashing.so")


def test_cplugin_passes_cflags(shell: Any) -> None:
    shell.run_cell_magic("cplugin", 'k --cflags "-DK=5"', "int k(void) { return K; }\n")
    assert shell.user_ns["k"].function("k", "int(void)")() == 5


@pytest.mark.parametrize("name", ["2fast", "a-b", "lib.so"])
def test_a_name_that_is_not_an_identifier_is_refused(shell: Any, name: str) -> None:
    with pytest.raises(UsageError, match="must be a Python identifier"):
        shell.run_cell_magic("cplugin", name, "int f(void) { return 0; }\n")


SHOUT_GO = '''package main

import "C"
import "strings"

//export Shout
func Shout(s *C.char) *C.char { return C.CString(strings.ToUpper(C.GoString(s))) }

func main() {}
'''

GREETER_GO = '''package main

import (
\t"strings"

\t"pluginlab/api"
)

var Greeting = "hello"

func Greet(who string) string { return Greeting + ", " + who }

type shouter struct{}

func (shouter) Transform(text string) string { return strings.ToUpper(text) + "!" }

var Plugin api.Transformer = shouter{}

func main() {}
'''


def test_goplugin_c_shared_is_loaded_here(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell_magic("goplugin", "shout", SHOUT_GO)
    lib = shell.user_ns["shout"]
    shout = lib.function("Shout", "char*(char*)")
    assert labkit.c_string(shout(b"go")) == "GO"
    assert "exports Shout\n" in capsys.readouterr().out  # cgo's own helpers left out


def test_goplugin_plugin_opens_in_the_labs_go_host(
    shell: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    shell.run_cell_magic("goplugin", "cellgreeter --mode plugin", GREETER_GO)
    artifact = shell.user_ns["cellgreeter"]
    assert isinstance(artifact, labkit.Artifact) and artifact.path.name == "cellgreeter.so"
    assert "exports Greeting, Plugin, Greet" in capsys.readouterr().out
    host = labkit.build_go_samples("build/go", ["host"])["host"]
    outcome = labkit.run_go_host(host, artifact)
    assert outcome.ok, outcome.stderr
    assert 'Transform("plugin") = "PLUGIN!"' in outcome.stdout


def test_goplugin_errors_point_at_the_cells_lines(shell: Any) -> None:
    with pytest.raises(UsageError, match=r"cell line 4, column 2: undefined: nothing"):
        shell.run_cell_magic("goplugin", "gbad", "package main\n\nfunc main() {\n\tnothing()\n}\n")


def test_goplugin_exe_builds_a_program_that_can_use_the_registry(shell: Any) -> None:
    shell.run_cell_magic("goplugin", "twice --mode exe", """package main

import (
\t"os"

\t"pluginlab/registry/framework"
\t"pluginlab/registry/plugins/trim"
)

func main() {
\tframework.Main(os.Args[1:], framework.WithPlugin("trim", func() framework.Plugin { return trim.New() }))
}
""")
    program = shell.user_ns["twice"]
    assert isinstance(program, labkit.Artifact) and program.kind == "executable"
    outcome = labkit.run_program([program, "trim", "x"])
    assert outcome.returncode == 1
    assert 'registry: a plugin named "trim" already exists' in outcome.stdout
    assert labkit.evaluate_exercise("07.1", program).passed
