"""deploy/z2jh/config.yaml, checked the way the Zero to JupyterHub chart checks values: merged
onto the chart's defaults and validated against its schema (vendored from chart 4.4.0)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from labkit.hub.z2jh import CHART, load, problems


def test_the_vendored_chart_files_are_the_ones_named_in_source_md() -> None:
    source = (CHART / "SOURCE.md").read_text()
    for name in ("values.schema.yaml", "values.yaml"):
        assert hashlib.sha256((CHART / name).read_bytes()).hexdigest() in source, name


def test_the_config_is_valid_for_the_chart() -> None:
    assert problems(load()) == []


def test_the_config_runs_the_lab_image_with_limits_culling_and_nbgitpuller() -> None:
    values = load()
    single = values["singleuser"]
    assert isinstance(single["image"]["tag"], str)  # a number would be re-typed by YAML
    assert single["memory"]["limit"] and single["cpu"]["limit"]
    assert values["cull"]["enabled"] is True
    pull = single["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert pull[:2] == ["sh", "-c"] and pull[2].startswith("gitpuller ")
    assert pull[2].endswith("|| true")  # a failed postStart hook would kill the pod
    # secrets stay out of git: no password key in any configured class
    assert not [key for section in values["hub"]["config"].values() for key in section
                if "password" in key.lower()]
    assert single["extraEnv"]["PYTHONPATH"] == "/home/jovyan/plugin-lab"


def _broken(change: Any) -> dict[str, Any]:
    values = copy.deepcopy(load())
    change(values)
    return values


@pytest.mark.parametrize(("change", "said"), [
    (lambda v: v["singleuser"]["memory"].update(limt="1G"), "'limt' was unexpected"),
    (lambda v: v["cull"].update(timeout="1h"), "is not of type 'integer'"),
    (lambda v: v["hub"]["config"].update(sharedPassword={}), "sharedPassword"),
    (lambda v: v["singleuser"]["lifecycleHooks"].update(postStop={}), "postStop"),
], ids=["misspelt key", "timeout as text", "lower-case config class", "unknown hook"])
def test_the_check_refuses_what_the_chart_refuses(change: Any, said: str) -> None:
    found = problems(_broken(change))
    assert found and any(said in problem for problem in found), found
