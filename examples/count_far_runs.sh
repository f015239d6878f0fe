#!/bin/sh
# docs/counting-far.md's tables: the LSTM with --recipe far (and with generalize, for comparison) on 3 seeds,
# scored at lengths up to 100,000, then the ablation: the recipe's settings with one ingredient removed at
# a time (each row is the reference's defaults plus the recipe's flags minus one group), scored up to 10,000.
#   sh examples/count_far_runs.sh [OUT]       then      python examples/count_far_table.py OUT
# Stop it any time and start it again (examples/generalization_runs.sh skips scored runs, resumes the rest).
set -e
OUT=${1:-runs/count10k}
RUNS="$(dirname "$0")/generalization_runs.sh"
export OUT CELLS=lstm SEEDS="${SEEDS:-0 1 2}"
LONG=20,100,1000,10000,100000
RECIPES=far LENGTHS=$LONG sh "$RUNS"
RECIPES=generalize LENGTHS=$LONG sh "$RUNS"
ablate() {  # LABEL FLAGS...: --recipe reference plus FLAGS
  label=$1; shift
  RECIPES=reference LABEL="$label" EXTRA="$*" LENGTHS=20,100,1000,10000 sh "$RUNS"
}
LENGTHS1="--min-length 1"; STEP="--step-loss 1"; SCHEDULE="--lr 3e-3 --lr-end 1e-6"
READOUT="--readout c"; FORGET="--forget-bias 20"; DECAY="--recurrent-decay 100"
ablate far-without-readout-c $LENGTHS1 $STEP $SCHEDULE $FORGET $DECAY
ablate far-without-forget-bias $LENGTHS1 $STEP $SCHEDULE $READOUT $DECAY
ablate far-without-step-loss $LENGTHS1 $SCHEDULE $READOUT $FORGET $DECAY
ablate far-without-recurrent-decay $LENGTHS1 $STEP $SCHEDULE $READOUT $FORGET
ablate far-without-lengths-1-20 $STEP $SCHEDULE $READOUT $FORGET $DECAY
ablate far-without-lr-schedule $LENGTHS1 $STEP $READOUT $FORGET $DECAY
# the three that the ablation finds necessary, alone: fixed length 20, loss on the final count, Adam at 1e-3
ablate far-only-readout-forget-decay $READOUT $FORGET $DECAY
