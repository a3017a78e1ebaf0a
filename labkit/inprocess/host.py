"""An in-process host for C plugins written against ``plugins/c/plugin_api.h``.

The design is the one a real plugin API would have (and the one the kops "bring your own
plugin" proposal sketched for Go): a plugin is a shared object in a plugin folder, its file
name is its id, and it exports one well-known symbol, ``lab_plugin_entry``, returning a
descriptor. Before the first call the host validates the plugin: the entry symbol is there,
the ABI version is one the host accepts, the descriptor has the size the host expects, the
required functions are present. State lives behind an opaque handle the plugin creates.

:meth:`Plugin.reload` swaps in the file on disk while the kernel runs: the new copy is
loaded and validated, calls move over to it, and the old library is closed once the calls
still running in it have returned.

Danger: a plugin runs inside this process; one that crashes takes the process with it. Try
unknown plugins with :meth:`PluginHost.trial`, which runs them in a child process.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..diagnose.verdict import Verdict, explain
from ..diagnose.why import Problem
from ..errors import InputError, LoadError, PluginError, SymbolError
from ..isolate import Outcome
from ..isolate import run as run_isolated
from ..paths import PLUGINS_C, existing_file, show
from .dlopen import Library, load, load_fresh

#: The header that defines the interface; the host reads its C declarations from it.
API_HEADER = PLUGINS_C / "plugin_api.h"
#: The one symbol a plugin must export.
ENTRY_SYMBOL = "lab_plugin_entry"
#: Functions of the descriptor's table a plugin must fill in (the others may be NULL).
REQUIRED_FUNCTIONS = ("transform",)
#: The letter cases a host can ask for, by the names of ``enum lab_case``.
CASES = {"keep": "LAB_CASE_KEEP", "upper": "LAB_CASE_UPPER", "lower": "LAB_CASE_LOWER"}

_MAX_RESULT = 1 << 20  # a plugin that claims a longer result is refused, not trusted
_ffi_cache: dict[str, tuple[Any, int]] = {}


def api(header: str | os.PathLike[str] = API_HEADER) -> tuple[Any, int]:
    """cffi's view of the plugin interface: an FFI that knows the header's types, and the
    ABI version the header declares. The host is "compiled against" this header."""
    text = Path(header).read_text(encoding="utf-8")
    if text not in _ffi_cache:
        import cffi

        version = re.search(r"#define\s+LAB_PLUGIN_ABI_VERSION\s+(\d+)", text)
        if version is None:
            raise InputError(f"{show(header)!r} does not #define LAB_PLUGIN_ABI_VERSION",
                             fix="pass header= a plugin interface like plugins/c/plugin_api.h")
        ffi = cffi.FFI()
        ffi.cdef("\n".join(line for line in text.splitlines() if not line.startswith("#")))
        _ffi_cache[text] = (ffi, int(version[1]))
    return _ffi_cache[text]


@dataclass(frozen=True)
class Candidate:
    """A plugin file found by :meth:`PluginHost.discover`: its id, and the :class:`Verdict`
    of :func:`labkit.explain` on it, the host's entry point required, without loading it."""

    id: str
    verdict: Verdict

    @property
    def path(self) -> Path:
        return self.verdict.path

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.verdict.problems

    @property
    def loadable(self) -> bool:
        """labkit found nothing that stops it loading (the descriptor is checked at load)."""
        return self.verdict.ok

    def __str__(self) -> str:
        verdict = "ok" if self.loadable else "; ".join(p.kind for p in self.problems)
        return f"{self.id:<14} {show(self.path):<34} {verdict}"


def plugin_id(path: str | os.PathLike[str]) -> str:
    """The id of a plugin file: its name without ``lib`` and ``.so`` (libupper.so: upper)."""
    name = Path(path).name
    return name.removeprefix("lib").removesuffix(".so")


class _Generation:
    """One loaded copy of a plugin: its library, descriptor and state, and the calls in it."""

    def __init__(self, library: Library, descriptor: Any, state: Any) -> None:
        self.library = library
        self.descriptor = descriptor
        self.state = state
        self.calls = 0


