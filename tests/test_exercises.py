"""The exercise judges, for real: every exercise gets its right answer, built here the way the
solutions notebooks build it, and at least one wrong but plausible answer, which the judge
refuses saying what it saw. A typed literal never passes; hints come in steps and never hold
the answer; a wrong kind of answer is feedback, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import labkit
from labkit.errors import InputError
from labkit.lab.exercises import EXERCISES, forget_hints
from labkit.lab.magics import go_cell_module


@pytest.fixture(autouse=True)
def fresh_hints() -> None:
    """Each test starts with every exercise at its first hint, as a fresh kernel does."""
    forget_hints()


def verdict(exercise: str, answer: object) -> labkit.Feedback:
    return labkit.evaluate_exercise(exercise, answer)


def passes(exercise: str, answer: object) -> None:
    feedback = verdict(exercise, answer)
    assert feedback.passed, str(feedback)
    assert str(feedback).startswith(f"✅ {exercise} passed: ")


def refuses(exercise: str, answer: object, says: str) -> None:
    feedback = verdict(exercise, answer)
    assert not feedback.passed, str(feedback)
    assert says in feedback.message, feedback.message
    assert feedback.hint in EXERCISES[exercise].hints


# -- the framework ---------------------------------------------------------------------------

def test_an_unknown_exercise_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"no exercise '9\.9'\nFix: use one the lab has: 01\.1"):
        labkit.evaluate_exercise("9.9", 1)


def test_every_notebook_from_01_has_two_to_four_exercises() -> None:
    per_notebook = {f"{n:02d}": [e for e in EXERCISES if e.startswith(f"{n:02d}.")]
                    for n in range(1, 12)}
    assert all(2 <= len(ids) <= 4 for ids in per_notebook.values()), per_notebook


def test_the_stub_shows_the_question_and_the_nudge() -> None:
    feedback = verdict("03.1", ...)
    assert not feedback.passed and (feedback.step, feedback.steps) == (1, 2)
    assert str(feedback) == (
        f"❌ 03.1 not yet: no answer yet. {EXERCISES['03.1'].asks} Replace the ... with your "
        f"answer and run the cell again.\n   Hint 1 of 2: {EXERCISES['03.1'].hints[0]}")


def test_hints_come_in_steps_the_nudge_then_the_pointer() -> None:
    nudge, pointer = EXERCISES["02.1"].hints
    assert [verdict("02.1", ...).hint, verdict("02.1", 1).hint, verdict("02.1", 2).hint] == \
        [nudge, pointer, pointer]
    assert verdict("02.2", "no such file").hint == EXERCISES["02.2"].hints[0]  # no stub first
    assert "Hint 2 of 2" in str(verdict("02.2", "no such file"))


def test_a_passing_answer_shows_no_hint(workdir: Path) -> None:
    feedback = verdict("01.1", labkit.build_shared(SHAPES + AREA, "shapes_square"))
    assert feedback.passed and not feedback.hint and "Hint" not in str(feedback)


#: The code at the heart of each solution, which no hint may give away.
SPOILERS = (
    "double area_of_square(double side) {", "visibility(\"hidden\")", "((constructor",
    "((destructor", "-z,lazy", "-z lazy", "z,lazy", "-rpath", "$ORIGIN/", "-Bsymbolic",
    "visibility(\"protected\")", "text[len - 1 - i]", ".size = 8", "calloc(", "state->calls",
    "--version-script=", "helper_v2.map", "-DHELPER_V2", "LAB_PLUGIN_ABI_VERSION 2",
    "LAB_CASE_TITLE = 3", "tags=", "[\"api_v2\"]", "trimpath=True", "[]rune", "uuid",
    "raise ValueError", "versions=(2", "dataclasses.replace", "WithPlugin(\"trim\"",
    "WithPlugin(\"reverse\"", "text[::-1]", "json.dumps", "json.loads", "python_plugin(plugin)",
    "fuel=", "max_pages=", "export_name", "RTLD.LAZY | RTLD.GLOBAL", "labkit.build_shared(",
    "labkit.build_go(", "labkit.load_wasm(", "labkit.run_go_host(", "labkit.install_plugin(",
    "reverse = \"", "[project.entry-points",
)


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_no_hint_holds_the_answer(exercise: str) -> None:
    nudge, pointer = EXERCISES[exercise].hints
    for hint in (nudge, pointer):
        assert not [s for s in SPOILERS if s in hint], hint
    assert len(nudge) <= 94, "the nudge fits one line of the stub's output on a slide"
    assert len(EXERCISES[exercise].asks) <= 130, "the question fits two lines of the stub"


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
@pytest.mark.parametrize("literal", [42, "SIGFPE", 8, "musl", {"x-request-id": "1"}],
                         ids=["int", "signal-name", "offset", "problem-kind", "dict"])
def test_a_typed_literal_never_passes(exercise: str, literal: object) -> None:
    feedback = verdict(exercise, literal)
    assert not feedback.passed
    assert feedback.message.startswith("expected "), feedback.message
    assert "could not judge" not in feedback.message


def test_check_prints_the_feedback(capsys: pytest.CaptureFixture[str]) -> None:
    labkit.check("02.1", "SIGFPE")
    out = capsys.readouterr().out
    assert out.startswith("❌ 02.1 not yet: expected your library") and "Hint 1 of 2" in out


def test_a_wrong_kind_of_answer_is_feedback_not_a_traceback(workdir: Path) -> None:
    folder = workdir / "looks_like_a_package"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("this is not TOML [\n")
    feedback = verdict("07.2", folder)
    assert not feedback.passed and feedback.message


# -- 01 shared objects -------------------------------------------------------------------------

SHAPES = r"""
#include <stdlib.h>

