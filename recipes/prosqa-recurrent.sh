#!/usr/bin/env bash
# Trains the shipped `prosqa-recurrent` model from scratch and ships it (docs/recurrent.md).
# A curriculum of five stages, each a `latent-explorer train recurrent` run that starts from the
# previous stage's weights (--base): one hop on small graphs first, then more hops on larger
# graphs (the first generator's sparse ones: these stages were trained before it changed), then
# ProsQA-sized graphs as dense as the validation set's, with every hop. Every stage is seeded and resumable: run the
# script again after an interruption and it goes on where it stopped.
#   bash recipes/prosqa-recurrent.sh            train (RUNS=runs/prosqa-reach, THREADS=1, N=3000 problems a stage,
#                                               D=64 wide, LR=2e-3)
#   SHIP=1 bash recipes/prosqa-recurrent.sh     then evaluate on the real validation set and ship the last
#                                               stage as `prosqa-recurrent` (explorer/models/shipped/;
#                                               SHIP_TO=DIR ships there instead, EVAL_LIMIT=N evaluates N problems)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/prosqa-reach}
THREADS=${THREADS:-1}
STEPS=${STEPS:-2000}
LAST_STEPS=${LAST_STEPS:-6000}
N=${N:-3000}
D=${D:-64}                # width; the intermediate size is 2·D
LR=${LR:-2e-3}
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
  [ -f "$dir/train.json" ] || "$BIN/python" -m explorer.tasks.prosqa.generate "$dir/train.json" --n "$N" \
      --seed $((100 + i)) --min-nodes "$lo" --max-nodes "$hi" --min-hops "$hmin" --max-hops "$hmax" "${layout[@]}"
  "$BIN/latent-explorer" train recurrent "$dir" --train "$dir/train.json" "${base[@]}" --task reach \
      --max-hops "$teach" --queries 8 --n-embd "$D" --n-heads 4 --intermediate-size $((2 * D)) --batch-size 16 --lr "$LR" \
      --warmup-steps 0 --mean-recurrence 4 --backprop-depth 2 --num-epochs 1000 --max-steps "$steps" \
      --save-every 200 --threads "$THREADS"
  base=(--base "$dir/latest")
done

if [ "${SHIP:-0}" = 1 ]; then
  limit=()
  [ -n "${EVAL_LIMIT:-}" ] && limit=(--limit "$EVAL_LIMIT")
  "$BIN/latent-explorer" prosqa eval --method recurrent --model "$dir/latest" --iterations 1,2,4,8,16,32 \
      "${limit[@]}" --json > "$RUNS/eval-real.json"
  cmd="D=$D LR=$LR N=$N STEPS=$STEPS LAST_STEPS=$LAST_STEPS SHIP=1 bash recipes/prosqa-recurrent.sh"
  "$BIN/python" - "$RUNS" "$dir/latest" "${SHIP_TO:-}" "$D" "$cmd" <<'EOF'
import json
import sys
from pathlib import Path

from explorer.checkpoint import ship_checkpoint

runs, last, dest, width, command = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] or None, sys.argv[4], sys.argv[5]
seconds = sum(json.loads((d / "latest" / "trainer_state.json").read_text())["elapsed_s"]
              for d in sorted(runs.iterdir()) if (d / "latest" / "trainer_state.json").is_file() and d.name[:1] == "s"
              and d.name[1:].isdigit())
result = json.loads((runs / "eval-real.json").read_text())
print(ship_checkpoint(last, "prosqa-recurrent",
                      description=f"Recurrent-depth model (prelude 1, core 2 x r, coda 1; d={width}) trained on ProsQA in "
                                  "compact form: after ' Is <person>' it names the concepts the person reaches.",
                      provenance={"command": command,
                                  "cost": f"{seconds / 60:.0f} min of training on one CPU thread",
                                  "results": {"real validation set": result}}, dest_root=dest))
EOF
fi
