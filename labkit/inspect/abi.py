"""Comparing the binary interfaces of two builds: libabigail's abidiff, and struct layouts.

:func:`abi_diff` runs ``abidiff OLD NEW`` and turns its report into an :class:`AbiReport`:
a verdict (compatible or not) and the list of changes (removed symbols, parameters added,
removed or changed, return types, type sizes, member offsets, enumerator values). abidiff's
exit status is a bit field (libabigail's manual, "abidiff return values"): 1 error, 2 usage
error, 4 an ABI change, 8 an incompatible ABI change. abidiff sets 8 only for changes it is
sure break, such as a removed function or variable (in 2.2 to 2.6 also a changed SONAME or
architecture, and C++ virtual table changes; from 2.7 a harmful change to a function's own
return or parameter type too), and leaves the rest at 4, "to be reviewed": in 2.2-2.6 a
changed type reached through a pointer sets only bit 4 (and 2.2 sets only 4 for a function
that gained a parameter). labkit reviews them: any change to a function's parameters or
return type (one added or removed, a type changed), and a changed size, offset, type or
enumerator value, breaks callers built against the old interface; only adding a ``const``
or ``volatile`` is left as compatible. In C++, a virtual function added to or removed from a
class (``virtual-added``, ``virtual-removed``) and a function whose vtable slot moved
(``vtable-offset-changed``) are breaking, the fragile base class: a call through the vtable
is compiled to a slot number, so code built against the old class calls the wrong function
when a slot moved or went, and an old plugin's vtable has no slot for a function added since,
which a new host reads past its end.

abidiff's wording changes between libabigail releases; labkit reads every release from 2.2
(Debian 12) to 2.6 (Debian 13) the same way, so a report reads alike on Binder, in CI and on
a laptop. In C files an empty parameter list is ``f(void)`` (2.6 says so, 2.2 and 2.4 say
``f()``), and a function-pointer member is found by its name in both spellings
(``'int (int)* name'`` in 2.2, ``'int (* name)(int)'`` in 2.6).

:func:`struct_layout` reads one struct from the DWARF debug information (pyelftools): each
member's offset and size, and the padding between them.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AbiToolError, InputError
from ..paths import show
from ..toolchain import find_tool
from .elf import read_elf, section_named

if TYPE_CHECKING:
    import pandas

#: abidiff's exit status bits, from libabigail's abidiff documentation.
ABIDIFF_BITS = {1: "ERROR", 2: "USAGE_ERROR", 4: "ABI_CHANGE", 8: "ABI_INCOMPATIBLE_CHANGE"}
#: Kinds of change that break a caller built against the old file.
BREAKING = frozenset({
    "removed-function", "removed-variable", "removed-symbol", "size-changed",
    "offset-changed", "member-inserted", "member-removed", "enumerator-changed",
    "type-changed", "parameter-added", "parameter-removed", "entity-changed",
    "vtable-offset-changed", "virtual-added", "virtual-removed",
})
_TIMEOUT = 120
#: DWARF's DW_LANG codes for C: C89, C, C99, C11 (DWARF 5, section 7.12), and C17 (0x2C,
#: from the DWARF language registry that followed DWARF 5).
_C_LANGUAGES = frozenset({0x1, 0x2, 0xC, 0x1D, 0x2C})
_QUOTED = re.compile(r"'[^'\n]*'")
#: The member a change goes through: ``type of 'int (* scale)(int)' changed`` (libabigail
#: 2.6's spelling of a function pointer), else ``type of 'int (int)* scale' changed`` (2.2's)
#: or ``type of 'int count' changed``.
_THROUGH = re.compile(r"type of '[^']*?\(\*\s*(\w+)\)[^']*' changed|type of '[^']*?(\w+)' changed")

#: A named type in a line of the report: ``'struct lab_options'``, ``'const typedef lab_plugin'``.
_NAMED = re.compile(r"'(?:const )?((?:struct|class|enum|union) [\w:]+|typedef \w+)'")
_SECTION = re.compile(r"^\d+ (Removed|Added|Changed)? ?(?:function|variable)")
_CHANGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("size-changed", re.compile(r"type size changed from (\d+) to (\d+) \(in bits\)")),
    ("offset-changed", re.compile(r"'([^']+)' offset changed from (\d+) to (\d+)")),
    ("enumerator-changed", re.compile(r"'([^']+)' from value '([^']+)' to '([^']+)'")),
    ("type-changed", re.compile(r"type name changed from '([^']+)' to '([^']+)'")),
    ("parameter-added", re.compile(r"^parameter \d+ of type '[^']*' was added")),
    ("parameter-removed", re.compile(r"^parameter \d+ of type '[^']*' was removed")),
    ("entity-changed", re.compile(r"entity changed from '([^']+)' to '([^']+)'")),
    ("vtable-offset-changed", re.compile(r"^the vtable offset of .+ changed from \d+ to \d+")),
)
#: A C++ virtual function a class gained or lost, listed under "member function insertion"
#: or "deletion": ``'method virtual int T::version() const', virtual at voffset 3/4``. Every
#: class that overrides or calls through the vtable was built for the old slots.
_VIRTUAL = re.compile(r"^'[^']*'[^,']*, virtual at voffset \d+/\d+")
#: Adding or dropping a qualifier: ``entity changed from 'char' to 'const char'``.
_QUALIFIER = re.compile(r"entity changed from '(?:(?:const|volatile) )?([^']+)' to "
                        r"'(?:(?:const|volatile) )?\1'")


@dataclass(frozen=True)
class Change:
    """One difference abidiff found: its ``kind``, ``where`` (function, then type or
    parameter) and abidiff's own words in ``detail`` (an empty parameter list of a C function
    spelled ``(void)`` whichever release wrote them; :attr:`AbiReport.text` is the report
    as abidiff printed it)."""

    kind: str
    where: str
    detail: str

    @property
    def breaking(self) -> bool:
        return self.kind in BREAKING

    def __str__(self) -> str:
        mark = "BREAKS" if self.breaking else "ok"
        return f"[{mark}] {self.kind}: {self.where}: {self.detail}"


@dataclass(frozen=True)
class AbiReport:
    """abidiff's verdict on OLD -> NEW, read and reviewed."""

    old: Path
    new: Path
    status: int
    changes: tuple[Change, ...]
    text: str

    @property
    def compatible(self) -> bool:
        """Whether a caller built against OLD keeps working with NEW."""
        return not self.status & 8 and not any(c.breaking for c in self.changes)

    @property
    def status_bits(self) -> tuple[str, ...]:
        """abidiff's exit status as the names of its bits (empty when 0: no change)."""
        return tuple(name for bit, name in ABIDIFF_BITS.items() if self.status & bit)

    def __str__(self) -> str:
        verdict = "compatible" if self.compatible else "INCOMPATIBLE"
        bits = " | ".join(self.status_bits) or "no change"
        lines = [f"{show(self.old)} -> {show(self.new)}: {verdict} "
                 f"(abidiff exit status {self.status}: {bits})"]
        lines += [f"  {change}" for change in self.changes]
        return "\n".join(lines)


