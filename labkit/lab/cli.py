"""The command line: ``python -m labkit doctor | warm | explain | abi-diff | bench``.

Exit status 0 when all is well, 1 when the answer is "no" (something missing, a file that
will not load, an incompatible ABI), 2 on a usage or tool error.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import LabkitError
from ..paths import paths_as_given

_EXPLAIN = """A shared object is checked for loading with dlopen, a program for running; --load,
--host or --require check a program for loading too (dlopen refuses programs). Exit status:
0 it will load (or run), 1 it will not (this includes a file that is empty, not ELF or
truncated), 2 a usage or tool error (a missing path, a directory, an unreadable file, a
host labkit cannot read)."""
_ABI_DIFF = """exit status: 0 compatible, 1 incompatible, 2 a tool error (abidiff missing, a file
that is missing, unreadable or not ELF)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labkit", description="Plugin Lab's helper commands."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("doctor", help="check that everything the lab needs is installed")
    warming = commands.add_parser(
        "warm", help="pre-build the caches the notebooks use (Binder does this)")
    warming.add_argument("--for-image", action="store_true",
                      help="then remove the older Go toolchain, whose one build is cached "
                      "(binder/postBuild does this)")
    explain = commands.add_parser(
        "explain", help="say why a shared object or program will not load or run here",
        epilog=_EXPLAIN,
    )
    explain.add_argument("file", help="a shared object (.so) or a program; a Windows DLL or a "
                         "macOS dylib gets what its own platform would refuse")
    explain.add_argument("--host", help="the program that will load FILE: its symbols count")
    explain.add_argument("--require", action="append", default=[], metavar="SYMBOL",
                         help="a symbol the host looks up in FILE (repeatable)")
    explain.add_argument("--load", action="store_true",
                         help="check that dlopen loads FILE even when it is a program")
    abi = commands.add_parser(
        "abi-diff", help="compare the ABI of two builds with abidiff", epilog=_ABI_DIFF,
    )
    abi.add_argument("old")
    abi.add_argument("new")
    abi.add_argument("--struct", action="append", default=[], metavar="NAME",
                     help="also show this struct's layout in both builds (repeatable)")
    bench = commands.add_parser(
        "bench", help="measure what each plugin model costs per call and at start-up")
    bench.add_argument("what", nargs="?", choices=["all", "rpc"], default="all",
                       help="all models (default), or only the RPC round trips")
    bench.add_argument("--quick", action="store_true", help="fewer samples: under 20 s")
    bench.add_argument("--calls", type=int, default=400,
                       help="rpc: calls per batch, 5 batches of each round trip")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    with paths_as_given():
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command == "doctor":
            from .doctor import main as doctor

            return doctor()
        if args.command == "explain":
            from ..diagnose.verdict import explain as run_explain

            verdict = run_explain(args.file, host=args.host, require=args.require,
                                  load=True if args.load else None)
            print(verdict)
            return 0 if verdict.ok else 1
        if args.command == "abi-diff":
            return _abi_diff(args.old, args.new, args.struct)
        if args.command == "bench":
            if args.calls < 1:
                parser.error(f"--calls must be at least 1, not {args.calls}")
            from .bench import main as bench

            return bench(args.json, args.quick, args.calls if args.what == "rpc" else None)
        from .warm import warm

        warm(for_image=args.for_image)
        return 0
    except LabkitError as exc:
        print(f"labkit {args.command}: {exc}", file=sys.stderr)
        return 2


def _abi_diff(old: str, new: str, structs: list[str]) -> int:
    from ..inspect.abi import abi_diff, compare_layouts

    report = abi_diff(old, new)
    print(report)
    for name in structs:
        print(f"\nstruct {name}:")
        print(compare_layouts(old, new, name).to_string(index=False))
    return 0 if report.compatible else 1
