"""Checking Zero to JupyterHub values (``deploy/z2jh/config.yaml``) the way the chart does:
merged onto the chart's own defaults, then validated against the chart's JSON schema (both
vendored from the chart's tag in ``deploy/z2jh/chart-<version>/``). No cluster is needed, and
none is here: this checks the values' names and types, not what Kubernetes makes of them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..paths import LAB_ROOT

CHART = LAB_ROOT / "deploy" / "z2jh" / "chart-4.4.0"
CONFIG = LAB_ROOT / "deploy" / "z2jh" / "config.yaml"


def merged(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` over ``defaults``, key by key, as helm merges a values file."""
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def problems(values: dict[str, Any], chart: Path = CHART) -> list[str]:
    """What the chart's schema says of ``values``: ``path: message`` each, [] when valid."""
    import jsonschema
    import yaml

    schema = yaml.safe_load((chart / "values.schema.yaml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(merged(defaults, values)), key=lambda e: list(e.path))
    return [f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors]


def load(path: Path = CONFIG) -> dict[str, Any]:
    import yaml

    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}
