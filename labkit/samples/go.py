"""The Go samples of ``plugins/go/``, built in every variant notebook 05 compares.

One host program and one plugin, each built several ways, so that every failure of Go's
``plugin`` package can be reproduced from the same source::

    build/go/host             the host, as it should be built
    build/go/host_nocgo       the host with CGO_ENABLED=0 ("plugin: not implemented")
    build/go/host_musl        the host built for musl (Alpine) with zig cc
    build/go/greeter.so       the plugin, as it should be built
    build/go/greeter_v2.so    the plugin against release 1.1 of package api (-tags api_v2)
    build/go/greeter_trim.so  the plugin built with -trimpath, the host without
    build/go/greeter_go126.so the plugin built by another Go release
    build/go/impostor.so      a plugin whose exported names have the wrong types
    build/go/libshout.so      a C-callable Go library (-buildmode=c-shared) and libshout.h

:func:`run_go_host` runs the host on plugins as a child process and :func:`host_report`
says in a few stable lines how it went.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build.c import Artifact
from ..build.go import build_go
from ..isolate import Outcome, run_program
from ..paths import tidy

#: An older Go release, fetched from the Go module proxy, to show a toolchain mismatch.
GO_OTHER_TOOLCHAIN = "go1.26.0"


@dataclass(frozen=True)
class GoSample:
    """How one variant is built: the package, the options, and what it demonstrates."""

    package: str
    options: Mapping[str, Any]
    summary: str


#: Every variant, by output name, in teaching order.
GO_SAMPLES = {
    "host": GoSample("host", {}, "the host, built as it should be"),
    "greeter": GoSample("greeter", {"mode": "plugin"}, "the plugin, built as it should be"),
    "impostor": GoSample("impostor", {"mode": "plugin"},
                         "exports Greeting, Greet and Plugin with the wrong types"),
    "greeter_v2": GoSample("greeter", {"mode": "plugin", "tags": ["api_v2"]},
                           "the plugin against release 1.1 of package api"),
    "greeter_trim": GoSample("greeter", {"mode": "plugin", "trimpath": True},
                             "the plugin built with -trimpath"),
    "greeter_noisy": GoSample("greeter", {"mode": "plugin", "tags": ["noisy"]},
                              "the plugin with an init that prints (-tags noisy)"),
    "greeter_noisy_v2": GoSample("greeter", {"mode": "plugin", "tags": ["noisy", "api_v2"]},
                                 "the printing plugin against release 1.1 of package api"),
    "greeter_files": GoSample("greeter", {"mode": "plugin", "as_files": True},
                              "the plugin built from its files: plugin path plugin/unnamed-HASH"),
    "greeter_go126": GoSample("greeter", {"mode": "plugin", "toolchain": GO_OTHER_TOOLCHAIN},
                              f"the plugin built by {GO_OTHER_TOOLCHAIN}"),
    "host_nocgo": GoSample("host", {"cgo": False}, "the host built with CGO_ENABLED=0"),
    "host_musl": GoSample("host", {"target": "x86_64-linux-musl"},
                          "the host built for musl libc (Alpine)"),
    "shout": GoSample("cshared", {"mode": "c-shared"},
                      "a C-callable Go library (-buildmode=c-shared)"),
}


def build_go_samples(
    out_dir: str | os.PathLike[str] = "build/go", names: list[str] | None = None
) -> dict[str, Artifact]:
    """Build the variants (all, or ``names``) into ``out_dir``; cached, so cheap to repeat."""
    chosen = list(GO_SAMPLES) if names is None else names
    unknown = [n for n in chosen if n not in GO_SAMPLES]
    if unknown:
        from ..errors import InputError

        raise InputError(f"no Go sample {unknown[0]!r}",
                         fix=f"use one of the samples: {', '.join(GO_SAMPLES)}")
    return {
        name: build_go(GO_SAMPLES[name].package, name, out_dir=out_dir,
                       **GO_SAMPLES[name].options)
        for name in chosen
    }


def run_go_host(
    host: str | os.PathLike[str], *plugins: str | os.PathLike[str], timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Run the Go host on ``plugins`` in a child process (a crash or a fatal error of the
    Go runtime stays there). Paths are passed as given, so keep them relative; ``env`` adds
    environment variables."""
    return run_program([_as_command(host), *(os.fspath(p) for p in plugins)], timeout=timeout,
                       env=env)


def dlopen_trace(host: str | os.PathLike[str], plugin: str | os.PathLike[str]) -> list[str]:
    """Run the host with ``LD_DEBUG=files,scopes`` and keep glibc's loader lines about
    ``plugin`` (process ids removed): the proof that ``plugin.Open`` is ``dlopen`` underneath,
    and that it adds the plugin to the global scope (``RTLD_GLOBAL``). The lists of each
    object's own scopes are left out."""
    outcome = run_go_host(host, plugin, env={"LD_DEBUG": "files,scopes"})
    name = Path(plugin).name
    lines = []
    for line in outcome.stderr.splitlines():
        text = re.sub(r"^\s*\d+:\s*", "", line).strip()
        if name in text and not text.startswith(("object=", "scope ")):
            lines.append(re.sub(r"\s+", " ", tidy(text)))
    return lines


def host_report(outcome: Outcome) -> str:
    """What the host printed, then how it ended, in stable words: the exit status, the
    signal, the exec error, or the Go runtime's ``fatal error:`` line without the goroutine
    dump (which holds addresses)."""
    lines = [tidy(outcome.stdout).rstrip()] if outcome.stdout.strip() else []
    if outcome.error is not None and outcome.returncode is None:
        lines.append(f"could not start: {outcome.error['kind']}: {outcome.error['message']}")
        return "\n".join(lines)
    if outcome.signal is not None:
        lines.append(f"killed by {outcome.signal}")
    else:
        lines.append(f"exit status {outcome.returncode}")
    fatal = _fatal_line(outcome.stderr)
    if fatal:
        lines.append(f"stderr: {fatal}")
    elif outcome.stderr.strip():
        lines.append(f"stderr: {tidy(outcome.stderr.strip().splitlines()[0])}")
    return "\n".join(lines)


def go_said(outcome: Outcome) -> str:
    """The Go runtime's verdict in one line: ``ok``, the host's refusal, the runtime's
    ``fatal error:``, or why the program could not start."""
    if outcome.error is not None and outcome.returncode is None:
        return f"could not start: {outcome.error['message']}"
    fatal = _fatal_line(outcome.stderr)
    if fatal:
        return fatal
    if outcome.ok:
        return "ok"
    last = outcome.stdout.strip().splitlines()[-1] if outcome.stdout.strip() else ""
    last = re.sub(r'^open \S+: (plugin\.Open\("[^"]*"\): )?', "", last.strip())
    return last or f"exit status {outcome.returncode}"


def _fatal_line(stderr: str) -> str | None:
    """The Go runtime's ``fatal error: ...`` line, without the goroutine dump after it."""
    return next((line for line in stderr.splitlines() if line.startswith("fatal error:")), None)


def _as_command(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    return text if "/" in text else f"./{text}"  # ./host, not a program on PATH

