"""labkit: the helper package behind Plugin Lab's notebooks.

Build C into shared objects (:func:`build_shared`), look inside ELF files
(:func:`read_elf`), load them by hand (:func:`load`, :func:`load_fresh`), find out why a file
will not load (:func:`diagnose_load`), and run whatever may crash in a child process
(:func:`run_isolated`). Host C plugins with :class:`PluginHost`, say why a file will not
load with :func:`explain`, and compare two builds' ABI with :func:`abi_diff`. Build Go
programs, plugins and c-shared libraries (:func:`build_go`), read a Go binary's build
information (:func:`go_info`), and check a Go plugin against its host (:func:`go_problems`,
also done by :func:`explain`). Install and discover Python plugins
(:func:`install_plugin`, :func:`transformers`, :func:`plugin_manager`). Run plugins out of
process with hashicorp/go-plugin's protocol in both roles (:mod:`labkit.rpc`,
:class:`PluginClient`). Notebooks import only what this module exports.
"""

from . import rpc
from .abi import (
    AbiReport,
    Change,
    Member,
    StructLayout,
    abi_diff,
    compare_layouts,
    struct_layout,
)
from .asan import AsanReport, asan_report
from .bench import chart as bench_chart
from .bench import run as run_bench
from .bench import table as bench_table
from .binutils import nm_dynamic, readelf_dynamic_symbols, readelf_header
from .build import Artifact, build_executable, build_shared, compile_c
from .choose import MODELS, Fit, ModelAdvisor, Recommendation, advise, tradeoffs
from .constants import RTLD
from .diagnose import Context, Problem, diagnose_load, find_library
from .doctor import report as doctor_report
from .elf import ElfInfo, Header, Section, Symbol, VersionNeed, peek, read_elf, read_soname
from .errors import (
    AbiToolError,
    BuildError,
    ElfError,
    HandshakeError,
    InputError,
    IsolationError,
    LabkitError,
    LoadError,
    PluginError,
    RPCPluginError,
    SymbolError,
    ToolchainError,
    WasmTrap,
)
from .exercises import EXERCISES, Feedback, check
from .exercises import evaluate as evaluate_exercise
from .explain import Verdict, explain
from .figures import CPU_BUDGET, Figure, Measure
from .gobuild import PLUGINS_GO, build_go
from .gocheck import go_problems
from .goinfo import GoInfo, Module, go_info, is_go
from .gosamples import GO_SAMPLES, build_go_samples, dlopen_trace, go_said, host_report, run_go_host
from .host import ENTRY_SYMBOL, Candidate, Plugin, PluginHost, plugin_id
from .isolate import Outcome, run_program
from .isolate import run as run_isolated
from .lab import NotebookEntry, notebook_map, print_map
from .load import Function, Library, c_string, is_mapped, load, load_fresh
from .magics import load_ipython_extension
from .paths import LAB_ROOT, show, tidy
from .pyplugins import PLUGINS_PY, Installed, install_plugin, plugin_manager, transformers
from .rpc import PluginClient, parse_handshake
from .rpc.samples import (
    FAULTS,
    build_rpc_samples,
    faulty_plugin,
    python_plugin,
    response_headers,
    run_go_rpc_host,
)
from .samples import PLUGINS_C, SAMPLES, Sample, build_asan_samples, build_samples
from .wasm import WASM_PLUGIN, WasmPlugin, build_wasm_sample, load_wasm
from .wasm import shout as wasm_shout
from .widgets import PluginPanel

__all__ = [
    "CPU_BUDGET",
    "ENTRY_SYMBOL",
    "GO_SAMPLES",
    "LAB_ROOT",
    "MODELS",
    "PLUGINS_C",
    "PLUGINS_GO",
    "PLUGINS_PY",
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
    "EXERCISES",
    "ElfInfo",
    "FAULTS",
    "Feedback",
    "Figure",
    "Fit",
    "Function",
    "GoInfo",
    "HandshakeError",
    "Header",
    "InputError",
    "Installed",
    "IsolationError",
    "LabkitError",
    "Library",
    "LoadError",
    "Measure",
    "Member",
    "Module",
    "ModelAdvisor",
    "NotebookEntry",
    "Outcome",
    "Plugin",
    "PluginClient",
    "PluginError",
    "PluginHost",
    "PluginPanel",
    "Problem",
    "RPCPluginError",
    "Recommendation",
    "Sample",
    "Section",
    "StructLayout",
    "Symbol",
    "SymbolError",
    "ToolchainError",
    "Verdict",
    "WASM_PLUGIN",
    "WasmPlugin",
    "WasmTrap",
    "VersionNeed",
    "abi_diff",
    "advise",
    "bench_chart",
    "bench_table",
    "build_executable",
    "build_go",
    "build_go_samples",
    "build_rpc_samples",
    "build_samples",
    "build_asan_samples",
    "asan_report",
    "AsanReport",
    "build_shared",
    "build_wasm_sample",
    "c_string",
    "check",
    "compare_layouts",
    "compile_c",
    "diagnose_load",
    "dlopen_trace",
    "doctor_report",
    "evaluate_exercise",
    "explain",
    "faulty_plugin",
    "find_library",
    "go_info",
    "go_said",
    "go_problems",
    "host_report",
    "install_plugin",
    "is_go",
    "is_mapped",
    "load",
    "load_fresh",
    "load_ipython_extension",
    "load_wasm",
    "nm_dynamic",
    "notebook_map",
    "parse_handshake",
    "peek",
    "plugin_id",
    "plugin_manager",
    "print_map",
    "python_plugin",
    "read_elf",
    "read_soname",
    "readelf_dynamic_symbols",
    "readelf_header",
    "response_headers",
    "rpc",
    "run_go_host",
    "run_bench",
    "run_go_rpc_host",
    "run_isolated",
    "run_program",
    "show",
    "struct_layout",
    "tidy",
    "tradeoffs",
    "transformers",
    "wasm_shout",
]
