"""``python -m labkit``: see :mod:`labkit.lab.cli`."""

import os
import sys

from .lab.cli import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:  # the reader stopped early (| head): not an error of ours
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 0
sys.exit(status)
