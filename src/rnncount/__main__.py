"""python -m rnncount: the command line (also run by torchrun)."""

import sys

from .cli import command

sys.exit(command())
