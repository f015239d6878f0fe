"""The rnncount program, and python -m rnncount (also what torchrun runs).

`command` imports the command line (and with it torch, seconds) inside its own Ctrl-C handling: an interrupt
while torch loads ends in one line, like one anywhere later (cli.main). After main, the process's objects are
frozen for a quick exit (runs.freeze_objects); main alone, a library function called in-process, does not.
"""

import sys


def command() -> int:
    try:
        from .cli import main
        from .runs import freeze_objects
    except KeyboardInterrupt:
        print("rnncount: interrupted", file=sys.stderr)
        return 130
    code = main()
    freeze_objects()
    return code


if __name__ == "__main__":
    sys.exit(command())