class Plugin:
    """A validated plugin, ready to call. Made by :meth:`PluginHost.load`."""

    def __init__(self, host: PluginHost, pid: str, path: Path, options: dict[str, Any]) -> None:
        self.host = host
        self.id = pid
        self.path = path
        self.options = options
        self.reloads = 0
        self._cond = threading.Condition()
        self._current: _Generation | None = None
        self._install(self._open(fresh=False))

    # -- what the plugin declared ------------------------------------------------------
    @property
    def name(self) -> str:
        return self._string(self._live().descriptor.name)

    @property
    def description(self) -> str:
        return self._string(self._live().descriptor.description)

    @property
    def abi_version(self) -> int:
        return int(self._live().descriptor.abi_version)

    @property
    def closed(self) -> bool:
        return self._current is None

    # -- calls ---------------------------------------------------------------------------
    def transform(self, text: str) -> str:
        """Call the plugin's ``transform`` on ``text`` and return its result."""
        ffi = self.host.ffi
        data = text.encode()
        with self._generation() as gen:
            capacity = 256
            while True:
                out = ffi.new("char[]", capacity)
                length = int(gen.descriptor.transform(gen.state, data, out, capacity))
                if length < capacity:
                    return str(ffi.string(out).decode(errors="replace"))
                if length > _MAX_RESULT:
                    raise PluginError(
                        f"plugin {self.id!r} says its result is {length} bytes long; the host "
                        f"refuses more than {_MAX_RESULT}", fix="check that the plugin and the "
                        "host agree on lab_options (python -m labkit abi-diff)",
                        plugin_id=self.id, path=self.path, check="call",
                    )
                capacity = length + 1

    def scale(self, value: float) -> float:
        """Call the plugin's ``scale``; :class:`PluginError` if it has none."""
        ffi = self.host.ffi
        with self._generation() as gen:
            if gen.descriptor.scale == ffi.NULL:
                raise PluginError(
                    f"plugin {self.id!r} has no scale function (its descriptor's scale is "
                    "NULL)", fix="call transform, or pick a plugin that scales",
                    plugin_id=self.id, path=self.path, check="call",
                )
            return float(gen.descriptor.scale(gen.state, value))

    # -- hot swap and closing ------------------------------------------------------------
    def reload(self) -> Plugin:
        """Swap in the plugin file as it is on disk now, without stopping callers.

        The new copy is loaded and validated first; if it fails, the old one stays in
        service and :class:`PluginError` says why. Calls that started before the swap finish
        in the old copy, which is closed after the last of them returns.
        """
        self._live()  # a closed plugin cannot be swapped: it says how to load it again
        new = self._open(fresh=True)
        old = self._install(new)
        self.reloads += 1
        if old is not None:
            self._retire(old)
        return self

    def close(self) -> None:
        """Destroy the plugin's state and close its library, after running calls return."""
        old = self._install(None)
        if old is not None:
            self._retire(old)

    def __enter__(self) -> Plugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<Plugin {self.id} (closed)>"
        return f"<Plugin {self.id}: {self.name!r}, ABI {self.abi_version}, from {show(self.path)}>"

    # -- internals -----------------------------------------------------------------------
    def _open(self, *, fresh: bool) -> _Generation:
        library, descriptor = self.host._validated(self.id, self.path, fresh=fresh)
        try:
            state = self.host.ffi.NULL
            if descriptor.create != self.host.ffi.NULL:
                state = descriptor.create(self.host.options(**self.options))
            return _Generation(library, descriptor, state)
        except BaseException:
            library.close()
            raise

    def _install(self, new: _Generation | None) -> _Generation | None:
        with self._cond:
            old, self._current = self._current, new
        return old

    def _retire(self, old: _Generation) -> None:
        with self._cond:
            self._cond.wait_for(lambda: old.calls == 0)
        if old.descriptor.destroy != self.host.ffi.NULL and old.state != self.host.ffi.NULL:
            old.descriptor.destroy(old.state)
        old.library.close()

    def _live(self) -> _Generation:
        current = self._current
        if current is None:
            raise PluginError(
                f"plugin {self.id!r} is closed", fix=f"load it again with host.load({self.id!r})",
                plugin_id=self.id, path=self.path, check="call",
            )
        return current

    @contextmanager
    def _generation(self) -> Iterator[_Generation]:
        with self._cond:
            gen = self._live()
            gen.calls += 1
        try:
            yield gen
        finally:
            with self._cond:
                gen.calls -= 1
                self._cond.notify_all()

    def _string(self, value: Any) -> str:
        ffi = self.host.ffi
        return "" if value == ffi.NULL else str(ffi.string(value).decode(errors="replace"))