int shapes_made = 0;
static double square(double x) { return x * x; }
int count_shapes(void) { return shapes_made; }
double area_of_circle(double r) { shapes_made++; return 3.14159265358979 * square(r); }
const char *units(void) { const char *u = getenv("SHAPES_UNITS"); return u ? u : "cm"; }
"""
AREA = "double area_of_square(double side) { return square(side); }\n"
LIFECYCLE = r"""
#include <stdio.h>
__attribute__((constructor)) static void hello(void) { puts("shapes: loaded"); }
__attribute__((destructor)) static void bye(void) { puts("shapes: unloaded"); }
"""


def test_01_1_area_of_square(workdir: Path) -> None:
    passes("01.1", labkit.build_shared(SHAPES + AREA, "shapes_square"))
    refuses("01.1", labkit.build_shared(SHAPES, "shapes"), "exports no area_of_square")
    leaky = SHAPES.replace("static double square", "double square") + AREA
    refuses("01.1", labkit.build_shared(leaky, "leaky"), "exports square now")
    nine = SHAPES + "double area_of_square(double side) { return 9.0; }\n"
    refuses("01.1", labkit.build_shared(nine, "nine"), "gave [9.0, 9.0], not [9.0, 6.25]")


def test_01_1_a_crashing_answer_is_judged_in_a_child(workdir: Path) -> None:
    crash = SHAPES + "double area_of_square(double s) { return *(volatile double *)0; }\n"
    refuses("01.1", labkit.build_shared(crash, "crashy"), "SIGSEGV")  # this process survives


def test_01_2_shapes_made_hidden(workdir: Path) -> None:
    hidden = SHAPES.replace("int shapes_made", '__attribute__((visibility("hidden"))) int shapes_made')
    passes("01.2", labkit.build_shared(hidden, "shapes_hidden"))
    refuses("01.2", labkit.build_shared(SHAPES, "shapes"), "nm -D still lists shapes_made")
    everything = labkit.build_shared(SHAPES, "shapes_all_hidden", cflags=["-fvisibility=hidden"])
    refuses("01.2", everything, "build the whole of SHAPES, with area_of_circle and count_shapes")


def test_01_3_a_library_that_announces_itself(workdir: Path) -> None:
    passes("01.3", labkit.build_shared(SHAPES + LIFECYCLE, "shapes_life"))
    no_goodbye = LIFECYCLE.replace("__attribute__((destructor)) ", "")
    refuses("01.3", labkit.build_shared(SHAPES + no_goodbye, "shapes_hello"),
            "nothing was printed while dlclose ran")
    called = SHAPES + '#include <stdio.h>\nint hello(void) { return puts("loaded"); }\n'
    refuses("01.3", labkit.build_shared(called, "shapes_called"),
            "nothing was printed while dlopen ran")


# -- 02 dlopen and dlsym -----------------------------------------------------------------------

LAZY = ("int not_yet_written(void);\nint ready(void) { return 1; }\n"
        "int later(void) { return not_yet_written(); }\n")
GET = "int answer_value(void);\nint get(void) { return answer_value(); }\n"
BASE = "int lab_version(void) { return 1; }\nint report(void) { return lab_version(); }\n"


def test_02_1_lazy_only(workdir: Path) -> None:
    passes("02.1", labkit.build_shared(LAZY, "lazy_only", ldflags=["-Wl,-z,lazy"]))
    refuses("02.1", labkit.build_shared(LAZY, "lazy_now", ldflags=["-Wl,-z,now"]),
            "the linker marked it for immediate binding (BIND_NOW")
    fine = LAZY.replace("return not_yet_written();", "return 2;")
    refuses("02.1", labkit.build_shared(fine, "lazy_fine"), "RTLD_NOW accepted it")


def test_02_2_a_plugin_that_ships_its_dependency(workdir: Path) -> None:
    dep = labkit.build_shared("int answer_value(void) { return 42; }", "answer",
                              out_dir="build/shipped/deps")
    passes("02.2", labkit.build_shared(GET, "shipped", libs=[dep], out_dir="build/shipped",
                                       ldflags=["-Wl,-rpath,$ORIGIN/deps"]))
    refuses("02.2", labkit.build_shared(GET, "plain", libs=[dep], out_dir="build/shipped"),
            "carries no search path of its own")
    fixed = f"-Wl,-rpath,{(workdir / 'build/shipped/deps').resolve()}"
    refuses("02.2", labkit.build_shared(GET, "fixed", libs=[dep], out_dir="build/shipped",
                                        ldflags=[fixed]), "a fixed folder of this machine")
    beside = labkit.build_shared("int answer_value(void) { return 42; }", "answer",
                                 out_dir="build/beside")
    refuses("02.2", labkit.build_shared(GET, "beside", libs=[beside], out_dir="build/beside",
                                        ldflags=["-Wl,-rpath,$ORIGIN"]), "sits beside the plugin")


def test_02_2_the_copy_must_find_its_own_dependency(workdir: Path) -> None:
    five = labkit.build_shared("int answer_value(void) { return 5; }", "answer",
                               out_dir="build/five/deps")
    refuses("02.2", labkit.build_shared(GET, "five", libs=[five], out_dir="build/five",
                                        ldflags=["-Wl,-rpath,$ORIGIN/deps"]),
            "get() returned 5, not 42")


def test_02_3_a_library_that_binds_to_itself(workdir: Path) -> None:
    passes("02.3", labkit.build_shared(BASE, "own_version", ldflags=["-Wl,-Bsymbolic"]))
    refuses("02.3", labkit.build_shared(BASE, "base"), "report() answered 2")
    hidden = BASE.replace("int lab_version", '__attribute__((visibility("hidden"))) int lab_version')
    refuses("02.3", labkit.build_shared(hidden, "base_hidden"), "exports no lab_version")


# -- 03 a plugin host --------------------------------------------------------------------------

REVERSE_C = r"""
#include <string.h>
#include "plugin_api.h"