def abi_diff(old: str | os.PathLike[str], new: str | os.PathLike[str]) -> AbiReport:
    """Compare the ABI of ``old`` and ``new`` with abidiff.

    Raises :class:`~labkit.errors.InputError` or :class:`~labkit.errors.ElfError` for a
    missing, unreadable or non-ELF file, :class:`~labkit.errors.ToolchainError` when
    abidiff is missing, and :class:`~labkit.errors.AbiToolError` when abidiff fails.
    """
    paths = [Path(old), Path(new)]
    for path in paths:
        read_elf(path)  # says clearly what is wrong with a bad file before abidiff does
    tool = find_tool("abidiff")
    try:
        proc = subprocess.run(
            [*tool.command, *map(str, paths)], capture_output=True, text=True,
            timeout=_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        raise AbiToolError(f"abidiff did not finish within {_TIMEOUT} s", status=-1,
                           fix="run the abidiff command by hand to see where it stops") from None
    output = proc.stdout + proc.stderr
    if proc.returncode & 3:
        raise AbiToolError(
            f"abidiff could not compare {show(paths[0])!r} and {show(paths[1])!r} (exit "
            f"status {proc.returncode}): {output.strip()}", fix="give two ELF shared objects",
            status=proc.returncode, output=output,
        )
    c = all(written_in_c(path) for path in paths)
    return AbiReport(paths[0], paths[1], proc.returncode,
                     tuple(parse_report(proc.stdout, c=c)), proc.stdout)


def written_in_c(path: str | os.PathLike[str]) -> bool:
    """Whether every compilation unit in ``path``'s DWARF is C. False without DWARF, or when
    one unit is not C (assembly built with -g, C++) or does not say: then a report keeps the
    spelling of the release that wrote it (``f()`` from 2.2 and 2.4, ``f(void)`` from 2.6)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        if section_named(elf, ".debug_info") is None:
            return False
        languages = set()
        for cu in elf.get_dwarf_info().iter_CUs():
            attr = cu.get_top_DIE().attributes.get("DW_AT_language")
            languages.add(attr.value if attr is not None else None)
    return bool(languages) and languages <= _C_LANGUAGES


def parse_report(text: str, *, c: bool = False) -> list[Change]:
    """The changes in an abidiff report, with where each one is.

    ``c``: the files are C, so an empty parameter list in a quoted name or type reads
    ``(void)`` whichever libabigail wrote the report (2.2 and 2.4 write ``f()``, 2.6
    ``f(void)``). Only the quoted spans are touched: libabigail quotes every name and type, and
    never a source location, whose file name could hold ``()``."""
    if c:
        text = _QUOTED.sub(lambda m: m[0].replace("()", "(void)"), text)
    changes: list[Change] = []
    section = ""
    function = ""
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        indent = len(raw) - len(raw.lstrip())
        if indent == 0:
            section = line
            stack = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        listed = re.match(r"\[([DAC])\] (?:'(?:function |method )?([^']*)'|(\S+))", line)
        if listed and indent <= 2:
            function = listed[2] or listed[3] or ""
            stack = []
            if listed[1] == "C":
                continue
            kind = _listed_kind(listed[1], section)
            changes.append(Change(kind, function, f"{kind.split('-')[0]} in the new file"))
            continue
        context = [entry for _, entry in stack]
        stack.append((indent, line))
        if stack[-2:-1] and "data member insertion" in stack[-2][1] and line.startswith("'"):
            changes.append(Change("member-inserted", _where(function, context), line))
        elif stack[-2:-1] and "data member deletion" in stack[-2][1] and line.startswith("'"):
            changes.append(Change("member-removed", _where(function, context), line))
        elif stack[-2:-1] and "member function insertion" in stack[-2][1] and _VIRTUAL.match(line):
            changes.append(Change("virtual-added", _where(function, context), line))
        elif stack[-2:-1] and "member function deletion" in stack[-2][1] and _VIRTUAL.match(line):
            changes.append(Change("virtual-removed", _where(function, context), line))
        elif stack[-2:-1] and "enumerator insertion" in stack[-2][1]:
            changes.append(Change("enumerator-added", _where(function, context), line))
        else:
            for kind, pattern in _CHANGES:
                if pattern.search(line):
                    if kind == "entity-changed" and _QUALIFIER.search(line):
                        kind = "qualifier-changed"  # callers keep working
                    changes.append(Change(kind, _where(function, context), line))
                    break
    return changes


def _listed_kind(mark: str, section: str) -> str:
    added = mark == "A"
    if "symbol" in section:
        return "added-symbol" if added else "removed-symbol"
    if "variable" in section:
        return "added-variable" if added else "removed-variable"
    return "added-function" if added else "removed-function"


def _where(function: str, context: list[str]) -> str:
    """The path from the function to the change, outermost first: each parameter, return
    type and member it goes through, the struct a member belongs to when no signature shows
    it, and the type the change sits in. ``lab_plugin_entry(void): member create: return
    type: struct lab_state: member options: struct lab_options`` is the member ``options`` of
    the ``struct lab_state`` that ``create``, a member of the returned ``lab_plugin``,
    returns; ``member scale: parameter 2`` a parameter of the function pointer ``scale``."""
    steps: list[tuple[str, str]] = []  # ("param" | "member" | "type", words)
    for line in context:
        param = re.match(r"(parameter \d+|return type)\b", line)
        through = _THROUGH.match(line)
        named = _NAMED.search(line)
        if param:
            steps.append(("param", param[1]))  # a parameter's type shows in its signature
        elif through:
            steps.append(("member", f"member {through[1] or through[2]}"))
        elif named:
            if steps and steps[-1][0] == "type":
                steps.pop()  # a typedef, then the struct underneath: the struct
            steps.append(("type", named[1]))
    if steps[:1] == [("param", "return type")] and steps[1:2] and steps[1][0] == "type":
        del steps[0 if len(steps) == 2 else slice(0, 2)]  # the signature shows the return type
    kept = [
        words for i, (kind, words) in enumerate(steps)
        if not (kind == "type" and 0 < i < len(steps) - 1 and steps[i - 1][0] == "member"
                and steps[i + 1][0] == "member")  # the member's own name says it
    ]
    return ": ".join([function, *kept] if function else kept)


@dataclass(frozen=True)
class Member:
    """One member of a struct as the compiler laid it out."""

    name: str
    type: str
    offset: int
    size: int


@dataclass(frozen=True)
class StructLayout:
    """A struct's size and members, read from DWARF; ``holes`` are the padding gaps as
    (offset, bytes), the tail padding included."""

    name: str
    size: int
    members: tuple[Member, ...]
    path: Path

    @property
    def holes(self) -> tuple[tuple[int, int], ...]:
        gaps = []
        end = 0
        for member in self.members:
            if member.offset > end:
                gaps.append((end, member.offset - end))
            end = max(end, member.offset + member.size)
        if self.size > end:
            gaps.append((end, self.size - end))
        return tuple(gaps)

    def __str__(self) -> str:
        lines = [f"struct {self.name} in {show(self.path)}: {self.size} bytes"]
        rows: list[tuple[int, str]] = [
            (m.offset, f"  {m.offset:>4}  {m.size:>4}  {m.type} {m.name}") for m in self.members
        ]
        rows += [(off, f"  {off:>4}  {size:>4}  (padding)") for off, size in self.holes]
        lines += [text for _, text in sorted(rows)]
        return "\n".join(lines)


def struct_layout(path: str | os.PathLike[str], name: str) -> StructLayout:
    """The layout of ``struct name`` (or a typedef of a struct) in ``path``'s DWARF.

    Raises :class:`~labkit.errors.InputError` when the file has no debug information or
    no such struct (build with ``-g``: labkit's builds do).
    """
    from elftools.elf.elffile import ELFFile

    p = read_elf(path).path
    with open(p, "rb") as f:
        elf = ELFFile(f)
        if section_named(elf, ".debug_info") is None:
            raise InputError(
                f"{show(p)!r} has no DWARF debug information, so its struct layouts are "
                "unknown", fix="build it with -g (labkit's builds do)", path=p,
            )
        dwarf = elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                if die.tag in ("DW_TAG_structure_type", "DW_TAG_typedef") and \
                        _die_name(die) == name:
                    struct = _strip(die)
                    if struct is not None and struct.tag == "DW_TAG_structure_type" and \
                            "DW_AT_byte_size" in struct.attributes:
                        return _layout(p, name, struct)
    raise InputError(
        f"{show(p)!r} has no struct {name!r} in its debug information", fix="check the name; "
        "a struct the code never uses may be left out by the compiler", path=p,
    )


def compare_layouts(
    old: str | os.PathLike[str], new: str | os.PathLike[str], name: str
) -> pandas.DataFrame:
    """``struct name`` in two builds side by side: each member's offset and size in each."""
    import pandas as pd

    a, b = struct_layout(old, name), struct_layout(new, name)
    names = [m.name for m in a.members] + [m.name for m in b.members if m.name not in
                                           {x.name for x in a.members}]
    rows = []
    for member in names:
        ma = next((m for m in a.members if m.name == member), None)
        mb = next((m for m in b.members if m.name == member), None)
        moved = ma is None or mb is None or (ma.offset, ma.size) != (mb.offset, mb.size)
        rows.append((
            member,
            f"{ma.type} @{ma.offset} ({ma.size})" if ma else "-",
            f"{mb.type} @{mb.offset} ({mb.size})" if mb else "-",
            "CHANGED" if moved else "",
        ))
    rows.append(("(size)", str(a.size), str(b.size), "CHANGED" if a.size != b.size else ""))
    return pd.DataFrame(rows, columns=["member", show(a.path), show(b.path), ""])


def _die_name(die: Any) -> str:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode(errors="replace") if attr is not None else ""


def _strip(die: Any) -> Any:
    """Follow typedef, const and volatile to the type underneath."""
    seen = 0
    while die is not None and die.tag in (
        "DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type"
    ) and seen < 16:
        die = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes \
            else None
        seen += 1
    return die


def _type_name(die: Any) -> str:
    if die is None:
        return "void"
    if die.tag == "DW_TAG_pointer_type":
        target = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes \
            else None
        return f"{_type_name(target)} *"
    if die.tag in ("DW_TAG_const_type", "DW_TAG_volatile_type"):
        word = "const" if die.tag == "DW_TAG_const_type" else "volatile"
        target = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes \
            else None
        return f"{word} {_type_name(target)}"
    if die.tag == "DW_TAG_subroutine_type":
        return "function"
    prefix = {"DW_TAG_structure_type": "struct ", "DW_TAG_enumeration_type": "enum ",
              "DW_TAG_union_type": "union "}.get(die.tag, "")
    return prefix + (_die_name(die) or "(anonymous)")


def _type_size(die: Any) -> int:
    die = _strip(die)
    if die is None:
        return 0
    if "DW_AT_byte_size" in die.attributes:
        return int(die.attributes["DW_AT_byte_size"].value)
    if die.tag == "DW_TAG_pointer_type":
        return int(die.cu["address_size"])
    return 0


def _layout(path: Path, name: str, struct: Any) -> StructLayout:
    members = []
    for child in struct.iter_children():
        if child.tag != "DW_TAG_member":
            continue
        location = child.attributes.get("DW_AT_data_member_location")
        offset = int(location.value) if location is not None and \
            isinstance(location.value, int) else 0
        member_type = child.get_DIE_from_attribute("DW_AT_type")
        members.append(Member(_die_name(child), _type_name(member_type), offset,
                              _type_size(member_type)))
    return StructLayout(name, int(struct.attributes["DW_AT_byte_size"].value),
                        tuple(members), path)
