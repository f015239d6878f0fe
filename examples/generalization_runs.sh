#!/bin/sh
# The generalization table of docs/generalization.md (the README shows part of it): every cell with every recipe on 3 seeds, trained on length 20
# (lengths 1-20 where the recipe says so), then scored at lengths 20-1000 on fresh reference data.
#   sh examples/generalization_runs.sh [OUT]      then      python examples/generalization_table.py OUT
# Stop it any time and start it again: scored runs are skipped, part-trained ones resumed.
# RECIPES, CELLS, SEEDS (environment) choose a part of the grid, e.g. RECIPES=reference CELLS=gru;
# LENGTHS the lengths scored (20,40,100,200,1000); EXTRA adds flags to every run and LABEL names its
# folder in place of the recipe's, e.g.
#   RECIPES=generalize CELLS=lstm EXTRA="--curriculum 5" LABEL=generalize+curriculum sh examples/generalization_runs.sh
set -e
OUT=${OUT:-${1:-runs/generalization}}
RECIPES=${RECIPES:-"reference generalize"}
CELLS=${CELLS:-"lstm rnn gru"}
SEEDS=${SEEDS:-"0 1 2"}
RNNCOUNT=${RNNCOUNT:-rnncount}
LENGTHS=${LENGTHS:-20,40,100,200,1000}
for recipe in $RECIPES; do
  for cell in $CELLS; do
    for seed in $SEEDS; do
      run=$OUT/${LABEL:-$recipe}/$cell-seed$seed
      mkdir -p "$OUT/${LABEL:-$recipe}"
      if [ ! -f "$run/generalization.json" ]; then
        if [ -f "$run/model.pt" ]; then  # stopped part-way: continue (or just score) the saved run
          $RNNCOUNT train --resume "$run" >> "$run.log" 2>&1 || { echo "$run: training failed (see $run.log)"; continue; }
        else
          $RNNCOUNT train --cell "$cell" --recipe "$recipe" --seed "$seed" --out "$run" --force $EXTRA > "$run.log" 2>&1 \
            || { echo "$run: training failed (see $run.log)"; continue; }
        fi
        $RNNCOUNT generalize --model "$run/model.pt" --lengths "$LENGTHS" >> "$run.log"
      fi
      echo "$run: $(tail -n +4 "$run/generalization.md" | head -1) ... $(tail -1 "$run/generalization.md")"
    done
  done
done
