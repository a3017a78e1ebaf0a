"""labkit: the helper package behind Plugin Lab's notebooks.

Build C into shared objects (:func:`build_shared`), look inside ELF files
(:func:`read_elf`), load them by hand (:func:`load`, :func:`load_fresh`), find out why a file
will not load (:func:`diagnose_load`), and run whatever may crash in a child process
(:func:`run_isolated`). Notebooks import only what this module exports.
"""

from .binutils import nm_dynamic, readelf_dynamic_symbols, readelf_header
from .build import Artifact, build_executable, build_shared, compile_c
from .constants import RTLD
from .diagnose import Problem, diagnose_load, find_library
from .doctor import report as doctor_report
from .elf import ElfInfo, Header, Section, Symbol, VersionNeed, peek, read_elf, read_soname
from .errors import (
    BuildError,
    ElfError,
    InputError,
    IsolationError,
    LabkitError,
    LoadError,
    SymbolError,
    ToolchainError,
)
from .isolate import Outcome
from .isolate import run as run_isolated
from .lab import NotebookEntry, notebook_map, print_map
from .load import Function, Library, c_string, is_mapped, load, load_fresh
from .paths import LAB_ROOT, show, tidy

__all__ = [
    "LAB_ROOT",
    "RTLD",
    "Artifact",
    "BuildError",
    "ElfError",
    "ElfInfo",
    "Function",
    "Header",
    "InputError",
    "IsolationError",
    "LabkitError",
    "Library",
    "NotebookEntry",
    "LoadError",
    "Outcome",
    "Problem",
    "Section",
    "Symbol",
    "SymbolError",
    "ToolchainError",
    "VersionNeed",
    "build_executable",
    "build_shared",
    "c_string",
    "compile_c",
    "diagnose_load",
    "doctor_report",
    "find_library",
    "is_mapped",
    "load",
    "load_fresh",
    "nm_dynamic",
    "notebook_map",
    "peek",
    "print_map",
    "read_elf",
    "read_soname",
    "readelf_dynamic_symbols",
    "readelf_header",
    "run_isolated",
    "show",
    "tidy",
]