class PluginHost:
    """Finds, validates, loads and swaps the C plugins of one folder.

    ``directory`` holds the plugins (``lib<id>.so``; sub-folders are not searched);
    ``header`` is the interface the host is built against, ``accept`` the ABI versions it
    takes (the header's version by default).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] = "build/plugins",
        *,
        header: str | os.PathLike[str] = API_HEADER,
        accept: tuple[int, ...] | None = None,
    ) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise InputError(
                f"plugin folder {show(self.directory)!r} does not exist", fix="build the "
                "samples first (labkit.build_samples()) or point at a folder of .so files",
                path=self.directory,
            )
        self.header = Path(header)
        self.ffi, version = api(header)
        self.accept = accept if accept is not None else (version,)
        self.plugins: dict[str, Plugin] = {}

    def discover(self) -> list[Candidate]:
        """Every ``*.so`` in the folder, each checked as the loader and the host would check
        it, without loading anything (see :func:`labkit.explain`)."""
        return [Candidate(plugin_id(path), explain(path, require=(ENTRY_SYMBOL,), load=True))
                for path in sorted(self.directory.glob("*.so"))]

    def path_of(self, pid: str) -> Path:
        """The file of plugin ``pid``: ``lib<pid>.so`` in the folder."""
        path = self.directory / f"lib{pid}.so"
        if not path.is_file():
            known = ", ".join(c.id for c in self.discover()) or "none"
            raise InputError(
                f"no plugin {pid!r} in {show(self.directory)!r} (looked for {path.name}; "
                f"found: {known})", fix="the id is the file name without lib and .so",
                path=path,
            )
        return path

    def install(self, pid: str, source: str | os.PathLike[str]) -> Path:
        """Put the file ``source`` in place as plugin ``pid`` (``lib<pid>.so`` in the folder),
        for a :meth:`Plugin.reload` to pick up; returns the plugin's path.

        The new file is copied beside the old one and renamed over it, so the old file is
        never written to. Writing into a file that a process has mapped (``shutil.copy`` onto
        a loaded plugin, say) changes the code under that process's feet, and its next call
        into the plugin may crash it (SIGBUS, SIGSEGV) or run garbage; a rename leaves the old
        inode, and so every mapping of it, intact.
        """
        src = existing_file(source, "plugin file")
        target = self.directory / f"lib{pid}.so"
        fd, tmp = tempfile.mkstemp(prefix=f".lib{pid}-", suffix=".so", dir=self.directory)
        os.close(fd)
        try:
            shutil.copy2(src, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def load(
        self, pid: str, *, letter_case: str = "keep", repeat: int = 1, width: int = 0
    ) -> Plugin:
        """Validate and load plugin ``pid``, and create its state with these options.

        Raises :class:`PluginError` naming the failed check. Loading an id again closes the
        copy loaded before.
        """
        if letter_case not in CASES:
            raise InputError(f"letter_case {letter_case!r} is not a case the plugins know",
                             fix=f"use one of {', '.join(CASES)}")
        if pid in self.plugins:
            self.plugins.pop(pid).close()
        options = {"letter_case": letter_case, "repeat": repeat, "width": width}
        plugin = Plugin(self, pid, self.path_of(pid), options)
        self.plugins[pid] = plugin
        return plugin

    def options(self, *, letter_case: str, repeat: int, width: int) -> Any:
        """A ``lab_options`` struct as the host's header lays it out."""
        options = self.ffi.new("lab_options *")
        options.letter_case = self.ffi.typeof("lab_case").relements[CASES[letter_case]]
        options.repeat = repeat
        options.width = width
        return options

    def trial(
        self, pid: str, argument: str | float, *, call: str = "transform",
        timeout: float = 30.0, **options: Any,
    ) -> Outcome:
        """Load ``pid`` and call its ``transform`` (or ``scale``, with ``call="scale"``) on
        ``argument`` in a child process: a plugin that crashes kills the child, not this
        process. The result is in ``.value``; ``options`` are those of :meth:`load`."""
        path = self.path_of(pid)
        if call not in ("transform", "scale"):
            raise InputError(f"a plugin has no call {call!r}",
                             fix="call 'transform' or 'scale'")

        def attempt() -> str | float:
            plugin = PluginHost(path.parent, header=self.header, accept=self.accept).load(
                pid, **options)
            if call == "scale":
                return plugin.scale(float(argument))
            return plugin.transform(str(argument))

        return run_isolated(attempt, timeout=timeout)

    def close(self) -> None:
        """Close every plugin this host loaded."""
        while self.plugins:
            self.plugins.popitem()[1].close()

    def _validated(self, pid: str, path: Path, *, fresh: bool) -> tuple[Library, Any]:
        """Load ``path`` and run the host's checks; return the library and the descriptor its
        entry point gave. The library is closed again on failure."""
        try:
            library = load_fresh(path) if fresh else load(path)
        except LoadError as exc:
            raise PluginError(
                f"plugin {pid!r} failed the check 'load': {exc}",
                plugin_id=pid, path=path, check="load",
            ) from exc
        try:
            return library, self._check(pid, path, library)
        except BaseException:
            library.close()
            raise

    def _check(self, pid: str, path: Path, library: Library) -> Any:
        """Run the checks in order and return the descriptor (the entry point is called
        once), or raise :class:`PluginError` for the first check that fails."""
        ffi = self.ffi
        declared: dict[str, object] = {}

        def fail(check: str, what: str, fix: str) -> PluginError:
            said = ", ".join(f"{k}={v!r}" for k, v in declared.items()) or "nothing"
            return PluginError(
                f"plugin {pid!r} ({show(path)}) failed the check {check!r}: {what} "
                f"(it declared: {said})", fix=fix,
                plugin_id=pid, path=path, check=check, declared=declared,
            )

        try:
            address = library.symbol(ENTRY_SYMBOL)
        except SymbolError:
            raise fail("entry-symbol", f"it does not export {ENTRY_SYMBOL}",
                       f"define `const lab_plugin *{ENTRY_SYMBOL}(void)` in the plugin, not "
                       "static (`nm -D` lists what it exports)") from None
        descriptor = ffi.cast("const lab_plugin *(*)(void)", address)()
        if descriptor == ffi.NULL:
            raise fail("descriptor", f"{ENTRY_SYMBOL}() returned NULL",
                       "return the address of a static lab_plugin descriptor")
        declared["abi_version"] = int(descriptor.abi_version)  # the first two fields never move
        declared["size"] = int(descriptor.size)
        if declared["abi_version"] not in self.accept:
            accepted = " or ".join(str(v) for v in self.accept)
            raise fail("abi-version",
                       f"it was built for ABI version {declared['abi_version']}; this host "
                       f"accepts {accepted}",
                       f"rebuild the plugin against the host's {self.header.name}, or use a "
                       "host that speaks its version")
        expected = ffi.sizeof("lab_plugin")
        if declared["size"] != expected:
            raise fail("size",
                       f"its descriptor is {declared['size']} bytes; the host's lab_plugin is "
                       f"{expected} bytes",
                       f"rebuild the plugin against the host's {self.header.name}")
        declared["name"] = (ffi.string(descriptor.name).decode(errors="replace")
                            if descriptor.name != ffi.NULL else None)
        missing = [f for f in REQUIRED_FUNCTIONS if getattr(descriptor, f) == ffi.NULL]
        if missing:
            raise fail("functions", f"its descriptor has no {', '.join(missing)} (NULL)",
                       f"fill in .{missing[0]} in the descriptor")
        if declared["name"] is None:
            raise fail("name", "its descriptor's name is NULL", "set .name in the descriptor")
        return descriptor
