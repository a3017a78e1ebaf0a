"""Exercises of notebook 04, ABI mismatches: the learner builds a library release, a plugin
that tells the truth about its ABI, and a compatible change of the interface; the judges read
symbol versions and DWARF, run abidiff, and load the builds with the v1 host in a child."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...build.c import build_shared
from ...errors import InputError
from ...inprocess.host import PluginHost
from ...inspect.abi import abi_diff, struct_layout
from ...inspect.elf import read_elf
from ...isolate import run as run_isolated
from ...paths import PLUGINS_C
from ...samples.c import build_samples
from .framework import Exercise, RefusedError
from .judging import built_file, copy_into, said, shown, snippet, workspace
from .plugin_host import host_verdict, in_plugin_folder

_OLD_USER = ("#include <stddef.h>\nsize_t helper_length(const char *text);\n"
             "size_t old_length(const char *text) { return helper_length(text); }\n")
_RELEASE_2 = """
import labkit
host = labkit.PluginHost({plugins!r})
shouted = host.load("needs_version").transform("plugin lab")
old = labkit.load({old!r}).function("old_length", "size_t(const char *)")(b"four")
result([shouted, old])
"""


def helper_release_2(answer: Any) -> str:
    path = built_file(answer, "your libhelper.so (what labkit.build_shared returned)")
    info = read_elf(path)
    defined = list(info.version_defs)
    if "LABHELPER_2.0" not in defined:
        unversioned = (" A library without versions would only make the loader warn and bind "
                       "blindly; the version is what lets it refuse a mismatch."
                       if not defined else "")
        defines = f"the symbol versions {defined}" if defined else "no symbol versions"
        raise RefusedError(f"{shown(path)} defines {defines}; needs_version asks for "
                           f"LABHELPER_2.0.{unversioned}")
    if "LABHELPER_1.0" not in defined:
        raise RefusedError(f"{shown(path)} defines {defined}: plugins built against release 1 ask "
                           "for LABHELPER_1.0, and would no longer load")
    with workspace() as tmp:
        plugins = tmp / "plugins"
        build_samples(plugins)
        old = build_shared(_OLD_USER, "old_user", libs=[plugins / "lib" / "libhelper.so"],
                           ldflags=["-Wl,-rpath,$ORIGIN/lib"], out_dir=plugins)
        copy_into(path, plugins / "lib", "libhelper.so")
        outcome, seen = snippet(_RELEASE_2.format(plugins=str(plugins), old=str(old.path)),
                                timeout=30)
    if not outcome.ok or seen is None:
        raise RefusedError(f"with your library as the plugin folder's lib/libhelper.so, loading "
                           f"needs_version and a plugin built against release 1, in a child: "
                           f"{said(outcome, 2)}")
    shouted, length = seen
    if shouted != "PLUGIN LAB":
        raise RefusedError(f"needs_version loaded, but transform('plugin lab') gave {shouted!r}: "
                           "helper_shout should upper-case the text, as release 2's does")
    if length != 4:
        raise RefusedError(f"a plugin built against release 1 got helper_length('four') = {length}")
    return ("with your libhelper.so (LABHELPER_1.0 and LABHELPER_2.0), needs_version loads and "
            "shouts, and a plugin built against release 1 still loads")


def tells_the_truth(answer: Any) -> str:
    path = built_file(answer, "your plugin (what labkit.build_shared returned)")
    try:
        members = [m.name for m in struct_layout(path, "lab_options").members]
    except InputError as error:
        raise RefusedError(f"the check reads lab_options from the build's DWARF: {error}") from None
    if "indent" not in members:
        raise RefusedError(f"its lab_options has version 1's members {members}: build upper.c "
                           "against a header with plugin_api_v2.h's layout, as upper_v2 was")
    check, declared = host_verdict(answer, "the v1 host")
    if check is None:
        raise RefusedError(
            "the v1 host accepted it: it still says ABI version 1, so the host would "
            "fill lab_options with the old layout and call it")
    if check != "abi-version":
        raise RefusedError(
            f"the v1 host refused it at the check {check!r} (it declared {declared}), "
            "not at its version check")
    return (f"the v1 host refused it at 'abi-version': it declares ABI version "
            f"{declared['abi_version']}, and its lab_options is {', '.join(members)}")


def enumerators(path: Path, enum: str) -> dict[str, int]:
    """The values of ``enum``'s enumerators in ``path``'s DWARF (empty if it has none)."""
    from elftools.elf.elffile import ELFFile

    found: dict[str, int] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        if not elf.has_dwarf_info():
            return found
        for unit in elf.get_dwarf_info().iter_CUs():
            for die in unit.iter_DIEs():
                name = die.attributes.get("DW_AT_name")
                if die.tag != "DW_TAG_enumeration_type" or name is None:
                    continue
                if name.value.decode(errors="replace") != enum:
                    continue
                for child in die.iter_children():
                    if child.tag == "DW_TAG_enumerator":
                        found[child.attributes["DW_AT_name"].value.decode()] = int(
                            child.attributes["DW_AT_const_value"].value)
    return found


#: (options, text, what upper built against plugin_api.h answers).
OPTION_CASES: tuple[tuple[dict[str, Any], str, str], ...] = (
    ({"letter_case": "upper", "repeat": 2}, "hello", "HELLOHELLO"),
    ({"letter_case": "lower", "repeat": 3}, "ABI", "abiabiabi"),
    ({"letter_case": "keep", "repeat": 1, "width": 7}, "MiXed", "MiXed"),
)


def _with_options(folder: Path, pid: str) -> list[str]:
    results = []
    for options, text, _ in OPTION_CASES:
        plugin = PluginHost(folder).load(pid, **options)
        results.append(plugin.transform(text))
        plugin.close()
    return results


def compatible_title(answer: Any) -> str:
    path = built_file(answer, "your plugin (what labkit.build_shared returned)")
    values = enumerators(path, "lab_case")
    if "LAB_CASE_TITLE" not in values:
        raise RefusedError(
            f"its enum lab_case is {values or 'not in its DWARF'}: no LAB_CASE_TITLE")
    with workspace() as tmp:
        upper = build_shared(PLUGINS_C / "upper.c", out_dir=tmp / "v1")
        report = abi_diff(upper.path, path)
        if not report.compatible:
            breaking = [str(change) for change in report.changes if change.breaking]
            raise RefusedError(f"abi-diff against upper.c built with plugin_api.h finds "
                               f"{len(breaking)} breaking change(s), the first: {breaking[0]}")
        folder, pid = in_plugin_folder(answer, tmp)
        outcome = run_isolated(_with_options, folder, pid, timeout=30)
    if not outcome.ok:
        raise RefusedError(f"loading it with the v1 host in a child: {said(outcome)}")
    for (options, text, expected), got in zip(OPTION_CASES, outcome.value, strict=True):
        if got != expected:
            raise RefusedError(f"with {options} the v1 host got {got!r} for {text!r}, where upper "
                               f"answers {expected!r}")
    return (f"LAB_CASE_TITLE = {values['LAB_CASE_TITLE']}, abi-diff finds nothing breaking "
            "against upper, and the v1 host gets upper's answers")


EXERCISES = [
    Exercise(
        "04.1",
        "Build a libhelper.so that makes needs_version load and still serves plugins built "
        "against release 1.",
        ("Most symbol versions are not written in C: the linker assigns them, from a file "
         "you give it.",
         "Section 6 (A symbol version that does not exist here): the file it prints; "
         "labkit.read_elf(lib).version_defs checks your build."),
        helper_release_2),
    Exercise(
        "04.2",
        "Build upper.c with plugin_api_v2.h's layout so that the v1 host refuses it at its "
        "version check.",
        ("The host already has a check that would refuse this plugin, if the plugin told "
         "the truth.",
         "Section 9 (The defences), notebook 03's future_abi sample, and upper_v2.c, which "
         "builds upper.c against another header."),
        tells_the_truth),
    Exercise(
        "04.3",
        "Add LAB_CASE_TITLE to a copy of plugin_api.h without breaking v1 hosts, and build "
        "upper.c against it.",
        ("Old hosts keep sending the numbers they were compiled with: no old value may "
         "change.",
         "Section 4 (Caught before loading: abi-diff): which enum change it marks ok and "
         "which BREAKS; upper_v2.c shows how to build upper.c against a header."),
        compatible_title),
]
