#!/usr/bin/env bash
# Trains the shipped `prosqa-recurrent` model from scratch and ships it (docs/recurrent.md).
# Each stage is a `latent-explorer train recurrent` run that starts from the previous stage's weights
# (--base); every stage is seeded and resumable: run the script again after an interruption and it
# goes on where it stopped. Two plans:
#   PLAN=iterations (the default, the shipped model): s0 teaches the concepts one hop away on small
#     graphs; `it` then teaches every core iteration j the concepts within j hops (--supervise
#     iterations) on ProsQA-sized graphs as dense as the validation set's.
#   PLAN=final: the five-stage curriculum of docs/recurrent.md's table (1, 2, 3, 4 hops on the first
#     generator's sparse graphs, then every hop on dense ones), taught after the last iteration only.
#   PLAN=nocot: the baseline: PLAN=iterations's data and steps for the same-size model with the core run once
#     (--recurrence fixed --mean-recurrence 1), so it answers without recurrence; ships as prosqa-recurrent-nocot.
#   bash recipes/prosqa-recurrent.sh            train (RUNS=runs/prosqa-reach[-nocot], THREADS=1, N=3000 problems a stage,
#                                               D=64 wide, LR=2e-3, STEPS=2000 a stage, IT_STEPS, LAST_STEPS)
#   SHIP=1 bash recipes/prosqa-recurrent.sh     then evaluate on the real validation set and ship the last
#                                               stage as `prosqa-recurrent` (explorer/models/shipped/;
#                                               SHIP_TO=DIR ships there instead, EVAL_LIMIT=N evaluates N problems)
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=${PLAN:-iterations}
RUNS=${RUNS:-runs/prosqa-reach$([ "$PLAN" = nocot ] && echo -nocot)}
THREADS=${THREADS:-1}
STEPS=${STEPS:-2000}
IT_STEPS=${IT_STEPS:-8000}
LAST_STEPS=${LAST_STEPS:-6000}
N=${N:-3000}
D=${D:-64}                # width; the intermediate size is 2·D
LR=${LR:-2e-3}
source recipes/python.sh   # PY and LE: the project's python, or a GPU machine's
export OMP_NUM_THREADS=$THREADS HF_HUB_OFFLINE=1
SPARSE="--layout sparse --max-extra-persons 3 --max-parents 3"   # the first generator's graphs
# stage: nodes min, nodes max, target hops min..max of the generated problems, hops taught (0: all), steps,
# graphs, what is taught (after the last iteration, or after each), generator seed, r̄, backprop depth
case $PLAN in
  iterations) STAGES=(
    "s0 6 10 1 1 1 $STEPS sparse final 100 4 2"
    "it 14 28 3 6 0 $IT_STEPS split iterations 104 8 8") ;;
  final) STAGES=(
    "s0 6 10 1 1 1 $STEPS sparse final 100 4 2"
    "s1 6 10 1 2 2 $STEPS sparse final 101 4 2"
    "s2 8 14 1 3 3 $STEPS sparse final 102 4 2"
    "s3 10 18 1 4 4 $STEPS sparse final 103 4 2"
    "s4 14 28 3 6 0 $LAST_STEPS split final 104 4 2") ;;
  nocot) STAGES=(
    "s0 6 10 1 1 1 $STEPS sparse final 100 1 1"
    "it 14 28 3 6 0 $IT_STEPS split final 104 1 1") ;;
  *) echo "PLAN must be iterations, final or nocot, not $PLAN" >&2; exit 2 ;;
esac
recurrence=sampled
ship_as=prosqa-recurrent
[ "$PLAN" = nocot ] && recurrence=fixed && ship_as=prosqa-recurrent-nocot
base=()
names=()
for stage in "${STAGES[@]}"; do
  read -r name lo hi hmin hmax teach steps graphs supervise seed rbar depth <<< "$stage"
  dir=$RUNS/$name
  names+=("$name")
  layout=()
  [ "$graphs" = sparse ] && layout=($SPARSE)
  [ -f "$dir/train.json" ] || "$PY" -m explorer.tasks.prosqa.generate "$dir/train.json" --n "$N" \
      --seed "$seed" --min-nodes "$lo" --max-nodes "$hi" --min-hops "$hmin" --max-hops "$hmax" "${layout[@]}"
  "${LE[@]}" train recurrent "$dir" --train "$dir/train.json" "${base[@]}" --task reach \
      --supervise "$supervise" --max-hops "$teach" --queries 8 --n-embd "$D" --n-heads 4 --intermediate-size $((2 * D)) \
      --batch-size 16 --lr "$LR" --warmup-steps 0 --mean-recurrence "$rbar" --backprop-depth "$depth" --recurrence "$recurrence" \
      --num-epochs 1000 --max-steps "$steps" --save-every 200 --threads "$THREADS"
  base=(--base "$dir/latest")
done

if [ "${SHIP:-0}" = 1 ]; then
  limit=()
  [ -n "${EVAL_LIMIT:-}" ] && limit=(--limit "$EVAL_LIMIT")
  "${LE[@]}" prosqa eval --method recurrent --model "$dir/latest" --iterations 1,2,4,8,16,32 \
      "${limit[@]}" --json > "$RUNS/eval-real.json"
  # the slice the tests reproduce (tests/test_recurrent.py: the shipped model at its published numbers)
  "${LE[@]}" prosqa eval --method recurrent --model "$dir/latest" --iterations 1,2,4,16 --limit 40 \
      --json > "$RUNS/eval-real-40.json"
  case $PLAN in final) sizes="LAST_STEPS=$LAST_STEPS" ;; *) sizes="IT_STEPS=$IT_STEPS" ;; esac
  cmd="PLAN=$PLAN THREADS=$THREADS D=$D LR=$LR N=$N STEPS=$STEPS $sizes SHIP=1 bash recipes/prosqa-recurrent.sh"
  "$PY" - "$RUNS" "$dir/latest" "${SHIP_TO:-}" "$D" "$cmd" "$PLAN" "$ship_as" "${names[@]}" <<'EOF'
import json
import sys
from pathlib import Path

from explorer.training import ship_checkpoint

runs, last, dest, width, command, plan, name = (Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] or None,
                                               sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
minutes = {stage: json.loads((runs / stage / "latest" / "trainer_state.json").read_text())["elapsed_s"] / 60
           for stage in sys.argv[8:]}
result = {"real validation set": json.loads((runs / "eval-real.json").read_text()),
          "real validation set, first 40": json.loads((runs / "eval-real-40.json").read_text())}
what = {"iterations": "Recurrent-depth model (prelude 1, core 2 x r, coda 1; d={}) ... (every core iteration j is "
                      "taught the concepts within j hops).",
        "final": "Recurrent-depth model (prelude 1, core 2 x r, coda 1; d={}) ... (taught after the last core "
                 "iteration).",
        "nocot": "The same-size baseline without recurrence (prelude 1, core 2 run once, coda 1; d={}) ... (taught "
                 "after its one pass): the no-CoT baseline of prosqa-recurrent."}[plan]
task = ("trained on ProsQA in compact form: after ' Is <person>' it names the concepts the person reaches")
print(ship_checkpoint(last, name, description=what.format(width).replace("...", task),
                      provenance={"command": command,
                                  "cost": f"{sum(minutes.values()):.0f} min of training on the CPU ("
                                          + ", ".join(f"{k}: {v:.0f} min" for k, v in minutes.items()) + ")",
                                  "results": result}, dest_root=dest))
EOF
fi
