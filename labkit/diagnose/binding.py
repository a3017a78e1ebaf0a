"""After the loader has mapped every object: the version check and the relocation pass, on
the files (glibc's elf/dl-version.c, elf/dl-reloc.c and elf/dl-lookup.c).

:func:`version_problems` checks, object by object in search-list order, that each library a
version requirement names is there under that name and defines the version (a library with
no version definitions satisfies any). :func:`relocation_problems` walks the new objects in
the order the loader relocates them (dependencies first) and, relocation by relocation, looks
up each undefined symbol in the load's scope as ``check_match`` does (versions included), and
places each TLS block the initial-exec model needs in what is left of static TLS
(:mod:`labkit.diagnose.statictls`). Problems come in the order the loader meets them. Two
inputs make glibc's loader assert and end the process; they come back as ``loader-abort``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..inspect.dynamic import elf_of, relocations_of
from ..inspect.elf import ElfInfo, Symbol
from ..paths import show
from .loader import Obj, Plan, Process
from .problem import Context, Problem
from .statictls import StaticTls, glibc_version


def newest_version(defs: Sequence[str], like: str = "") -> str | None:
    """The newest public version among a library's version definitions: GLIBC_PRIVATE and
    other ``*_PRIVATE`` names left out, versions of ``like``'s family (``GLIBC_`` for
    ``GLIBC_2.99``) compared by number, so ``GLIBC_2.36`` is newer than ``GLIBC_2.4``."""
    public = [d for d in defs if not d.endswith("PRIVATE")]
    family = re.match(r"(.*?)[\d.]*$", like)
    prefix = family[1] if family and family[1] else ""
    numbered = [d for d in public if prefix and re.fullmatch(re.escape(prefix) + r"\d+(\.\d+)*", d)]
    if numbered:
        return max(numbered, key=lambda d: tuple(int(n) for n in d[len(prefix):].split(".")))
    return public[-1] if public else None


def version_problems(plan: Plan) -> list[Problem]:
    problems = []
    for obj, version, library, provider in missing_versions(plan):
        if provider is None:
            problems.append(_version_abort(obj, library))
        else:
            lib = elf_of(provider.path)
            problems.append(missing_version(obj.path, version, library, lib, provider.path))
    return problems


def missing_versions(plan: Plan) -> list[tuple[Obj, str, str, Obj | None]]:
    """elf/dl-version.c, object by object in search-list order: the library each version
    requirement names must answer to that name (else the loader's assertion stops the
    process: provider None), and every version required of it must be defined there (a
    library without version definitions satisfies any). Returns (object, version, library
    name, the library's object) for each failure, in the loader's order."""
    missing: list[tuple[Obj, str, str, Obj | None]] = []
    for obj in (o for o in plan.order if any(o is n for n in plan.new)):
        for need in elf_of(obj.path).version_needs:
            provider = plan.process.answering(need.library, plan.new)
            if provider is None and obj is plan.root:
                provider = next((o for o in plan.order if need.library in o.names), None)
            if provider is None:
                missing.append((obj, "", need.library, None))
                continue
            lib = elf_of(provider.path)
            if not lib.versioned:
                continue
            missing += [(obj, version, need.library, provider) for version in need.versions
                        if version not in lib.version_defs and version not in need.weak]
    return missing


def _version_abort(obj: Obj, library: str) -> Problem:
    return Problem(
        "loader-abort",
        f"{show(obj.path)!r} requires symbol versions of {library!r}, a name no loaded "
        "object answers to: the loader expanded the $ORIGIN (or other token) in that "
        "DT_NEEDED name when it loaded the library, so the version check cannot find it "
        "again, and an assertion in glibc's loader ends the whole process: 'Inconsistency "
        "detected by ld.so: dl-version.c: _dl_check_map_versions: Assertion `needed != "
        "NULL' failed!' (exit status 127; no dlerror, the host dies with it)",
        "name the dependency by file name in DT_NEEDED (no token in its soname, or link it "
        "by file) and let a RUNPATH of $ORIGIN find it; or build it without a version "
        "script",
    )


def missing_version(path: Path, version: str, library: str, lib: ElfInfo | None,
                     found: Path | None = None) -> Problem:
    """``version`` of ``library`` missing for ``path``; ``lib`` is the library the loader
    found (at ``found``, as the loader names it), whose newest public version is named."""
    newest = ""
    latest = newest_version(lib.version_defs, version) if lib is not None else None
    if lib is not None and latest is not None:
        where = show(found if found is not None else lib.path)
        newest = f"; the {library} found here ({where}) stops at {latest!r}"
    glibc = version.startswith("GLIBC_")
    return Problem(
        "missing-version",
        f"{show(path)!r} needs symbol version {version!r} of {library!r}, which the "
        f"library on this machine does not provide{newest}: it was built against a newer "
        f"{'glibc' if glibc else 'version of the library'}",
        "build it on, or for, the oldest system it must run on (zig cc can target an older "
        "glibc: -target x86_64-linux-gnu.2.28)" if glibc else
        f"install the newer {library} it was built against, or rebuild it against the "
        "one installed here",
    )


def relocation_problems(
    plan: Plan, context: Context, scope: list[Obj], *, tls: bool,
) -> list[Problem]:
    """The relocation pass, object by object in the loader's order: undefined symbols
    (looked up in ``scope``, the host's objects then the load's search list) and, with
    ``tls``, TLS blocks the initial-exec model needs in static TLS."""
    static = copy.deepcopy(plan.process.tls) if tls else None
    placed = plan.process.placed_tls() if tls else set()
    exports = _Exports()
    unversioned = {(id(obj), version) for obj, version, _, _ in missing_versions(plan)}
    problems: list[Problem] = []
    for obj in plan.relocation_order():
        info = elf_of(obj.path)
        unresolved: list[str] = []
        at = len(problems)
        for reloc in relocations_of(obj.path):
            if reloc.kind == "symbol":
                sym = info.symbols[reloc.index - 1] if 0 < reloc.index <= len(info.symbols) \
                    else None
                if sym is None or sym.binding == "WEAK" or sym.name in unresolved:
                    continue
                if (id(obj), sym.version) in unversioned:
                    continue  # a missing version already explains it
                found = exports.lookup(sym, _version_file(info, sym), scope, context.provided)
                if isinstance(found, Obj):
                    if glibc_version() < CHECK_MATCH_ACCEPTS:
                        problems.append(_lookup_abort(obj, sym, found))
                    continue  # from 2.41 on, check_match takes the unversioned symbol
                if found:
                    continue
                if not unresolved:
                    at = len(problems)
                unresolved.append(sym.name)
            elif static is not None:
                target = _tls_target(obj, reloc.symbol, reloc.defined, plan, exports)
                if target is None or target.dyn.tls is None or target.path in placed:
                    continue
                if static.allocate(target.dyn.tls, optional=reloc.kind == "tlsdesc"):
                    placed.add(target.path)
                elif reloc.kind == "tpoff":
                    problems.append(_static_tls_problem(target, obj, static, plan.process))
                    placed.add(target.path)
        if unresolved:
            problems.insert(at, _undefined_problem(obj, plan, unresolved, context))
    return problems


def _version_file(info: ElfInfo, sym: Symbol) -> str | None:
    """The library a versioned reference's version belongs to (its DT_VERNEED entry)."""
    if sym.version is None:
        return None
    return next((need.library for need in info.version_needs if sym.version in need.versions),
                None)


#: The glibc release whose check_match accepts a versioned reference to a library without
#: symbol versions (commit bdaf500353 removed the assertion that ended the process before).
CHECK_MATCH_ACCEPTS = (2, 41)


def _lookup_abort(obj: Obj, sym: Symbol, lib: Obj) -> Problem:
    return Problem(
        "loader-abort",
        f"{show(obj.path)!r} uses {sym.name!r} in version {sym.version!r} of {lib.label!r}, "
        f"but the {lib.label} the loader found ({show(lib.path)}) has no symbol versions "
        "at all: glibc's symbol lookup cannot tell whether that is right, and an assertion "
        "in its loader ends the whole process: 'Inconsistency detected by ld.so: "
        "dl-lookup.c: check_match: Assertion `version->filename == NULL || ! "
        "_dl_name_match_p (version->filename, map)' failed!' (exit status 127; no "
        "dlerror, the host dies with it)",
        f"install the build of {lib.label} it was linked against (with its version "
        "script), or relink it against the one installed here",
    )


def _tls_target(obj: Obj, symbol: str | None, defined: bool, plan: Plan,
                exports: _Exports) -> Obj | None:
    """The object whose TLS block a relocation names: the object itself, or the first in
    the search list that defines the symbol."""
    if symbol is None or defined:
        return obj
    for other in plan.order:
        if other.dyn.tls is not None and symbol in exports.of(other):
            return other
    return None


class _Exports:
    """The symbols each object exports, read once per diagnosis."""

    def __init__(self) -> None:
        self._by_path: dict[Path, dict[str, list[Symbol]]] = {}

    def of(self, obj: Obj) -> dict[str, list[Symbol]]:
        table = self._by_path.get(obj.path)
        if table is None:
            table = {}
            for s in elf_of(obj.path).symbols:
                if s.defined and s.binding in ("GLOBAL", "WEAK", "GNU_UNIQUE") and \
                        s.visibility in ("DEFAULT", "PROTECTED"):
                    table.setdefault(s.name, []).append(s)
            self._by_path[obj.path] = table
        return table

    def lookup(self, ref: Symbol, file: str | None, scope: Iterable[Obj],
               provided: Callable[[str], bool] | None) -> bool | Obj:
        """Whether some object of ``scope`` defines ``ref`` in the version it asks for, as
        elf/dl-lookup.c's check_match accepts: the same version, or a definition with no
        version that is not hidden; a reference without a version takes any non-hidden
        definition; an object without symbol versions at all, any. The exception: when
        that object is ``file``, the library the reference's version belongs to, glibc's
        assertion ends the process; that object is returned."""
        if provided is not None and provided(ref.name):
            return True
        for obj in scope:
            definitions = self.of(obj).get(ref.name, ())
            if definitions and ref.version is not None and file is not None and \
                    not elf_of(obj.path).symbol_versions:
                return obj if file in obj.names else True
            for definition in definitions:
                if definition.version == ref.version and ref.version is not None:
                    return True
                if definition.version is None and not definition.hidden:
                    return True
                if ref.version is None and not definition.hidden:
                    return True
        return False


def _undefined_problem(obj: Obj, plan: Plan, unresolved: list[str],
                       context: Context) -> Problem:
    names = ", ".join(repr(n) for n in unresolved[:5])
    if len(unresolved) > 5:
        names += f" and {len(unresolved) - 5} more"
    one = len(unresolved) == 1
    host = context.host
    if host is not None:
        where = f"it, the libraries it needs, nor the host {show(host.path)!r} defines"
    elif context.provided is not None:
        where = "it, the libraries it needs, nor anything loaded globally before it defines"
    else:
        where = ("it nor the libraries it needs define (a host program may still provide "
                 f"{'it' if one else 'them'}: check with --host HOST)")
    who = repr(show(obj.path))
    if obj is not plan.root and plan.root is not None:
        who += f" (needed by {show(plan.root.path)!r})"
    return Problem(
        "undefined-symbol",
        f"{who} uses the symbol{'' if one else 's'} {names}, which neither {where}",
        "link the library that defines it (libs=[...] when building), or load that "
        "library first with RTLD_GLOBAL; a host exports its own functions only when linked "
        "with -rdynamic; check the name for typos",
    )


def _static_tls_problem(target: Obj, user: Obj, tls: StaticTls, process: Process) -> Problem:
    block = target.dyn.tls
    assert block is not None
    release = ".".join(map(str, glibc_version()))
    optional = tls.tunables.get("glibc.rtld.optional_static_tls", 512)
    via = "" if user is target else f" through {show(user.path)!r}"
    if block.align > tls.align:
        why = (f"its block is aligned to {block.align} bytes, more than the {tls.align} the "
               "static TLS block is aligned to")
        raise_by = 0
    else:
        why = (f"{process.what} has {tls.free} bytes of it free (glibc {release}, "
               f"glibc.rtld.optional_static_tls={optional})")
        raise_by = -(-(block.size + block.first_byte - tls.free) // 64) * 64
    tunable = (f"; or give the process more surplus before it starts: GLIBC_TUNABLES="
               f"glibc.rtld.optional_static_tls={optional + raise_by}") if raise_by > 0 else ""
    return Problem(
        "static-tls",
        f"{show(target.path)!r} has {block.size} bytes of thread-local storage used with the "
        f"initial-exec TLS model{via} (DF_STATIC_TLS), so the loader must place them in the "
        "static TLS block, where a library loaded after the program started gets only the "
        f"surplus glibc keeps for it; {why}: dlopen says 'cannot allocate memory in static "
        "TLS block'",
        "build it with the default global-dynamic TLS model (no tls_model(\"initial-exec\"), "
        "no -ftls-model=initial-exec) or with TLS descriptors (-mtls-dialect=gnu2), or "
        "make the block smaller; or load it when the program starts (link the program "
        f"with it, or LD_PRELOAD it){tunable}",
    )
