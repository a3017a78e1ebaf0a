"""``python -m labkit warm``: build once what a learner's first cells would wait for.

Binder's postBuild runs it so that, in the image, the first Go build takes seconds and zig
has its C libraries built for every cross target; nothing is fetched while notebooks run.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from .build import build_shared
from .constants import ZIG_TARGETS
from .samples import build_samples
from .toolchain import find_go

_C_PROBE = "#include <stdio.h>\nint warm(void) { return puts(\"warm\"); }\n"
_WASM_PROBE = "int warm(int x) { return 2 * x; }\n"  # wasm32-freestanding has no libc
_GO_MAIN = 'package main\n\nimport "C"\nimport "fmt"\n\nfunc main() { fmt.Println("warm") }\n'
_GO_PLUGIN = 'package main\n\nimport "fmt"\n\nfunc Hello() { fmt.Println("warm") }\n'


def warm(log: bool = True) -> None:
    """Build the C probe natively and for every zig target, the sample C plugins, then a
    cgo program and a ``-buildmode=plugin`` module so the Go build cache holds the runtime
    in both forms."""
    def say(message: str) -> None:
        if log:
            print(message, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for target in (None, *ZIG_TARGETS):
            start = time.monotonic()
            wasm = target is not None and target.startswith("wasm32")
            build_shared(_WASM_PROBE if wasm else _C_PROBE, "warm", target=target, out_dir=tmp)
            say(f"C for {target or 'this machine'}: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        build_samples(Path(tmp) / "plugins")
        say(f"the sample plugins of plugins/c: {time.monotonic() - start:.1f} s")
        go = find_go()
        work = Path(tmp) / "gowarm"
        work.mkdir()
        (work / "go.mod").write_text("module warm\n\ngo 1.21\n")
        for mode, source in (("exe", _GO_MAIN), ("plugin", _GO_PLUGIN)):
            (work / "main.go").write_text(source)
            start = time.monotonic()
            subprocess.run([*go.command, "build", f"-buildmode={mode}", "-o", f"out-{mode}", "."],
                           cwd=work, check=True, timeout=900)
            say(f"Go -buildmode={mode}: {time.monotonic() - start:.1f} s")
