"""The command line: ``python -m labkit doctor | warm``.

Exit status 0 when all is well, 1 when the answer is "no" (something missing), 2 on a
usage or tool error.
"""

from __future__ import annotations

import argparse
import sys

from .errors import LabkitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labkit", description="Plugin Lab's helper commands."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("doctor", help="check that everything the lab needs is installed")
    commands.add_parser("warm", help="pre-build the caches the notebooks use (Binder does this)")
    args = parser.parse_args(argv)
    try:
        if args.command == "doctor":
            from .doctor import main as doctor

            return doctor()
        from .warm import warm

        warm()
        return 0
    except LabkitError as exc:
        print(f"labkit {args.command}: {exc}", file=sys.stderr)
        return 2
