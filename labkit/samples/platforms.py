"""Notebook 03's plugin interface on three platforms: ``plugins/c/upper.c`` and
``needs_lib.c`` built for Linux (cc), Windows (zig, ``x86_64-windows-gnu``) and macOS (zig,
``aarch64-macos`` and ``x86_64-macos``), and read side by side.

:func:`build_platform_samples` lays each platform out as a plugin folder, the dependency
``gone`` (``plugins/c/support/gone.c``) left out as in notebook 03, so ``explain`` has a
missing library to report on each::

    build/platforms/<platform>/           upper and needs_lib, what a host would load
    build/platforms/<platform>/sdk/       gone, what needs_lib was linked against

On macOS ``gone`` is installed as ``@rpath/libgone.dylib``, the usual name of a library
meant to ship inside an application or beside a plugin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..build.c import Artifact, build_shared
from ..inspect.elf import read_elf
from ..inspect.foreign import PeInfo, read_foreign
from ..paths import PLUGINS_C, show

if TYPE_CHECKING:
    import pandas

#: Each platform of the lesson: its folder name and the zig target (None: this machine's cc).
PLATFORMS = {
    "linux": None,
    "windows": "x86_64-windows-gnu",
    "macos-arm64": "aarch64-macos",
    "macos-x86_64": "x86_64-macos",
}
#: The install name of the dependency on macOS: found through the plugin's LC_RPATH.
GONE_INSTALL_NAME = "@rpath/libgone.dylib"


@dataclass(frozen=True)
class PlatformBuild:
    """One platform's builds: the plugins ``upper`` and ``needs_lib``, and ``gone``, the
    library ``needs_lib`` was linked against (in ``sdk/``, not shipped)."""

    platform: str
    target: str | None
    upper: Artifact
    needs_lib: Artifact
    gone: Artifact

    def __str__(self) -> str:
        return (f"{self.platform:<13} {show(self.upper.path)}, {show(self.needs_lib.path)} "
                f"(target {self.target or 'this machine'})")


def gone_options(target: str | None) -> dict[str, list[str]]:
    """How ``gone`` is built for ``target``: with an ``@rpath`` install name on macOS."""
    if target is not None and target.endswith("-macos"):
        return {"ldflags": [f"-Wl,-install_name,{GONE_INSTALL_NAME}"]}
    return {}


def build_platform_samples(
    out_dir: str | os.PathLike[str] = "build/platforms",
) -> dict[str, PlatformBuild]:
    """Build ``upper.c`` and ``needs_lib.c`` for every platform of :data:`PLATFORMS` into
    ``out_dir/<platform>``, each with ``gone`` in ``sdk/`` beside. Cached like every build."""
    built = {}
    for platform, target in PLATFORMS.items():
        folder = Path(out_dir) / platform
        gone = build_shared(PLUGINS_C / "support" / "gone.c", out_dir=folder / "sdk",
                            target=target, **gone_options(target))  # type: ignore[arg-type]
        upper = build_shared(PLUGINS_C / "upper.c", out_dir=folder, target=target)
        needs = build_shared(PLUGINS_C / "needs_lib.c", out_dir=folder, target=target,
                             libs=[gone.path])
        built[platform] = PlatformBuild(platform, target, upper, needs, gone)
    return built


def side_by_side(paths: dict[str, str | os.PathLike[str]]) -> pandas.DataFrame:
    """One column per file (named by the keys), the rows what each platform's loader reads
    first: the format, the architecture, the plugin's entry point among the exports, how
    many names it exports, the libraries it needs, and where its undefined symbols are
    looked up."""
    import pandas as pd

    columns = {name: _facts(Path(path)) for name, path in paths.items()}
    return pd.DataFrame(columns, index=list(_ROWS))


_ROWS = ("format", "architecture", "exports lab_plugin_entry", "names exported",
         "libraries it needs", "an undefined symbol is looked up")


def _facts(path: Path) -> list[str]:
    with open(path, "rb") as f:
        elf = f.read(4) == b"\x7fELF"
    if elf:
        info = read_elf(path)
        return ["ELF", info.machine, _yes("lab_plugin_entry" in info.exported),
                str(len(info.exported)), ", ".join(info.needed) or "(none)",
                "global scope, then own group"]
    foreign = read_foreign(path)[0]
    if isinstance(foreign, PeInfo):
        return ["PE (DLL)" if foreign.kind == "DLL" else "PE", foreign.machine,
                _yes("lab_plugin_entry" in foreign.exported), str(len(foreign.exported)),
                ", ".join(foreign.dlls), "in the DLL its import names"]
    return [f"Mach-O ({foreign.kind})", foreign.cpu,
            _yes("_lab_plugin_entry" in foreign.exports), str(len(foreign.exports)),
            ", ".join(d.path for d in foreign.dylibs),
            "in its library (+ re-exports)" if foreign.two_level else
            "every loaded image (flat)"]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
