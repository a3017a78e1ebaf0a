"""The wasm sample of ``plugins/wasm/``: one C file, built for wasm and natively to compare."""

from __future__ import annotations

import os

from ..build.c import Artifact, build_shared
from ..paths import PLUGINS_WASM

#: The sample wasm plugin: add, shout (bytes in linear memory), and bugs: peek, poke, spin.
WASM_PLUGIN = PLUGINS_WASM / "transform.c"


def build_wasm_sample(out_dir: str | os.PathLike[str] = "build/wasm") -> dict[str, Artifact]:
    """``plugins/wasm/transform.c`` built twice: ``"wasm"`` (zig cc, wasm32-freestanding) and
    ``"native"`` (cc, a shared object), to compare the two."""
    return {
        "wasm": build_shared(WASM_PLUGIN, "transform", target="wasm32-freestanding",
                             out_dir=out_dir),
        "native": build_shared(WASM_PLUGIN, "transform", out_dir=out_dir),
    }
