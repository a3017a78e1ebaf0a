"""Cell magics: write a plugin in a notebook cell, build it with labkit, get it back loaded.

``%load_ext labkit`` registers them:

- ``%%cplugin NAME [--cflags "..."]``: the cell is C source. labkit builds
  ``build/libNAME.so`` and loads a fresh copy (re-running an edited cell picks up the new
  code) into the variable ``NAME``, a :class:`labkit.Library`.
- ``%%goplugin NAME [--mode c-shared|plugin]``: the cell is a Go ``package main``. With
  ``c-shared`` (the default) labkit builds ``build/libNAME.so`` and loads it into ``NAME``;
  with ``plugin`` it builds ``build/NAME.so`` for Go's ``plugin.Open`` (which only a Go host
  can open) and ``NAME`` is the :class:`labkit.Artifact`; with ``exe`` it builds the program
  ``build/NAME`` (run it with :func:`labkit.run_program`). A cell may import the lab's Go
  packages (``pluginlab/api``, ``pluginlab/registry/framework``).

A compiler error is shown with the cell's own line numbers (``cell line 3, column 9``). A
library is first loaded in a child process, so a constructor that crashes cannot take the
kernel with it; what its functions do once called is up to the cell (notebook 02 shows
``labkit.run_isolated`` for that).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..build.c import Artifact, build_shared
from ..build.go import build_go, module_files
from ..errors import BuildError, LabkitError
from ..inprocess.dlopen import Library, load_fresh
from ..inspect.elf import read_elf
from ..isolate import run as run_isolated
from ..paths import PLUGINS_GO

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
#: ``NAME.c:3:9:`` (gcc) and ``./main.go:3:9:`` / ``main.go:3:9:`` (go), at a line's start
#: or after a space, become ``cell line 3, column 9:``.
_C_LOCATION = r"(?m)(^|\s){name}\.c:(\d+):(\d+):"
_GO_LOCATION = re.compile(r"(?m)(^|\s)(?:\./)?main\.go:(\d+):(\d+):")


@magics_class
class PluginMagics(Magics):
    """``%%cplugin`` and ``%%goplugin``."""

    @magic_arguments()
    @argument("name", help="the variable to bind, and the library's name (libNAME.so)")
    @argument("--cflags", default="", help='extra compiler flags, e.g. --cflags "-O0 -DX=1"')
    @cell_magic
    def cplugin(self, line: str, cell: str) -> None:
        """Build the cell's C source into ``build/libNAME.so`` and load it as ``NAME``."""
        args = parse_argstring(self.cplugin, line)
        name = _check_name(args.name, "cplugin")
        try:
            artifact = build_shared(cell, name, cflags=shlex.split(args.cflags))
        except BuildError as exc:
            located = re.sub(_C_LOCATION.format(name=re.escape(name)),
                             r"\1cell line \2, column \3:", str(exc))
            located = re.sub(rf"(?m)^{re.escape(name)}\.c: ", "cell: ", located)
            raise UsageError(f"%%cplugin {name}: {located}") from None
        exported = [s for s in read_elf(artifact.path).exported if not s.startswith("_")]
        self._bind(name, _load(artifact, "cplugin"), artifact, exported)

    @magic_arguments()
    @argument("name", help="the variable to bind, and the library's name")
    @argument("--mode", choices=["c-shared", "plugin", "exe"], default="c-shared",
              help="c-shared (load it here), plugin (for a Go host's plugin.Open) or exe "
                   "(a program, for labkit.run_program)")
    @cell_magic
    def goplugin(self, line: str, cell: str) -> None:
        """Build the cell's Go ``package main`` with ``-buildmode=MODE`` into ``build/``."""
        args = parse_argstring(self.goplugin, line)
        name = _check_name(args.name, "goplugin")
        module = go_cell_module(name, cell)
        try:
            artifact = build_go(".", name, mode=args.mode, module=module, out_dir="build")
        except BuildError as exc:
            located = _GO_LOCATION.sub(r"\1cell line \2, column \3:", str(exc))
            raise UsageError(f"%%goplugin {name}: {located}") from None
        if args.mode == "c-shared":  # what cgo's header declares, without its own helpers
            header = artifact.path.with_suffix(".h").read_text()
            exported = [f for f in re.findall(r"(?m)^extern [^(;]*?\b(\w+)\(", header)
                        if not f.startswith("_")]
            self._bind(name, _load(artifact, "goplugin"), artifact, exported)
        elif args.mode == "exe":
            self._bind(name, artifact, artifact, [])
        else:  # Go names of the cell's package, as plugin.Lookup sees them
            prefix = f"cells/{name}."
            exported = [s[len(prefix):] for s in read_elf(artifact.path).exported
                        if s.startswith(prefix) and s[len(prefix):].isidentifier()
                        and s[len(prefix)].isupper()]
            self._bind(name, artifact, artifact, exported)

    def _bind(self, name: str, value: Library | Artifact, artifact: Artifact,
              exported: list[str]) -> None:
        self.shell.user_ns[name] = value  # type: ignore[union-attr]
        shown = ", ".join(exported[:8]) + (f" and {len(exported) - 8} more"
                                           if len(exported) > 8 else "")
        kind = "loaded" if isinstance(value, Library) else "built"
        exports = f"; exports {shown or 'nothing'}" if artifact.kind == "shared" else ""
        print(f"{name}: {kind} {artifact} ({artifact.command_line}){exports}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext labkit``: register ``%%cplugin`` and ``%%goplugin``."""
    ipython.register_magics(PluginMagics)


def _check_name(name: str, magic: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"%%{magic} {name}: the name must be a Python identifier (it becomes "
                         f"a variable), e.g. %%{magic} shout")
    return name


def _load(artifact: Artifact, magic: str) -> Library:
    """Load a fresh copy, after a trial load in a child: a constructor that crashes (C's
    ``__attribute__((constructor))``, a Go ``init``) must not take the kernel with it."""
    trial = run_isolated(lambda: load_fresh(artifact.path).close(), timeout=60)
    if not trial.ok:
        raise UsageError(
            f"%%{magic}: {artifact} failed while loading in a trial child process: "
            f"{trial.summary()}. It was not loaded here, so the kernel is safe.\n"
            f"{trial.fault_traceback or trial.stderr[-1500:]}".rstrip())
    try:
        return load_fresh(artifact.path)
    except LabkitError as exc:
        raise UsageError(f"%%{magic}: built {artifact} but could not load it: {exc}") from None


def go_cell_module(name: str, source: str) -> Path:
    """A Go module of its own for the cell (``build/gocells/NAME``) that can import the lab's
    module ``pluginlab`` from ``plugins/go``."""
    folder = Path("build") / "gocells" / name
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for path in module_files(PLUGINS_GO):  # so the build cache sees changes to pluginlab
        digest.update(path.read_bytes())
    (folder / "go.mod").write_text(
        f"module cells/{name}\n\ngo 1.22\n\nrequire pluginlab v0.0.0\n\n"
        f"replace pluginlab => {PLUGINS_GO}\n\n// pluginlab's sources: {digest.hexdigest()[:16]}\n")
    (folder / "main.go").write_text(source)
    return folder