static size_t transform(lab_state *state, const char *text, char *out, size_t capacity) {
    (void)state;
    size_t len = strlen(text);
    for (size_t i = 0; i < len && i + 1 < capacity; i++)
        out[i] = text[len - 1 - i];
    if (capacity > 0)
        out[len < capacity ? len : capacity - 1] = '\0';
    return len;
}

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION, .size = sizeof(lab_plugin),
    .name = "reverse", .description = "reverses text", .transform = transform,
};

const lab_plugin *lab_plugin_entry(void) { return &descriptor; }
"""
COUNTER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "plugin_api.h"

struct lab_state { unsigned long calls; };
static unsigned long everyone;

static lab_state *create(const lab_options *options) {
    (void)options;
    return calloc(1, sizeof(lab_state));
}

static size_t transform(lab_state *state, const char *text, char *out, size_t capacity) {
    unsigned long n = COUNT;
    return (size_t)snprintf(out, capacity, "%lu: %s", n, text);
}

static void destroy(lab_state *state) { free(state); }

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION, .size = sizeof(lab_plugin),
    .name = "counter", .description = "numbers its calls",
    .create = create, .transform = transform, .destroy = destroy,
};

const lab_plugin *lab_plugin_entry(void) { return &descriptor; }
"""


def plugin(source: str, name: str) -> labkit.Artifact:
    return labkit.build_shared(source, name, out_dir=f"build/{name}",
                               cflags=[f"-I{labkit.PLUGINS_C}"])


def test_03_1_a_reversing_plugin(workdir: Path) -> None:
    passes("03.1", plugin(REVERSE_C, "reverse"))
    short = REVERSE_C.replace("    return len;\n}", "    return len < capacity ? len : capacity - 1;\n}")
    refuses("03.1", plugin(short, "reverse_short"),
            "a text of 320 characters gave 255 characters, reversed")
    misspelt = REVERSE_C.replace("*lab_plugin_entry(void)", "*lab_plugin_main(void)")
    refuses("03.1", plugin(misspelt, "reverse_misspelt"), "failed the check 'entry-symbol'")


