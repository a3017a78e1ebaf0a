"""labkit: the helper package behind Plugin Lab's notebooks.

Build C into shared objects (:func:`build_shared`), look inside ELF files
(:func:`read_elf`), load them by hand (:func:`load`, :func:`load_fresh`), find out why a file
will not load (:func:`diagnose_load`), and run whatever may crash in a child process
(:func:`run_isolated`). Notebooks import only what this module exports.
"""

from .build import Artifact, build_executable, build_shared, compile_c
from .constants import RTLD
from .diagnose import Problem, diagnose_load, find_library
from .elf import ElfInfo, Header, Section, Symbol, VersionNeed, peek, read_elf
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
from .load import Function, Library, is_mapped, load, load_fresh
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
    "compile_c",
    "diagnose_load",
    "find_library",
    "is_mapped",
    "load",
    "load_fresh",
    "peek",
    "read_elf",
    "run_isolated",
    "show",
    "tidy",
]
