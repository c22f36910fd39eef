#!/usr/bin/env bash
# Trains the shipped `prosqa-recurrent` model from scratch and ships it (docs/recurrent.md).
# A curriculum of five stages, each a `latent-explorer train recurrent` run that starts from the
# previous stage's weights (--base): one hop on small graphs first, then more hops on larger
# graphs (the first generator's sparse ones: these stages were trained before it changed), then
# ProsQA-sized graphs as dense as the validation set's, with every hop. Every stage is seeded and resumable: run the
# script again after an interruption and it goes on where it stopped.
#   bash recipes/prosqa-recurrent.sh            (RUNS=runs/prosqa-reach, THREADS=1, SHIP=1)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/prosqa-reach}
THREADS=${THREADS:-1}
STEPS=${STEPS:-2000}
LAST_STEPS=${LAST_STEPS:-6000}
BIN=${BIN:-.venv/bin}
export OMP_NUM_THREADS=$THREADS HF_HUB_OFFLINE=1
SPARSE="--layout sparse --max-extra-persons 3 --max-parents 3"   # the first generator's graphs
# stage: nodes min, nodes max, target hops min..max of the generated problems, hops taught (0: all), steps, graphs
STAGES=(
  "s0 6 10 1 1 1 $STEPS sparse"
  "s1 6 10 1 2 2 $STEPS sparse"
  "s2 8 14 1 3 3 $STEPS sparse"
  "s3 10 18 1 4 4 $STEPS sparse"
  "s4 14 28 3 6 0 $LAST_STEPS split"
)
base=()
for i in "${!STAGES[@]}"; do
  read -r name lo hi hmin hmax teach steps graphs <<< "${STAGES[$i]}"
  dir=$RUNS/$name
  layout=()
  [ "$graphs" = sparse ] && layout=($SPARSE)
  [ -f "$dir/train.json" ] || "$BIN/python" -m explorer.tasks.prosqa.generate "$dir/train.json" --n 3000 \
      --seed $((100 + i)) --min-nodes "$lo" --max-nodes "$hi" --min-hops "$hmin" --max-hops "$hmax" "${layout[@]}"
  "$BIN/latent-explorer" train recurrent "$dir" --train "$dir/train.json" "${base[@]}" --task reach \
      --max-hops "$teach" --queries 8 --n-embd 64 --n-heads 4 --intermediate-size 128 --batch-size 16 --lr 2e-3 \
      --warmup-steps 0 --mean-recurrence 4 --backprop-depth 2 --num-epochs 1000 --max-steps "$steps" \
      --save-every 200 --threads "$THREADS"
  base=(--base "$dir/latest")
done
