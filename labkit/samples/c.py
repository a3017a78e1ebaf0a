"""The sample C plugins of ``plugins/c/``, built the way each one needs.

Most samples are one ``.c`` file built into ``lib<id>.so``. Two need a library of the lab's
own, ``plugins/c/support/``: ``needs_lib`` is linked against ``libgone.so``, which is left
out of the plugin folder; ``needs_version`` is linked against release 2 of ``libhelper.so``
(symbol version ``LABHELPER_2.0``) and shipped beside release 1. :func:`build_samples` lays
them out as a plugin folder::

    build/plugins/lib<id>.so        the plugins, what a host discovers
    build/plugins/lib/libhelper.so  release 1, found through RUNPATH $ORIGIN/lib
    build/sdk/                      what the plugins were linked against, not shipped
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build.c import Artifact, build_executable, build_shared
from ..errors import InputError
from ..paths import PLUGINS_C, show

#: The samples in teaching order, each with what ``python -m labkit explain`` says of it
#: (True: it loads) once built by :func:`build_samples`.
SAMPLES = {
    "upper": True,
    "upper_v2": True,
    "no_entry": True,
    "future_abi": True,
    "crasher": True,
    "needs_lib": False,
    "needs_version": False,
}


@dataclass(frozen=True)
class Sample:
    """One built sample: its id, the one line at the top of its source, and the file."""

    id: str
    summary: str
    source: Path
    artifact: Artifact

    @property
    def path(self) -> Path:
        return self.artifact.path

    def __str__(self) -> str:
        return f"{show(self.path)}: {self.summary}"


def summary_line(source: Path) -> str:
    """The one-line description at the top of a sample (``/* name.c: what it is. */``)."""
    first = source.read_text(encoding="utf-8").splitlines()[0]
    text = first.removeprefix("/*").removesuffix("*/").strip()
    return text.split(": ", 1)[1] if ": " in text else text


def build_samples(
    out_dir: str | os.PathLike[str] = "build/plugins",
    source_dir: str | os.PathLike[str] = PLUGINS_C,
) -> dict[str, Sample]:
    """Build every sample of ``source_dir`` into the plugin folder ``out_dir``.

    Returns the samples by id, in teaching order. Builds are cached, so a second call
    costs a few milliseconds. Raises :class:`~labkit.errors.BuildError` if one fails.
    """
    src = Path(source_dir)
    if not (src / "plugin_api.h").is_file():
        raise InputError(
            f"{show(src)!r} holds no plugin_api.h, so it is not the lab's plugins/c folder",
            fix="pass source_dir=labkit.PLUGINS_C", path=src,
        )
    out = Path(out_dir)
    sdk = out.parent / "sdk"
    support = src / "support"

    def helper(release: int, where: Path) -> Artifact:
        return build_shared(
            support / "helper.c", "helper", out_dir=where,
            cflags=["-DHELPER_V2"] if release == 2 else [],
            ldflags=[f"-Wl,--version-script={support / f'helper_v{release}.map'}",
                     "-Wl,-soname,libhelper.so"],
        )

    helper(1, out / "lib")
    newer = helper(2, sdk)
    gone = build_shared(support / "gone.c", out_dir=sdk)
    options: dict[str, dict[str, Any]] = {
        "needs_lib": {"libs": [gone.path]},
        "needs_version": {"libs": [newer.path],
                          # RUNPATH, not RPATH, whatever the linker's default: an RPATH would
                          # be searched before LD_LIBRARY_PATH (notebook 04 relies on the order)
                          "ldflags": ["-Wl,-rpath,$ORIGIN/lib", "-Wl,--enable-new-dtags"]},
    }
    samples = {}
    for sample_id in SAMPLES:
        source = src / f"{sample_id}.c"
        artifact = build_shared(source, out_dir=out, **options.get(sample_id, {}))
        samples[sample_id] = Sample(sample_id, summary_line(source), source, artifact)
    return samples


#: The flags of an AddressSanitizer build: every access checked, frames kept for the report.
ASAN_FLAGS = ("-fsanitize=address", "-fno-omit-frame-pointer")


def build_asan_samples(out_dir: str | os.PathLike[str] = "build/asan") -> dict[str, Artifact]:
    """``hosts/options_host.c`` and the samples ``upper`` and ``upper_v2``, each built with
    AddressSanitizer into ``out_dir`` (``host``, ``upper``, ``upper_v2``).

    Run a plugin with ``run_program([host, plugin], env={"ASAN_OPTIONS": "detect_leaks=0"})``
    and read the report with :func:`labkit.asan_report`. (LeakSanitizer is off because it
    needs ptrace, which containers often forbid, and because leaks are not the lesson.)"""
    out = Path(out_dir)
    flags = [*ASAN_FLAGS, f"-I{PLUGINS_C}"]
    built = {"host": build_executable(PLUGINS_C / "hosts" / "options_host.c", out_dir=out,
                                      cflags=flags, ldflags=["-fsanitize=address"])}
    for sample_id in ("upper", "upper_v2"):
        built[sample_id] = build_shared(PLUGINS_C / f"{sample_id}.c", out_dir=out,
                                        cflags=flags, ldflags=["-fsanitize=address"])
    return built