def test_03_2_a_descriptor_that_says_size_8(workdir: Path) -> None:
    small = REVERSE_C.replace(".size = sizeof(lab_plugin)", ".size = 8")
    passes("03.2", plugin(small, "small"))
    refuses("03.2", plugin(small.replace("LAB_PLUGIN_ABI_VERSION,", "7,"), "small7"),
            "refused it at the check 'abi-version'")
    refuses("03.2", plugin(REVERSE_C, "right_size"), "the host accepted it")


def test_03_3_a_count_per_instance(workdir: Path) -> None:
    passes("03.3", plugin(COUNTER_C.replace("COUNT", "++state->calls"), "counter"))
    refuses("03.3", plugin(COUNTER_C.replace("COUNT", "++everyone"), "counter_global"),
            "the second instance went on from the first's count")


# -- 04 ABI mismatches -------------------------------------------------------------------------

SUPPORT = labkit.PLUGINS_C / "support"


def helper(folder: str, *, release_2: bool, script: Path | None) -> labkit.Artifact:
    flags = [f"-Wl,--version-script={script}"] if script else []
    return labkit.build_shared(SUPPORT / "helper.c", "helper", out_dir=folder,
                               cflags=["-DHELPER_V2"] if release_2 else [],
                               ldflags=[*flags, "-Wl,-soname,libhelper.so"])


def upper_against(name: str, text: str) -> labkit.Artifact:
    folder = Path("build/abi")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.h").write_text(text)
    (folder / f"{name}.c").write_text(f'#define LAB_API_HEADER "{name}.h"\n#include "upper.c"\n')
    return labkit.build_shared(folder / f"{name}.c", out_dir=folder,
                               cflags=[f"-I{labkit.PLUGINS_C}"])


def test_04_1_release_2_of_libhelper(workdir: Path) -> None:
    passes("04.1", helper("build/h2", release_2=True, script=SUPPORT / "helper_v2.map"))
    refuses("04.1", helper("build/hnone", release_2=True, script=None),
            "defines no symbol versions; needs_version asks for LABHELPER_2.0")
    refuses("04.1", helper("build/h1", release_2=False, script=SUPPORT / "helper_v1.map"),
            "defines the symbol versions ['LABHELPER_1.0']")
    only2 = workdir / "only2.map"
    only2.write_text("LABHELPER_2.0 { global: helper_length; helper_shout; local: *; };\n")
    refuses("04.1", helper("build/honly2", release_2=True, script=only2),
            "plugins built against release 1 ask for LABHELPER_1.0")


def test_04_2_a_plugin_that_tells_the_truth(workdir: Path) -> None:
    v2 = (labkit.PLUGINS_C / "plugin_api_v2.h").read_text()
    honest = v2.replace("#define LAB_PLUGIN_ABI_VERSION 1", "#define LAB_PLUGIN_ABI_VERSION 2")
    passes("04.2", upper_against("upper_honest", honest))
    samples = labkit.build_samples("build/plugins")
    refuses("04.2", samples["upper_v2"].artifact, "the v1 host accepted it")
    refuses("04.2", samples["upper"].artifact, "its lab_options has version 1's members")


def test_04_3_a_compatible_new_enumerator(workdir: Path) -> None:
    v1 = (labkit.PLUGINS_C / "plugin_api.h").read_text()
    appended = v1.replace("    LAB_CASE_LOWER = 2\n",
                          "    LAB_CASE_LOWER = 2,\n    LAB_CASE_TITLE = 3\n")
    passes("04.3", upper_against("upper_title", appended))
    inserted = v1.replace("LAB_CASE_UPPER = 1", "LAB_CASE_TITLE = 1,\n    LAB_CASE_UPPER = 2") \
                 .replace("LAB_CASE_LOWER = 2", "LAB_CASE_LOWER = 3")
    refuses("04.3", upper_against("upper_inserted", inserted),
            "finds 2 breaking change(s), the first: [BREAKS] enumerator-changed")
    samples = labkit.build_samples("build/plugins")
    refuses("04.3", samples["upper"].artifact, "no LAB_CASE_TITLE")


# -- 05 Go plugins -----------------------------------------------------------------------------

GO_REVERSE = """package main

import "pluginlab/api"

var Greeting = "hello"

func Greet(name string) string { return Greeting + ", " + name }

type reverse struct{}

func (reverse) Transform(text string) string {
\tr := []rune(text)
\tfor i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
\t\tr[i], r[j] = r[j], r[i]
\t}
\treturn string(r)
}

var Plugin api.Transformer = reverse{}
"""


