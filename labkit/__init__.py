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

Every name loads its module on first use (PEP 562), so ``import labkit`` costs little and
needs no third-party package: a lesson that never touches gRPC or wasmtime never imports
them, and ``python -m labkit doctor`` runs when one of them is missing.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        WasmTrapError,
    )
    from .exercises import EXERCISES, Feedback, check
    from .exercises import evaluate as evaluate_exercise
    from .explain import Verdict, explain
    from .figures import CPU_BUDGET, Figure, Measure, per_call
    from .gobuild import build_go
    from .gocheck import go_problems
    from .goinfo import GoInfo, Module, go_info, is_go
    from .gosamples import (
        GO_SAMPLES,
        build_go_samples,
        dlopen_trace,
        go_said,
        host_report,
        run_go_host,
    )
    from .host import ENTRY_SYMBOL, Candidate, Plugin, PluginHost, plugin_id
    from .isolate import Outcome, run_program
    from .isolate import run as run_isolated
    from .lab import NotebookEntry, notebook_map, print_map
    from .load import RTLD, Function, Library, c_string, is_mapped, load, load_fresh
    from .magics import load_ipython_extension
    from .paths import LAB_ROOT, PLUGINS_C, PLUGINS_GO, PLUGINS_PY, show, tidy
    from .pyplugins import Installed, install_plugin, plugin_manager, transformers
    from .rpc import PluginClient, parse_handshake
    from .rpc.samples import (
        FAULTS,
        build_rpc_samples,
        faulty_plugin,
        python_plugin,
        response_headers,
        run_go_rpc_host,
    )
    from .samples import SAMPLES, Sample, build_asan_samples, build_samples
    from .wasm import WASM_PLUGIN, WasmPlugin, build_wasm_sample, load_wasm
    from .wasm import shout as wasm_shout
    from .widgets import PluginPanel

