"""The exercise judges: wrong answers get feedback and a hint, never a traceback. (Right
answers are the solutions notebooks, which CI runs.)"""

from __future__ import annotations

import pytest

import labkit
from labkit.errors import InputError


def test_an_unknown_exercise_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"no exercise '9\.9'; the lab has 01\.1"):
        labkit.evaluate_exercise("9.9", 1)


def test_the_stub_answer_gets_the_question_and_a_hint() -> None:
    feedback = labkit.evaluate_exercise("03.1", ...)
    assert not feedback.passed
    assert str(feedback).startswith("❌ 03.1 not yet: no answer yet. What does upper.transform")
    assert "Hint: host.load('upper'" in str(feedback)


@pytest.mark.parametrize(("exercise", "answer", "says"), [
    ("01.1", 42, "could not judge a int: TypeError: expected what labkit.build_shared returned"),
    ("02.1", "SIGSEGV", "ended with 'SIGSEGV', not the signal of an integer division"),
    ("03.1", "ABIABI", "'ABIABI' is not what upper gives"),
    ("04.1", 4, "4 is not the offset DWARF gives for repeat in upper_v2"),
    ("04.2", "missing-interpreter", "'missing-interpreter' is not the kind"),
    ("06.1", {"x-plugin-lang": "python"}, "no x-request-id among ['x-plugin-lang']"),
    ("06.2", "exited with status 0 after Shutdown", "close() said 'exited with status 0"),
    ("07.2", {"shout": object()}, "no entry point 'reverse' in the group; found ['shout']"),
], ids=lambda v: v if isinstance(v, str) and "." in v and len(v) == 4 else "")
def test_wrong_answers_say_what_is_wrong(exercise: str, answer: object, says: str) -> None:
    feedback = labkit.evaluate_exercise(exercise, answer)
    assert not feedback.passed and says in feedback.message
    assert feedback.hint


def test_a_library_that_exports_square_fails_01_1(workdir: object) -> None:
    leaky = labkit.build_shared(
        "double square(double x) { return x * x; }\n"
        "double area_of_square(double s) { return square(s); }\n", "leaky")
    feedback = labkit.evaluate_exercise("01.1", leaky)
    assert not feedback.passed and "square is exported now" in feedback.message


def test_a_crashing_answer_to_01_1_is_judged_in_a_child(workdir: object) -> None:
    crash = labkit.build_shared(
        "double area_of_square(double s) { return *(volatile double *)0; }\n", "crashy")
    feedback = labkit.evaluate_exercise("01.1", crash)  # the test process survives
    assert not feedback.passed and "SIGSEGV" in feedback.message


def test_check_prints_the_feedback(capsys: pytest.CaptureFixture[str]) -> None:
    labkit.check("02.1", "SIGFPE")
    assert capsys.readouterr().out.startswith("✅ 02.1 passed: integer division by zero")


def test_the_go_judges_want_the_right_plugin_not_just_a_working_host(
    tmp_path: object,
) -> None:
    go = labkit.build_go_samples(f"{tmp_path}/go", ["host", "greeter", "greeter_v2"])
    plain = labkit.run_go_host(go["host"], go["greeter"])
    assert plain.ok
    assert not labkit.evaluate_exercise("05.1", plain).passed
    assert not labkit.evaluate_exercise("05.2", plain).passed
    host_v2 = labkit.build_go("host", "host_v2", tags=["api_v2"], out_dir=f"{tmp_path}/go")
    assert labkit.evaluate_exercise("05.1", labkit.run_go_host(host_v2, go["greeter_v2"])).passed
