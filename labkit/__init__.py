"""labkit: the helper package behind Plugin Lab's notebooks.

Build C into shared objects (:func:`build_shared`), look inside ELF files
(:func:`read_elf`), load them by hand (:func:`load`, :func:`load_fresh`), find out why a file
will not load (:func:`diagnose_load`), and run whatever may crash in a child process
(:func:`run_isolated`). Host C plugins with :class:`PluginHost`, say why a file will not
load with :func:`explain`, and compare two builds' ABI with :func:`abi_diff`. Notebooks
import only what this module exports.
"""

from .abi import (
    AbiReport,
    Change,
    Member,
    StructLayout,
    abi_diff,
    compare_layouts,
    struct_layout,
)
from .binutils import nm_dynamic, readelf_dynamic_symbols, readelf_header
from .build import Artifact, build_executable, build_shared, compile_c
from .constants import RTLD
from .diagnose import Context, Problem, diagnose_load, find_library
from .doctor import report as doctor_report
from .elf import ElfInfo, Header, Section, Symbol, VersionNeed, peek, read_elf, read_soname
from .errors import (
    AbiToolError,
    BuildError,
    ElfError,
    InputError,
    IsolationError,
    LabkitError,
    LoadError,
    PluginError,
    SymbolError,
    ToolchainError,
)
from .explain import Verdict, explain
from .host import ENTRY_SYMBOL, Candidate, Plugin, PluginHost, plugin_id
from .isolate import Outcome
from .isolate import run as run_isolated
from .lab import NotebookEntry, notebook_map, print_map
from .load import Function, Library, c_string, is_mapped, load, load_fresh
from .paths import LAB_ROOT, show, tidy
from .samples import PLUGINS_C, SAMPLES, Sample, build_samples
from .widgets import PluginPanel

__all__ = [
    "ENTRY_SYMBOL",
    "LAB_ROOT",
    "PLUGINS_C",
    "RTLD",
    "SAMPLES",
    "AbiReport",
    "AbiToolError",
    "Artifact",
    "BuildError",
    "Candidate",
    "Change",
    "Context",
    "ElfError",
    "ElfInfo",
    "Function",
    "Header",
    "InputError",
    "IsolationError",
    "LabkitError",
    "Library",
    "LoadError",
    "Member",
    "NotebookEntry",
    "Outcome",
    "Plugin",
    "PluginError",
    "PluginHost",
    "PluginPanel",
    "Problem",
    "Sample",
    "Section",
    "StructLayout",
    "Symbol",
    "SymbolError",
    "ToolchainError",
    "Verdict",
    "VersionNeed",
    "abi_diff",
    "build_executable",
    "build_samples",
    "build_shared",
    "c_string",
    "compare_layouts",
    "compile_c",
    "diagnose_load",
    "doctor_report",
    "explain",
    "find_library",
    "is_mapped",
    "load",
    "load_fresh",
    "nm_dynamic",
    "notebook_map",
    "peek",
    "plugin_id",
    "print_map",
    "read_elf",
    "read_soname",
    "readelf_dynamic_symbols",
    "readelf_header",
    "run_isolated",
    "show",
    "struct_layout",
    "tidy",
]