def test_05_1_a_host_for_greeter_v2(workdir: Path) -> None:
    passes("05.1", labkit.build_go("host", "host_v2", tags=["api_v2"]))
    refuses("05.1", labkit.build_go("host", "host"),
            "said: plugin was built with a different version of package pluginlab/api")
    refuses("05.1", labkit.build_go("greeter", "greeter_v2", mode="plugin", tags=["api_v2"]),
            "is a shared object (a Go plugin): expected your host")


def test_05_2_a_host_for_greeter_trim(workdir: Path) -> None:
    passes("05.2", labkit.build_go("host", "host_trim", trimpath=True))
    refuses("05.2", labkit.build_go("host", "host_v2", tags=["api_v2"]),
            "different version of package")


def test_05_the_go_judges_run_the_host_they_are_given(workdir: Path) -> None:
    go = labkit.build_go_samples("build/go", ["host", "greeter_v2"])
    refuses("05.1", labkit.run_go_host(go["host"], go["greeter_v2"]),
            "expected your host (what labkit.build_go returned); got an Outcome")


def test_05_3_a_go_plugin_that_reverses(workdir: Path) -> None:
    def build(name: str, source: str) -> labkit.Artifact:
        return labkit.build_go(".", name, mode="plugin", module=go_cell_module(name, source),
                               out_dir="build")

    passes("05.3", build("gorev", GO_REVERSE))
    refuses("05.3", build("gobytes", GO_REVERSE.replace("[]rune(text)", "[]byte(text)")),
            "Transform('héllo, wörld') gave")
    silent = GO_REVERSE.replace('var Greeting = "hello"\n', "").replace(
        'func Greet(name string) string { return Greeting + ", " + name }\n', "")
    refuses("05.3", build("gosilent", silent), "symbol Greeting not found")


# -- 06 RPC plugins ----------------------------------------------------------------------------

def script(workdir: Path, name: str, body: str) -> Path:
    path = workdir / f"{name}.py"
    path.write_text(f"import json, os, uuid\nfrom labkit.rpc import LAB_HANDSHAKE, serve\n{body}")
    return path


def test_06_1_a_request_id(workdir: Path) -> None:
    passes("06.1", script(workdir, "ids",
                          "serve(lambda h: {**h, 'x-request-id': uuid.uuid4().hex})\n"))
    refuses("06.1", script(workdir, "same", "serve(lambda h: {**h, 'x-request-id': '42'})\n"),
            "x-request-id was ['42', '42', '42'] over 3 calls")
    refuses("06.1", script(workdir, "lost",
                           "serve(lambda h: {'x-request-id': uuid.uuid4().hex})\n"),
            "lost or changed the header 'host'")
    refuses("06.1", script(workdir, "broken", "serve(\n"), "a host could not start it")


def test_06_2_an_error_not_a_crash(workdir: Path) -> None:
    strict = ("def transform(h):\n    if 'host' not in h:\n        raise ValueError('no host')\n"
              "    return dict(h)\nserve(transform)\n")
    passes("06.2", script(workdir, "strict", strict))
    dies = strict.replace("raise ValueError('no host')", "os._exit(3)")
    refuses("06.2", script(workdir, "dies", dies), "killed the plugin process")
    refuses("06.2", labkit.PLUGINS_PY / "transformer_plugin.py", "to a request without host")


def test_06_3_app_protocol_version_2(workdir: Path) -> None:
    v2 = "import dataclasses\nserve(dict, handshake=dataclasses.replace(LAB_HANDSHAKE, versions=(2,)))\n"
    passes("06.3", script(workdir, "v2", v2))
    refuses("06.3", labkit.PLUGINS_PY / "transformer_plugin.py",
            "a host offering only version 1 started it")
    both = v2.replace("versions=(2,)", "versions=(1, 2)")
    refuses("06.3", script(workdir, "both", both), "a host offering only version 1 started it")


# -- 07 compile-time plugins -------------------------------------------------------------------

TWICE = """package main

import (
\t"os"

\t"pluginlab/registry/framework"
\t"pluginlab/registry/plugins/trim"
)

func main() {
\tframework.Main(os.Args[1:], framework.WithPlugin("trim", func() framework.Plugin { return trim.New() }))
}
"""
REVERSER = """package main

import (
\t"os"

\t"pluginlab/registry/framework"
)

type reverse struct{}

func (reverse) Name() string { return "reverse" }

func (reverse) Transform(text string) string {
\tr := []rune(text)
\tfor i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
\t\tr[i], r[j] = r[j], r[i]
\t}
\treturn string(r)
}

func main() {
\tframework.Main(os.Args[1:], framework.WithPlugin("reverse", func() framework.Plugin { return reverse{} }))
}
"""


