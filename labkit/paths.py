"""Where the lab lives, where labkit caches builds, and how paths are shown to a learner.

Notebooks print paths relative to the lab (never absolute temporary paths) so that what a
cell prints is the same on Binder, in CI and on a laptop. :func:`show` and :func:`tidy` do
that.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The root of the lab: the folder that holds ``labkit/``, ``notebooks/`` and ``plugins/``.
LAB_ROOT = Path(__file__).resolve().parent.parent
#: The sample plugins' sources, one folder per kind (``plugins/`` holds nothing else).
PLUGINS = LAB_ROOT / "plugins"
#: C: the plugin interface ``plugin_api.h``, its host, the samples, the bench host.
PLUGINS_C = PLUGINS / "c"
#: C++: the interface ``transformer.hpp`` (and a careless release 2), a plugin, a host.
PLUGINS_CPP = PLUGINS / "cpp"
#: The lab's Go module: the shared package ``api``, plugins, hosts, a c-shared library.
PLUGINS_GO = PLUGINS / "go"
#: Python plugins found through entry points (pluggy).
PLUGINS_PY = PLUGINS / "python"
#: The wasm plugin, its bench module and the C host of the bench.
PLUGINS_WASM = PLUGINS / "wasm"
#: The protocol definitions: the app's and go-plugin's own services.
PLUGINS_PROTO = PLUGINS / "proto"


def cache_dir() -> Path:
    """The build cache: ``$LABKIT_CACHE``, else ``$XDG_CACHE_HOME/plugin-lab``, else
    ``~/.cache/plugin-lab``. Created on first use."""
    base = _cache_root()
    base.mkdir(parents=True, exist_ok=True)
    return base


#: Whether paths are shown as they were given (the command line) rather than shortened (the
#: notebooks, whose stored outputs must not depend on the machine's folders).
_as_given = False


@contextlib.contextmanager
def paths_as_given() -> Iterator[None]:
    """Within it, :func:`show` and :func:`tidy` leave paths as the user gave them, but for
    the current folder's prefix: the command line says ``'/tmp' is a directory``, not a
    notebook's ``'<tmp>'``."""
    global _as_given
    before, _as_given = _as_given, True
    try:
        yield
    finally:
        _as_given = before


def show(path: str | os.PathLike[str]) -> str:
    """A path as a learner should read it: relative to the current folder when it is
    inside it, else relative to the lab, else ``<cache>/...`` or ``<tmp>/...``, else as is
    (within :func:`paths_as_given`, only the current folder's prefix goes)."""
    if _as_given:  # a path inside the current folder relative to it, any other as it is
        text = os.fspath(path)
        if os.path.isabs(text):
            with contextlib.suppress(ValueError):
                return str(Path(text).relative_to(Path.cwd()))
        return text
    p = Path(path)
    absolute = p if p.is_absolute() else Path.cwd() / p
    anchors = [(Path.cwd(), ""), (LAB_ROOT, "")]
    anchors.append((_cache_root(), "<cache>/"))
    anchors.append((Path(tempfile.gettempdir()), "<tmp>/"))
    for anchor, prefix in anchors:
        try:
            rel = absolute.relative_to(anchor)
        except ValueError:
            continue
        return prefix + str(rel) if str(rel) != "." else prefix.rstrip("/") or "."
    return str(p)


def tidy(text: str) -> str:
    """Replace machine-specific prefixes in tool output (the Python executable, the lab
    folder, the cache, the temporary folder) with short stable names (within
    :func:`paths_as_given`, only the current folder's prefix goes)."""
    if _as_given:
        return text.replace(str(Path.cwd()) + os.sep, "") if str(Path.cwd()) != os.sep else text
    replacements = [
        (sys.executable, "python"),
        (str(_cache_root()), "<cache>"),
        (str(Path.cwd()) + os.sep, ""),
        (str(LAB_ROOT) + os.sep, ""),
        (tempfile.gettempdir(), "<tmp>"),
    ]
    for old, new in replacements:
        if old and old != os.sep:
            text = text.replace(old, new)
    return text


def existing_file(path: str | os.PathLike[str], what: str = "") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names a file, else the one
    :class:`~labkit.errors.InputError` every labkit function gives for a missing path or a
    folder. ``what`` names the role (``"C source"``): ``"C source 'x.c' does not exist"``."""
    from .errors import InputError

    p = Path(path)
    named = f"{what} {show(p)!r}" if what else repr(show(p))
    if p.is_dir():
        raise InputError(f"{named} is a directory, not a file", fix="name a file inside it",
                         path=p)
    if not p.exists():
        raise InputError(f"{named} does not exist", fix="check the path, or build the file "
                         "first", path=p)
    return p


def _cache_root() -> Path:
    explicit = os.environ.get("LABKIT_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "plugin-lab"