#: Each public name: the module that defines it and its name there (None: the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    'AbiReport': ('.abi', 'AbiReport'),
    'AbiToolError': ('.errors', 'AbiToolError'),
    'Artifact': ('.build', 'Artifact'),
    'AsanReport': ('.asan', 'AsanReport'),
    'BuildError': ('.errors', 'BuildError'),
    'CPU_BUDGET': ('.figures', 'CPU_BUDGET'),
    'Candidate': ('.host', 'Candidate'),
    'Change': ('.abi', 'Change'),
    'Context': ('.diagnose', 'Context'),
    'ENTRY_SYMBOL': ('.host', 'ENTRY_SYMBOL'),
    'EXERCISES': ('.exercises', 'EXERCISES'),
    'ElfError': ('.errors', 'ElfError'),
    'ElfInfo': ('.elf', 'ElfInfo'),
    'FAULTS': ('.rpc.samples', 'FAULTS'),
    'Feedback': ('.exercises', 'Feedback'),
    'Figure': ('.figures', 'Figure'),
    'Fit': ('.choose', 'Fit'),
    'Function': ('.load', 'Function'),
    'GO_SAMPLES': ('.gosamples', 'GO_SAMPLES'),
    'GoInfo': ('.goinfo', 'GoInfo'),
    'HandshakeError': ('.errors', 'HandshakeError'),
    'Header': ('.elf', 'Header'),
    'InputError': ('.errors', 'InputError'),
    'Installed': ('.pyplugins', 'Installed'),
    'IsolationError': ('.errors', 'IsolationError'),
    'LAB_ROOT': ('.paths', 'LAB_ROOT'),
    'LabkitError': ('.errors', 'LabkitError'),
    'Library': ('.load', 'Library'),
    'LoadError': ('.errors', 'LoadError'),
    'MODELS': ('.choose', 'MODELS'),
    'Measure': ('.figures', 'Measure'),
    'Member': ('.abi', 'Member'),
    'ModelAdvisor': ('.choose', 'ModelAdvisor'),
    'Module': ('.goinfo', 'Module'),
    'NotebookEntry': ('.lab', 'NotebookEntry'),
    'Outcome': ('.isolate', 'Outcome'),
    'PLUGINS_C': ('.paths', 'PLUGINS_C'),
    'PLUGINS_GO': ('.paths', 'PLUGINS_GO'),
    'PLUGINS_PY': ('.paths', 'PLUGINS_PY'),
    'Plugin': ('.host', 'Plugin'),
    'PluginClient': ('.rpc', 'PluginClient'),
    'PluginError': ('.errors', 'PluginError'),
    'PluginHost': ('.host', 'PluginHost'),
    'PluginPanel': ('.widgets', 'PluginPanel'),
    'Problem': ('.diagnose', 'Problem'),
    'RPCPluginError': ('.errors', 'RPCPluginError'),
    'RTLD': ('.load', 'RTLD'),
    'Recommendation': ('.choose', 'Recommendation'),
    'SAMPLES': ('.samples', 'SAMPLES'),
    'Sample': ('.samples', 'Sample'),
    'Section': ('.elf', 'Section'),
    'StructLayout': ('.abi', 'StructLayout'),
    'Symbol': ('.elf', 'Symbol'),
    'SymbolError': ('.errors', 'SymbolError'),
    'ToolchainError': ('.errors', 'ToolchainError'),
    'Verdict': ('.explain', 'Verdict'),
    'VersionNeed': ('.elf', 'VersionNeed'),
    'WASM_PLUGIN': ('.wasm', 'WASM_PLUGIN'),
    'WasmPlugin': ('.wasm', 'WasmPlugin'),
    'WasmTrapError': ('.errors', 'WasmTrapError'),
    'abi_diff': ('.abi', 'abi_diff'),
    'advise': ('.choose', 'advise'),
    'asan_report': ('.asan', 'asan_report'),
    'bench_chart': ('.bench', 'chart'),
    'bench_table': ('.bench', 'table'),
    'build_asan_samples': ('.samples', 'build_asan_samples'),
    'build_executable': ('.build', 'build_executable'),
    'build_go': ('.gobuild', 'build_go'),
    'build_go_samples': ('.gosamples', 'build_go_samples'),
    'build_rpc_samples': ('.rpc.samples', 'build_rpc_samples'),
    'build_samples': ('.samples', 'build_samples'),
    'build_shared': ('.build', 'build_shared'),
    'build_wasm_sample': ('.wasm', 'build_wasm_sample'),
    'c_string': ('.load', 'c_string'),
    'check': ('.exercises', 'check'),
    'compare_layouts': ('.abi', 'compare_layouts'),
    'compile_c': ('.build', 'compile_c'),
    'diagnose_load': ('.diagnose', 'diagnose_load'),
    'dlopen_trace': ('.gosamples', 'dlopen_trace'),
    'doctor_report': ('.doctor', 'report'),
    'evaluate_exercise': ('.exercises', 'evaluate'),
    'explain': ('.explain', 'explain'),
    'faulty_plugin': ('.rpc.samples', 'faulty_plugin'),
    'find_library': ('.diagnose', 'find_library'),
    'go_info': ('.goinfo', 'go_info'),
    'go_problems': ('.gocheck', 'go_problems'),
    'go_said': ('.gosamples', 'go_said'),
    'host_report': ('.gosamples', 'host_report'),
    'install_plugin': ('.pyplugins', 'install_plugin'),
    'is_go': ('.goinfo', 'is_go'),
    'is_mapped': ('.load', 'is_mapped'),
    'load': ('.load', 'load'),
    'load_fresh': ('.load', 'load_fresh'),
    'load_ipython_extension': ('.magics', 'load_ipython_extension'),
    'load_wasm': ('.wasm', 'load_wasm'),
    'nm_dynamic': ('.binutils', 'nm_dynamic'),
    'notebook_map': ('.lab', 'notebook_map'),
    'parse_handshake': ('.rpc', 'parse_handshake'),
    'peek': ('.elf', 'peek'),
    'per_call': ('.figures', 'per_call'),
    'plugin_id': ('.host', 'plugin_id'),
    'plugin_manager': ('.pyplugins', 'plugin_manager'),
    'print_map': ('.lab', 'print_map'),
    'python_plugin': ('.rpc.samples', 'python_plugin'),
    'read_elf': ('.elf', 'read_elf'),
    'read_soname': ('.elf', 'read_soname'),
    'readelf_dynamic_symbols': ('.binutils', 'readelf_dynamic_symbols'),
    'readelf_header': ('.binutils', 'readelf_header'),
    'response_headers': ('.rpc.samples', 'response_headers'),
    'rpc': ('.rpc', None),
    'run_bench': ('.bench', 'run'),
    'run_go_host': ('.gosamples', 'run_go_host'),
    'run_go_rpc_host': ('.rpc.samples', 'run_go_rpc_host'),
    'run_isolated': ('.isolate', 'run'),
    'run_program': ('.isolate', 'run_program'),
    'show': ('.paths', 'show'),
    'struct_layout': ('.abi', 'struct_layout'),
    'tidy': ('.paths', 'tidy'),
    'tradeoffs': ('.choose', 'tradeoffs'),
    'transformers': ('.pyplugins', 'transformers'),
    'wasm_shout': ('.wasm', 'shout'),
}


def __getattr__(name: str) -> Any:
    """Import the module behind ``name`` on first use, and keep the value as an attribute."""
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}") from None
    value = importlib.import_module(module, __name__)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Labkit(types.ModuleType):
    """The package's module type: importing a submodule binds it on its package, and
    ``labkit.explain`` and ``labkit.load`` are the functions, not their modules of the same
    name. A submodule bound under a public name is replaced by that name's value."""

    def __setattr__(self, name: str, value: Any) -> None:
        entry = _LAZY.get(name)
        if isinstance(value, types.ModuleType) and entry is not None and entry[1] is not None:
            value = getattr(value, entry[1])
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Labkit


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
    "WasmTrapError",
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
    "per_call",
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