def program(name: str, source: str) -> labkit.Artifact:
    return labkit.build_go(".", name, module=go_cell_module(name, source), out_dir="build")


def test_07_1_a_second_trim(workdir: Path) -> None:
    passes("07.1", program("twice", TWICE))
    refuses("07.1", labkit.build_go("registry/cmd/stock", "stock"),
            "your host printed 'compiled-in plugins: lower, trim")


def test_07_2_a_python_package_with_an_entry_point(workdir: Path) -> None:
    def package(name: str, entry: str, body: str) -> Path:
        copy = workdir / name
        (copy / "src" / name).mkdir(parents=True)
        (copy / "src" / name / "__init__.py").write_text(body)
        (copy / "pyproject.toml").write_text(
            (labkit.PLUGINS_PY / "labplug_shout" / "pyproject.toml").read_text()
            .replace('name = "labplug-shout"', f'name = "{name}"')
            .replace('shout = "labplug_shout:Shout"', f'{entry} = "{name}:Reverse"')
            .replace('shout = "labplug_shout.hooks"\n', ""))
        return copy

    body = "class Reverse:\n    def transform(self, text):\n        return text[::-1]\n"
    passes("07.2", package("labplug_reverse", "reverse", body))
    refuses("07.2", package("labplug_backwards", "backwards", body),
            "declares no entry point 'reverse' in the group 'pluginlab.transformers' "
            "(it declares ['backwards'])")
    refuses("07.2", package("labplug_upper", "reverse", body.replace("[::-1]", ".upper()")),
            "reverse's transform('hello, plugins') gave 'HELLO, PLUGINS'")
    assert "reverse" not in labkit.transformers()  # installed elsewhere, in a child


def test_07_3_an_out_of_tree_reverse(workdir: Path) -> None:
    passes("07.3", program("reverser", REVERSER))
    refuses("07.3", labkit.build_go("registry/cmd/custom", "custom"), 'unknown plugin "reverse"')
    refuses("07.3", program("bytewise", REVERSER.replace("[]rune(text)", "[]byte(text)")),
            "reverse turned 'héllo, wörld' into")


# -- 08 choosing a plugin model ----------------------------------------------------------------

BATCH_PLUGIN = """
def one(h):
    return {**h, "x-transformed-by": "batch"}


def transform(h):
    if set(h) == {"batch"}:
        return {"batch": json.dumps([one(item) for item in json.loads(h["batch"])])}
    return one(h)


serve(transform)
"""
HOST = """import sys

import labkit

plugin, texts = sys.argv[1], sys.argv[2:]
with labkit.PluginClient(labkit.python_plugin(plugin)) as client:
    for text in texts:
        print(client.transform({"text": text})["text"])
"""


def test_08_1_a_batch_per_request(workdir: Path) -> None:
    passes("08.1", script(workdir, "batch", BATCH_PLUGIN))
    refuses("08.1", labkit.PLUGINS_PY / "transformer_plugin.py",
            "item 0 of the batch's answer is {'host': 'h0.example', 'x-item': '0'}")
    slow = BATCH_PLUGIN.replace("def one(h):\n", "def one(h):\n    import time; time.sleep(0.002)\n")
    refuses("08.1", script(workdir, "slow", slow), "not 5 times less")


def test_08_2_a_host_that_starts_its_plugin_once(workdir: Path) -> None:
    (workdir / "once.py").write_text(HOST)
    passes("08.2", workdir / "once.py")
    each = HOST.replace("with labkit.PluginClient(labkit.python_plugin(plugin)) as client:\n"
                        "    for text in texts:\n",
                        "for text in texts:\n"
                        "    with labkit.PluginClient(labkit.python_plugin(plugin)) as client:\n")
    (workdir / "each.py").write_text(each)
    refuses("08.2", workdir / "each.py", "started the plugin 8 times for 8 texts")
    (workdir / "upper.py").write_text(HOST.replace('["text"])', '["text"].upper())'))
    refuses("08.2", workdir / "upper.py", "your host printed ['AHPLA!'")


# -- 09 WebAssembly plugins --------------------------------------------------------------------

