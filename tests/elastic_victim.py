"""`python -m rnncount ARGS` for torchrun, except that on the group's first start rank 1 SIGKILLs itself once
rank 0 has saved epoch KILL_AFTER; run as `torchrun ... elastic_victim.py KILL_AFTER train ... --out DIR`.

Rank 1 waits for the checkpoint so that the kill lands at a known epoch whatever the machine's load: rank 0
has saved it and is waiting in the next epoch's first all-reduce for the rank that will never come.
"""

import os
import signal
import sys
import time
from pathlib import Path

from rnncount import cli
from rnncount.checkpoint import CheckpointError, read_checkpoint
from rnncount.elastic import restart_count
from rnncount.train import Trainer


def saved_epoch(path: Path) -> int:
    try:
        return read_checkpoint(path)["epoch"]
    except CheckpointError:  # not written yet
        return 0


def die_after(epoch: int, model_file: Path) -> None:
    epochs = Trainer.epochs

    def epochs_then_die(self, progress=False):
        for metrics in epochs(self, progress):
            yield metrics
            if metrics.epoch == epoch:  # the caller has done its part of the epoch's checkpoint
                deadline = time.monotonic() + 120
                while saved_epoch(model_file) < epoch and time.monotonic() < deadline:
                    time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGKILL)

    Trainer.epochs = epochs_then_die


if __name__ == "__main__":
    kill_after, argv = int(sys.argv[1]), sys.argv[2:]
    if restart_count() == 0 and os.environ.get("RANK") == "1":
        die_after(kill_after, Path(argv[argv.index("--out") + 1]) / "model.pt")
    sys.exit(cli.main(argv))
