"""python -m rnncount: the command line (also run by torchrun)."""

import sys

from .cli import main

sys.exit(main())
