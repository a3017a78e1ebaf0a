"""labkit: the helper package behind Plugin Lab's notebooks, laid out in the lesson's words.

The foundation: :mod:`.errors` (every error names the thing, the cause and the fix),
:mod:`.paths` (the lab's folders, how a path is shown), :mod:`.toolchain` (cc, zig, go,
abidiff, readelf, nm) and :mod:`.isolate` (whatever may crash, abort or hang runs in a child).
Then one package per thing the lab does:

- :mod:`.build`: compile C (:func:`build_shared`) and Go (:func:`build_go`), cached.
- :mod:`.inspect`: look inside a file without running it: ELF (:func:`read_elf`), a Go
  binary's build information (:func:`go_info`), readelf and nm, ABI (:func:`abi_diff`), a
  wasm module's imports and exports (:func:`read_wasm`).
- :mod:`.diagnose`: will it load, and why not: glibc's loader and the Go runtime's rules
  followed on the files (:func:`diagnose_load`, :func:`go_problems`), the verdict
  (:func:`explain`).
- :mod:`.inprocess`: plugins inside the host's process: dlopen by hand (:func:`load`), the C
  plugin host (:class:`PluginHost`), Python entry points (:func:`transformers`), wasm
  (:func:`load_wasm`) and Extism (:func:`load_extism`).
- :mod:`.rpc`: plugins in their own process, with hashicorp/go-plugin's protocol in both roles
  (:func:`labkit.rpc.serve`, :class:`PluginClient`).
- :mod:`.samples`: the samples of ``plugins/``, built and run (:func:`build_samples`,
  :func:`build_go_samples`, :func:`build_rpc_samples`, :func:`build_wasm_sample`,
  :func:`build_extism_sample`).
- :mod:`.lab`: the notebooks' face: the command line, the doctor, the bench, the trade-off
  table, widgets, cell magics and the exercises (:func:`check`).

Notebooks import only what this module exports. Every name loads its module on first use
(PEP 562), so ``import labkit`` costs little and needs no third-party package: a lesson that
never touches gRPC or wasmtime never imports them, and ``python -m labkit doctor`` runs when
one of them is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import rpc
    from .build.c import Artifact, build_executable, build_shared, compile_c
    from .build.go import build_go
    from .diagnose.goplugin import go_problems
    from .diagnose.trace import LoaderTrace, trace_load
    from .diagnose.verdict import Verdict, explain
    from .diagnose.why import Context, Problem, diagnose_load, find_library
    from .errors import (
        AbiToolError,
        BuildError,
        ElfError,
        ExtismError,
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
    from .inprocess.dlopen import RTLD, Function, Library, c_string, is_mapped, load, load_fresh
    from .inprocess.extism import ExtismPlugin, load_extism
    from .inprocess.host import ENTRY_SYMBOL, Candidate, Plugin, PluginHost, plugin_id
    from .inprocess.namespaces import Beside, call_beside
    from .inprocess.python import Installed, install_plugin, plugin_manager, transformers
    from .inprocess.unload import Unloading, unload
    from .inprocess.wasm import WasmPlugin, load_wasm
    from .inprocess.wasm import shout as wasm_shout
    from .inspect.abi import (
        AbiReport,
        Change,
        Member,
        StructLayout,
        abi_diff,
        compare_layouts,
        struct_layout,
    )
    from .inspect.asan import AsanReport, asan_report
    from .inspect.binutils import demangle, nm_dynamic, readelf_dynamic_symbols, readelf_header
    from .inspect.elf import (
        ElfInfo,
        Header,
        Section,
        Symbol,
        VersionNeed,
        peek,
        read_elf,
        read_soname,
    )
    from .inspect.foreign import MachOInfo, PeInfo, read_foreign, read_macho, read_pe
    from .inspect.goinfo import GoInfo, Module, go_info, is_go
    from .inspect.wasm import WasmInfo, read_wasm
    from .isolate import Outcome, run_program
    from .isolate import run as run_isolated
    from .lab.bench import chart as bench_chart
    from .lab.bench import run as run_bench
    from .lab.bench import table as bench_table
    from .lab.benchrpc import run_rpc as run_rpc_bench
    from .lab.benchrpc import table as rpc_bench_table
    from .lab.choose import MODELS, Fit, ModelAdvisor, Recommendation, advise, tradeoffs
    from .lab.doctor import report as doctor_report
    from .lab.exercises import EXERCISES, Feedback, check
    from .lab.exercises import evaluate as evaluate_exercise
    from .lab.figures import CPU_BUDGET, Figure, Measure, per_call
    from .lab.magics import load_ipython_extension
    from .lab.notebooks import NotebookEntry, notebook_map, print_map
    from .lab.widgets import PluginPanel
    from .paths import LAB_ROOT, PLUGINS_C, PLUGINS_CPP, PLUGINS_GO, PLUGINS_PY, show, tidy
    from .rpc import PluginClient, parse_handshake
    from .samples.c import SAMPLES, Sample, build_asan_samples, build_samples
    from .samples.go import (
        GO_SAMPLES,
        build_go_samples,
        dlopen_trace,
        go_said,
        host_report,
        run_go_host,
    )
    from .samples.platforms import PLATFORMS, build_platform_samples
    from .samples.platforms import side_by_side as platforms_side_by_side
    from .samples.rpc import (
        FAULTS,
        build_rpc_samples,
        faulty_plugin,
        python_plugin,
        response_headers,
        run_go_rpc_host,
    )
    from .samples.wasm import EXTISM_SOURCE, WASM_PLUGIN, build_extism_sample, build_wasm_sample

#: Each public name: the module that defines it and its name there (None: the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    'AbiReport': ('.inspect.abi', 'AbiReport'),
    'AbiToolError': ('.errors', 'AbiToolError'),
    'Artifact': ('.build.c', 'Artifact'),
    'AsanReport': ('.inspect.asan', 'AsanReport'),
    'BuildError': ('.errors', 'BuildError'),
    'CPU_BUDGET': ('.lab.figures', 'CPU_BUDGET'),
    'Candidate': ('.inprocess.host', 'Candidate'),
    'Change': ('.inspect.abi', 'Change'),
    'Context': ('.diagnose.why', 'Context'),
    'ENTRY_SYMBOL': ('.inprocess.host', 'ENTRY_SYMBOL'),
    'EXERCISES': ('.lab.exercises', 'EXERCISES'),
    'ElfError': ('.errors', 'ElfError'),
    'ElfInfo': ('.inspect.elf', 'ElfInfo'),
    'EXTISM_SOURCE': ('.samples.wasm', 'EXTISM_SOURCE'),
    'ExtismError': ('.errors', 'ExtismError'),
    'ExtismPlugin': ('.inprocess.extism', 'ExtismPlugin'),
    'FAULTS': ('.samples.rpc', 'FAULTS'),
    'Feedback': ('.lab.exercises', 'Feedback'),
    'Figure': ('.lab.figures', 'Figure'),
    'Fit': ('.lab.choose', 'Fit'),
    'Function': ('.inprocess.dlopen', 'Function'),
    'GO_SAMPLES': ('.samples.go', 'GO_SAMPLES'),
    'GoInfo': ('.inspect.goinfo', 'GoInfo'),
    'HandshakeError': ('.errors', 'HandshakeError'),
    'Header': ('.inspect.elf', 'Header'),
    'InputError': ('.errors', 'InputError'),
    'Installed': ('.inprocess.python', 'Installed'),
    'IsolationError': ('.errors', 'IsolationError'),
    'LAB_ROOT': ('.paths', 'LAB_ROOT'),
    'LabkitError': ('.errors', 'LabkitError'),
    'Library': ('.inprocess.dlopen', 'Library'),
    'LoadError': ('.errors', 'LoadError'),
    'MODELS': ('.lab.choose', 'MODELS'),
    'Measure': ('.lab.figures', 'Measure'),
    'Member': ('.inspect.abi', 'Member'),
    'ModelAdvisor': ('.lab.choose', 'ModelAdvisor'),
    'Module': ('.inspect.goinfo', 'Module'),
    'NotebookEntry': ('.lab.notebooks', 'NotebookEntry'),
    'Outcome': ('.isolate', 'Outcome'),
    'PLUGINS_C': ('.paths', 'PLUGINS_C'),
    'PLUGINS_CPP': ('.paths', 'PLUGINS_CPP'),
    'PLUGINS_GO': ('.paths', 'PLUGINS_GO'),
    'PLUGINS_PY': ('.paths', 'PLUGINS_PY'),
    'Plugin': ('.inprocess.host', 'Plugin'),
    'PluginClient': ('.rpc', 'PluginClient'),
    'PluginError': ('.errors', 'PluginError'),
    'PluginHost': ('.inprocess.host', 'PluginHost'),
    'PluginPanel': ('.lab.widgets', 'PluginPanel'),
    'Problem': ('.diagnose.why', 'Problem'),
    'RPCPluginError': ('.errors', 'RPCPluginError'),
    'RTLD': ('.inprocess.dlopen', 'RTLD'),
    'Recommendation': ('.lab.choose', 'Recommendation'),
    'SAMPLES': ('.samples.c', 'SAMPLES'),
    'Sample': ('.samples.c', 'Sample'),
    'Section': ('.inspect.elf', 'Section'),
    'StructLayout': ('.inspect.abi', 'StructLayout'),
    'Symbol': ('.inspect.elf', 'Symbol'),
    'SymbolError': ('.errors', 'SymbolError'),
    'ToolchainError': ('.errors', 'ToolchainError'),
    'Verdict': ('.diagnose.verdict', 'Verdict'),
    'VersionNeed': ('.inspect.elf', 'VersionNeed'),
    'WASM_PLUGIN': ('.samples.wasm', 'WASM_PLUGIN'),
    'WasmInfo': ('.inspect.wasm', 'WasmInfo'),
    'WasmPlugin': ('.inprocess.wasm', 'WasmPlugin'),
    'WasmTrapError': ('.errors', 'WasmTrapError'),
    'abi_diff': ('.inspect.abi', 'abi_diff'),
    'advise': ('.lab.choose', 'advise'),
    'asan_report': ('.inspect.asan', 'asan_report'),
    'bench_chart': ('.lab.bench', 'chart'),
    'bench_table': ('.lab.bench', 'table'),
    'rpc_bench_table': ('.lab.benchrpc', 'table'),
    'run_rpc_bench': ('.lab.benchrpc', 'run_rpc'),
    'build_asan_samples': ('.samples.c', 'build_asan_samples'),
    'build_extism_sample': ('.samples.wasm', 'build_extism_sample'),
    'build_executable': ('.build.c', 'build_executable'),
    'build_go': ('.build.go', 'build_go'),
    'build_go_samples': ('.samples.go', 'build_go_samples'),
    'build_rpc_samples': ('.samples.rpc', 'build_rpc_samples'),
    'build_samples': ('.samples.c', 'build_samples'),
    'build_shared': ('.build.c', 'build_shared'),
    'build_wasm_sample': ('.samples.wasm', 'build_wasm_sample'),
    'c_string': ('.inprocess.dlopen', 'c_string'),
    'check': ('.lab.exercises', 'check'),
    'compare_layouts': ('.inspect.abi', 'compare_layouts'),
    'compile_c': ('.build.c', 'compile_c'),
    'diagnose_load': ('.diagnose.why', 'diagnose_load'),
    'dlopen_trace': ('.samples.go', 'dlopen_trace'),
    'doctor_report': ('.lab.doctor', 'report'),
    'evaluate_exercise': ('.lab.exercises', 'evaluate'),
    'explain': ('.diagnose.verdict', 'explain'),
    'faulty_plugin': ('.samples.rpc', 'faulty_plugin'),
    'find_library': ('.diagnose.why', 'find_library'),
    'go_info': ('.inspect.goinfo', 'go_info'),
    'go_problems': ('.diagnose.goplugin', 'go_problems'),
    'go_said': ('.samples.go', 'go_said'),
    'host_report': ('.samples.go', 'host_report'),
    'install_plugin': ('.inprocess.python', 'install_plugin'),
    'is_go': ('.inspect.goinfo', 'is_go'),
    'is_mapped': ('.inprocess.dlopen', 'is_mapped'),
    'load': ('.inprocess.dlopen', 'load'),
    'load_fresh': ('.inprocess.dlopen', 'load_fresh'),
    'load_ipython_extension': ('.lab.magics', 'load_ipython_extension'),
    'load_extism': ('.inprocess.extism', 'load_extism'),
    'load_wasm': ('.inprocess.wasm', 'load_wasm'),
    'nm_dynamic': ('.inspect.binutils', 'nm_dynamic'),
    'demangle': ('.inspect.binutils', 'demangle'),
    'notebook_map': ('.lab.notebooks', 'notebook_map'),
    'parse_handshake': ('.rpc', 'parse_handshake'),
    'peek': ('.inspect.elf', 'peek'),
    'per_call': ('.lab.figures', 'per_call'),
    'plugin_id': ('.inprocess.host', 'plugin_id'),
    'plugin_manager': ('.inprocess.python', 'plugin_manager'),
    'print_map': ('.lab.notebooks', 'print_map'),
    'python_plugin': ('.samples.rpc', 'python_plugin'),
    'read_elf': ('.inspect.elf', 'read_elf'),
    'read_wasm': ('.inspect.wasm', 'read_wasm'),
    'read_soname': ('.inspect.elf', 'read_soname'),
    'readelf_dynamic_symbols': ('.inspect.binutils', 'readelf_dynamic_symbols'),
    'readelf_header': ('.inspect.binutils', 'readelf_header'),
    'response_headers': ('.samples.rpc', 'response_headers'),
    'rpc': ('.rpc', None),
    'run_bench': ('.lab.bench', 'run'),
    'run_go_host': ('.samples.go', 'run_go_host'),
    'run_go_rpc_host': ('.samples.rpc', 'run_go_rpc_host'),
    'run_isolated': ('.isolate', 'run'),
    'run_program': ('.isolate', 'run_program'),
    'show': ('.paths', 'show'),
    'struct_layout': ('.inspect.abi', 'struct_layout'),
    'tidy': ('.paths', 'tidy'),
    'tradeoffs': ('.lab.choose', 'tradeoffs'),
    'trace_load': ('.diagnose.trace', 'trace_load'),
    'unload': ('.inprocess.unload', 'unload'),
    'call_beside': ('.inprocess.namespaces', 'call_beside'),
    'Beside': ('.inprocess.namespaces', 'Beside'),
    'Unloading': ('.inprocess.unload', 'Unloading'),
    'LoaderTrace': ('.diagnose.trace', 'LoaderTrace'),
    'transformers': ('.inprocess.python', 'transformers'),
    'wasm_shout': ('.inprocess.wasm', 'shout'),
    'MachOInfo': ('.inspect.foreign', 'MachOInfo'),
    'PeInfo': ('.inspect.foreign', 'PeInfo'),
    'read_foreign': ('.inspect.foreign', 'read_foreign'),
    'read_macho': ('.inspect.foreign', 'read_macho'),
    'read_pe': ('.inspect.foreign', 'read_pe'),
    'PLATFORMS': ('.samples.platforms', 'PLATFORMS'),
    'build_platform_samples': ('.samples.platforms', 'build_platform_samples'),
    'platforms_side_by_side': ('.samples.platforms', 'side_by_side'),
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


__all__ = [
    "CPU_BUDGET",
    "ENTRY_SYMBOL",
    "GO_SAMPLES",
    "LAB_ROOT",
    "MODELS",
    "PLUGINS_C",
    "PLUGINS_CPP",
    "PLUGINS_GO",
    "PLUGINS_PY",
    "RTLD",
    "SAMPLES",
    "Unloading",
    "Beside",
    "call_beside",
    "unload",
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
    "EXTISM_SOURCE",
    "ExtismError",
    "ExtismPlugin",
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
    "WasmInfo",
    "WasmPlugin",
    "WasmTrapError",
    "VersionNeed",
    "abi_diff",
    "advise",
    "bench_chart",
    "bench_table",
    "rpc_bench_table",
    "build_executable",
    "build_go",
    "build_go_samples",
    "build_rpc_samples",
    "build_samples",
    "build_asan_samples",
    "build_extism_sample",
    "asan_report",
    "AsanReport",
    "build_shared",
    "build_wasm_sample",
    "c_string",
    "check",
    "compare_layouts",
    "compile_c",
    "demangle",
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
    "load_extism",
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
    "read_wasm",
    "read_soname",
    "readelf_dynamic_symbols",
    "readelf_header",
    "response_headers",
    "rpc",
    "run_go_host",
    "run_bench",
    "run_rpc_bench",
    "run_go_rpc_host",
    "run_isolated",
    "run_program",
    "show",
    "struct_layout",
    "tidy",
    "trace_load",
    "LoaderTrace",
    "tradeoffs",
    "transformers",
    "wasm_shout",
    "MachOInfo",
    "PeInfo",
    "read_foreign",
    "read_macho",
    "read_pe",
    "PLATFORMS",
    "build_platform_samples",
    "platforms_side_by_side",
]