WASM_REVERSE = r"""
#define EXPORT(name) __attribute__((export_name(#name)))

static char bytes[4096];

EXPORT(buffer) char *buffer(void) { return bytes; }
EXPORT(capacity) int capacity(void) { return (int)sizeof bytes; }
EXPORT(reverse) int reverse(int len) {
    if (len < 0 || len > (int)sizeof bytes) return -1;
    for (int i = 0, j = len - 1; i < j; i++, j--) {
        char c = bytes[i]; bytes[i] = bytes[j]; bytes[j] = c;
    }
    return len;
}
"""


def test_09_1_a_fuel_budget(workdir: Path) -> None:
    built = labkit.build_wasm_sample()
    passes("09.1", labkit.load_wasm(built["wasm"], fuel=20_000))
    refuses("09.1", labkit.load_wasm(built["wasm"], fuel=600),
            "600 fuel is too little for wasm_shout of 40 characters")
    refuses("09.1", labkit.load_wasm(built["wasm"]), "loaded without fuel")


def test_09_2_a_wasm_plugin_that_reverses(workdir: Path) -> None:
    wasm = "wasm32-freestanding"
    passes("09.2", labkit.build_shared(WASM_REVERSE, "reverse", target=wasm))
    unchecked = WASM_REVERSE.replace("len > (int)sizeof bytes", "len > 100000")
    refuses("09.2", labkit.build_shared(unchecked, "unchecked", target=wasm),
            "reverse(4097) returned 4097, not -1")
    refuses("09.2", labkit.build_shared(WASM_REVERSE.replace("export_name(#name)",
                                                             'visibility("default")'), "native"),
            "is not a WebAssembly module wasmtime accepts")
    refuses("09.2", labkit.build_wasm_sample()["wasm"], "no reverse")


def test_09_3_a_memory_limit_for_the_extism_plugin(workdir: Path) -> None:
    built = labkit.build_extism_sample()
    hosts = {"next_number": lambda text: b"1"}
    passes("09.3", labkit.load_extism(built, host_functions=hosts, max_pages=192))
    refuses("09.3", labkit.load_extism(built, host_functions=hosts, max_pages=128),
            "under a limit of 128 pages (8 MiB to grow by), hog of 8 MiB was refused")
    refuses("09.3", labkit.load_extism(built, host_functions=hosts, max_pages=512),
            "under a limit of 512 pages (32 MiB to grow by), hog of 16 MiB was allocated too")
    refuses("09.3", labkit.load_extism(built, host_functions=hosts), "without a memory limit")
    refuses("09.3", labkit.load_wasm(labkit.build_wasm_sample()["wasm"]),
            "expected what labkit.load_extism returned; got a WasmPlugin")


def test_the_judges_leave_nothing_behind(workdir: Path) -> None:
    """Judges build in temporary folders of their own: the learner's folder stays as it was."""
    shapes = labkit.build_shared(SHAPES + AREA, "shapes_square")
    host = labkit.build_go("host", "host_trim", trimpath=True)
    before = sorted(str(p) for p in workdir.rglob("*"))
    passes("01.1", shapes)
    passes("05.2", host)
    assert sorted(str(p) for p in workdir.rglob("*")) == before


def test_a_judged_plugin_is_gone_when_the_judge_returns(workdir: Path) -> None:
    passes("06.1", script(workdir, "ids",
                          "serve(lambda h: {**h, 'x-request-id': uuid.uuid4().hex})\n"))
    assert labkit.rpc.live_plugins() == []


# -- 10 The loader up close -------------------------------------------------------------------

TEXT_RELEASE_3 = r"""
static int bytes(const char *t) { int n = 0; while (t[n]) n++; return n; }
int text_length_bytes(const char *t) { return bytes(t); }
int text_length_chars(const char *t) { int n = 0; for (; *t; t++) n += (*t & 0xC0) != 0x80; return n; }
int text_length_words(const char *t) {
    int n = 0, in = 0;
    for (; *t; t++) { if (*t == ' ') in = 0; else if (!in) { in = 1; n++; } }
    return n;
}
__asm__(".symver text_length_bytes, text_length@LAB_1.0");
__asm__(".symver text_length_chars, text_length@LAB_2.0");
__asm__(".symver text_length_words, text_length@@LAB_3.0");
"""
TEXT_MAP_3 = ("LAB_1.0 { global: text_length; local: *; };\n"
              "LAB_2.0 { global: text_length; } LAB_1.0;\nLAB_3.0 { global: text_length; } LAB_2.0;\n")


def test_10_1_a_third_release_of_libtext(workdir: Path) -> None:
    script = workdir / "text_v3.map"
    script.write_text(TEXT_MAP_3)
    flags = [f"-Wl,--version-script={script}"]
    passes("10.1", labkit.build_shared(TEXT_RELEASE_3, "text", ldflags=flags, out_dir="right"))
    release_2 = labkit.build_shared(labkit.PLUGINS_C / "loader" / "text_length.c", "text",
                                    ldflags=[f"-Wl,--version-script="
                                             f"{labkit.PLUGINS_C / 'loader' / 'text_v2.map'}"],
                                    out_dir="two")
    refuses("10.1", release_2, "no LAB_3.0")
    words_at_2 = TEXT_RELEASE_3.replace("text_length_chars, text_length@LAB_2.0",
                                        "text_length_words, text_length@LAB_2.0")
    refuses("10.1", labkit.build_shared(words_at_2.replace(
        "text_length_words, text_length@@LAB_3.0", "text_length_chars, text_length@@LAB_3.0"),
        "text", ldflags=flags, out_dir="swapped"),
        "a program built against release 2 got text_length@LAB_2.0 and 2")


def test_10_2_a_ticker_that_can_be_unloaded(workdir: Path) -> None:
    solution = (labkit.LAB_ROOT / "notebooks" / "solutions" /
                "10-loader-up-close-solutions.ipynb")
    cells = [c for c in json.loads(solution.read_text())["cells"] if c["cell_type"] == "code"]
    ticker = "".join(cells[2]["source"]).split('r"""', 1)[1].rsplit('"""', 1)[0]
    passes("10.2", labkit.build_shared(ticker, "ticker", libs=["pthread"]))
    original = labkit.PLUGINS_C / "loader" / "lingering.c"
    refuses("10.2", labkit.build_shared(original, libs=["pthread"]),
            "after dlclose: the child was killed by SIGSEGV")
    refuses("10.2", labkit.build_shared(original, "pinned", libs=["pthread"],
                                        ldflags=["-Wl,-z,nodelete"]), "still mapped")
    refuses("10.2", labkit.build_shared("int start_ticker(void) { return 0; }\n", "idle"),
            "started no thread")


# -- 11 C++ plugins ---------------------------------------------------------------------------

REVERSE_CPP = r"""
#include <algorithm>
#include "transformer.hpp"
namespace {
struct Reverse final : Transformer {
    const char *name() const override { return "reverse"; }
    const char *greeting() const override { return "hi"; }
    int transform(char *text, int size) override { std::reverse(text, text + size); return size; }
};
}
extern "C" Transformer *lab_create(void) { return new Reverse; }
extern "C" void lab_destroy(Transformer *transformer) { delete transformer; }
"""


def test_11_1_a_cpp_plugin_that_reverses(workdir: Path) -> None:
    include = [f"-I{labkit.PLUGINS_CPP}"]
    passes("11.1", labkit.build_shared(REVERSE_CPP, "reverse", language="c++", cflags=include))
    refuses("11.1", labkit.build_shared(labkit.PLUGINS_CPP / "upper.cpp"),
            "the host printed name: 'upper', not 'reverse'")
    mangled = REVERSE_CPP.replace('#include "transformer.hpp"',
                                  "struct Transformer { virtual ~Transformer() = default; virtual "
                                  "const char *name() const = 0; virtual const char *greeting() "
                                  "const = 0; virtual int transform(char *, int) = 0; };")
    refuses("11.1", labkit.build_shared(mangled.replace('extern "C" ', ""), "mangled",
                                        language="c++"), "exports no lab_create")


SAFE_TAIL = r"""
#include <cstdio>
extern "C" int lab_try_work(int x, char *error, int size) noexcept {
    try { return lab_work(x); }
    catch (const std::exception &e) { std::snprintf(error, size, "%s", e.what()); }
    return -1;
}
"""


def test_11_2_no_exception_crosses_into_c(workdir: Path) -> None:
    thrower = (labkit.PLUGINS_CPP / "thrower.cpp").read_text()
    passes("11.2", labkit.build_shared(thrower + SAFE_TAIL, "safe", language="c++"))
    refuses("11.2", labkit.build_shared(labkit.PLUGINS_CPP / "thrower.cpp"),
            "exports no lab_try_work")
    unsafe = thrower + ('extern "C" int lab_try_work(int x, char *error, int size) '
                        "{ (void)error; (void)size; return lab_work(x); }\n")
    refuses("11.2", labkit.build_shared(unsafe, "unsafe", language="c++"), "SIGABRT")
    zero = SAFE_TAIL.replace("return -1;", "return 0;")
    refuses("11.2", labkit.build_shared(thrower + zero, "zero", language="c++"),
            "gave '0 negative input'")
