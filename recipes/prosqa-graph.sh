#!/usr/bin/env bash
# ProsQA as graph tokens: trains, evaluates and ships the four latent reasoners of one size
# (docs/thoughts.md, "Graph tokens"): Coconut, CoT, no-CoT (`latent-explorer train coconut
# --encoding graph`) and recurrent depth (`latent-explorer train recurrent --encoding graph`).
#
#   bash recipes/prosqa-graph.sh                 train every model in MODELS (GPU when CUDA is present)
#   SHIP=1 bash recipes/prosqa-graph.sh          then evaluate each on the real validation set and ship it
#                                                as prosqa-<model> (explorer/models/shipped/, or SHIP_TO=DIR;
#                                                COST_NOTE=TEXT adds a person's word on the measured cost)
#
# One command, two modes (MODE=auto picks by torch.cuda.is_available()):
#   MODE=gpu  every model at once on one GPU (one process each), bf16, fused AdamW, batches of 256: sized to finish
#             in under 9 minutes on one H200; each run also stops at a time budget (WARM_MINUTES=1 for the
#             warm-up, MINUTES=5 for the main run) so that evaluating and shipping always fit in the loan.
#             OUT=DIR also writes each shipped model there as one archive (prosqa-<model>.tar) and the logs
#             as prosqa-graph-logs.tar.gz: $OUT on the device machine, which returns at most 8 files.
#             Without .venv (the device machine's image) it runs with python3 (recipes/python.sh):
#             `SHIP=1 OUT=$OUT bash recipes/prosqa-graph.sh` there (docs/thoughts.md).
#   MODE=cpu  the same recipe in CPU-sized batches; each run checkpoints every 5 minutes under
#             RUNS/<model>/latest, and re-running the same command resumes where it stopped (run it
#             under nohup; THREADS threads per model, the models in MODELS run side by side).
# SIZE=tiny is the rehearsal (a tiny model, a few problems, a few steps): a test runs the exact GPU
# and CPU commands at that size on every CI run, so a GPU run cannot fail on a typo.
set -euo pipefail
cd "$(dirname "$0")/.."
# the whole script is one function, read before it runs: editing the file cannot disturb a run in progress
main() {
source recipes/python.sh   # PY and LE: the project's python, or a GPU machine's
MODELS=${MODELS:-"coconut cot nocot recurrent"}
RUNS=${RUNS:-runs/prosqa-graph}
SIZE=${SIZE:-full}
THREADS=${THREADS:-1}
MODE=${MODE:-auto}
if [ "$MODE" = auto ]; then
  MODE=$("$PY" -c 'import torch; print("gpu" if torch.cuda.is_available() else "cpu")')
fi
export HF_HUB_OFFLINE=1

# -- sizes ------------------------------------------------------------------------------------------
# N training problems (generated, seed 7), D width, L layers, H heads, E epochs per Coconut stage,
# EPOCHS in all (the same for every model), B batch, LR peak learning rate (warm-up, then cosine),
# WARM optimizer steps of the warm-up stage on small graphs (below), EVAL_N held-out problems evaluated
# after each epoch (the learning curve in RUNS/<model>/log.jsonl), FRONTIER the weight of Coconut-BFS's
# frontier loss (each thought taught its BFS frontier; 0: plain Coconut, which stayed near chance on the CPU),
# QUERIES the recurrent model's questions per graph (the root's, then other nodes', each node once before twice),
# COCONUT_QUERIES the Coconut model's questions per graph in one pass (the problem's own and more drawn on its statements,
# which are read once for all of them; B then counts graphs; 1: the problem's own alone),
# POLISH epochs of a last run from the main run's weights (0: none) at POLISH_LR, with a fresh optimizer and cosine
# (Coconut: all at its last stage, every hop a thought, POLISH_QUERIES questions per graph, default COCONUT_QUERIES);
# the model then ships from RUNS/<model>-polish. POLISH_FROM=shipped polishes each model's shipped weights instead
# (prosqa-<model> in SHIP_TO or explorer/models/shipped, copied to RUNS/<model>-polish/base as the polish starts; no
# warm-up or main run is trained): its provenance then keeps that copy's own under "base" (command, description, cost),
# the chain that reproduces it, whatever was shipped over the folder while the polish ran.
# ITERS the recurrent model's core iterations in training (all with gradient, iteration j taught the nodes within
# j hops), POLISH_ITERS those of its polish (default ITERS: more teach the reach set as a fixed point past 6 hops);
# UNREACHED its --unreached-weight (mass outside a question's reach set charged 1 + UNREACHED times), POLISH_UNREACHED
# that of its polish (default UNREACHED); SEPARATION the --separation-weight of both (recurrent: a soft margin charged
# between the lowest-scored reached node and the highest-scored other one; Coconut-BFS: between each thought's lowest
# frontier node and the highest node its root does not reach), POLISH_SEPARATION that of a polish (default SEPARATION).
FRONTIER=${FRONTIER:-1}
QUERIES=${QUERIES:-16}
COCONUT_QUERIES=${COCONUT_QUERIES:-8}
POLISH=${POLISH:-0}
POLISH_QUERIES=${POLISH_QUERIES:-$COCONUT_QUERIES}
POLISH_FROM=${POLISH_FROM:-}
POLISH_LR=${POLISH_LR:-3e-4}
ITERS=${ITERS:-8}
POLISH_ITERS=${POLISH_ITERS:-$ITERS}
UNREACHED=${UNREACHED:-0}
POLISH_UNREACHED=${POLISH_UNREACHED:-$UNREACHED}
SEPARATION=${SEPARATION:-0}
POLISH_SEPARATION=${POLISH_SEPARATION:-$SEPARATION}
# heads of 64 dimensions on the GPU (GPT-2's): at 32 the recurrent model's lookup leaks a tenth of each head's
# attention onto edges it should not follow (docs/thoughts.md, "The leak starts in the core's lookup")
case "$SIZE/$MODE" in
  full/gpu) N=${N:-16000}; D=${D:-256}; L=${L:-2}; H=${H:-4}; E=${E:-3}; EPOCHS=${EPOCHS:-30}; B=${B:-256}; LR=${LR:-1e-3}; WARM=${WARM:-1500}; EVAL_N=${EVAL_N:-50} ;;
  full/cpu) N=${N:-16000}; D=${D:-128}; L=${L:-2}; H=${H:-4}; E=${E:-3}; EPOCHS=${EPOCHS:-30}; B=${B:-64}; LR=${LR:-1e-3}; WARM=${WARM:-1500}; EVAL_N=${EVAL_N:-100} ;;
  tiny/*)   N=${N:-24}; D=${D:-16}; L=${L:-1}; H=${H:-2}; E=${E:-1}; EPOCHS=${EPOCHS:-2}; B=${B:-8}; LR=${LR:-1e-3}; WARM=${WARM:-2}; EVAL_N=${EVAL_N:-5} ;;
  *) echo "SIZE must be full or tiny and MODE gpu, cpu or auto (got SIZE=$SIZE MODE=$MODE)" >&2; exit 2 ;;
esac
if [ "$MODE" = gpu ]; then
  RUN=(--device "${DEVICE:-cuda}" --precision bf16 --threads 2)   # DEVICE=cpu: the rehearsal of this exact command
  # a loan is one call of at most 10 minutes: each run stops (with its checkpoint) at these budgets, so
  # evaluation and shipping always happen; the provenance then records the steps each one reached
  WARM_MINUTES=${WARM_MINUTES:-1}; MINUTES=${MINUTES:-5}
else
  RUN=(--device cpu --threads "$THREADS")
  export OMP_NUM_THREADS=$THREADS
fi
mkdir -p "$RUNS"
gen() { [ -f "$RUNS/$1" ] || "${LE[@]}" prosqa generate "$RUNS/$1" "${@:2}"; }
gen train.json --n "$N" --seed 7 & g1=$!
gen heldout.json --n 500 --seed 8 & g2=$!
# the warm-up's small graphs (6-10 nodes, answers 1-2 hops away): the node lookup ("which edges
# start at x?") forms there in ~1,500 steps, where on full-size graphs it had not after 1,000
gen warm.json --n "$((N < 4000 ? N : 4000))" --seed 5 --min-nodes 6 --max-nodes 10 --min-hops 1 --max-hops 2 \
    --layout sparse --max-extra-persons 3 --max-parents 3 & g3=$!
wait $g1; wait $g2; wait $g3
SHARED=(--encoding graph --seed 0 --batch-size "$B" --lr "$LR" --warmup-steps 100 --schedule cosine
        --save-every 1000000 --save-minutes 5 "${RUN[@]}")
WARMUP=(--train "$RUNS/warm.json" --num-epochs 100000 --max-steps "$WARM" "${SHARED[@]}"
        ${WARM_MINUTES:+--max-minutes "$WARM_MINUTES"})
MAIN=(--train "$RUNS/train.json" --valid "$RUNS/heldout.json" --eval-limit "$EVAL_N" --num-epochs "$EPOCHS" "${SHARED[@]}"
      ${MINUTES:+--max-minutes "$MINUTES"})
# the polish: its own shuffle (seed 1) and learning rate; later flags win over SHARED's
POLISHED=(--train "$RUNS/train.json" --valid "$RUNS/heldout.json" --eval-limit "$EVAL_N" --num-epochs "$POLISH"
          "${SHARED[@]}" --lr "$POLISH_LR" --seed 1 ${MINUTES:+--max-minutes "$MINUTES"})
GPT=(--arch llama --n-layer "$L" --n-embd "$D" --n-head "$H")
# no coda: the state is read by the final norm and the tied unembedding, so the node set an iteration holds lies in
# the embedding space the next iteration's lookup reads (why Coconut's thoughts compose); on small graphs the second
# hop formed without the coda and not with it (docs/thoughts.md, status)
REC=(--task reach --queries "$QUERIES" --n-embd "$D" --n-heads "$H" --intermediate-size $((4 * D)) --n-prelude 1 --n-core 1
     --n-coda 0 --mean-recurrence "$ITERS" --backprop-depth "$ITERS" --recurrence fixed --supervise iterations
     --unreached-weight "$UNREACHED" --separation-weight "$SEPARATION")

shipped() { echo "${SHIP_TO:-explorer/models/shipped}/prosqa-$1$([ "$1" = recurrent ] && echo -graph)"; }   # its shipped folder
if [ -n "$POLISH_FROM" ]; then
  if [ "$POLISH_FROM" != shipped ] || [ "$POLISH" = 0 ]; then
    echo "POLISH_FROM=shipped (the only value) needs POLISH=N epochs (got POLISH_FROM=$POLISH_FROM POLISH=$POLISH)" >&2; exit 2
  fi
  for m in $MODELS; do
    [ -f "$(shipped "$m")/provenance.json" ] || { echo "POLISH_FROM=shipped: no shipped model at $(shipped "$m"); ship it first (SHIP=1) or leave POLISH_FROM unset" >&2; exit 2; }
  done
fi
trained() { [ -n "$POLISH_FROM" ] || "$@"; }   # the warm-up and the main run; not when polishing the shipped weights
# the shipped model a polish goes on from, copied whole into the polish's run folder as the polish starts: the polish
# trains from that copy and ships with its provenance as the base, even when another model was shipped meanwhile
polish_base() { echo "$RUNS/$1-polish/base"; }
keep_base() {
  local to; to=$(polish_base "$1")
  if [ ! -f "$to/provenance.json" ]; then
    rm -rf "$to.tmp" && mkdir -p "$(dirname "$to")" && cp -r "$(shipped "$1")" "$to.tmp" && mv "$to.tmp" "$to"
  fi
}

train_one() {  # one model: the warm-up on small graphs, the main run from its weights (--base), then the polish
  local m=$1 dir=$RUNS/$1
  local base=(--base "$dir-warm/latest") polish=()
  if [ "$POLISH" != 0 ]; then polish=(--base "$dir/latest"); fi
  if [ -n "$POLISH_FROM" ]; then keep_base "$m" || return 1; polish=(--base "$(polish_base "$m")"); fi
  case $m in
    coconut) local cc=(--method coconut --c-thought 1 --max-latent-stage 6 --epochs-per-stage "$E" --uniform-prob 0.1
                       --frontier-loss "$FRONTIER" --exact-thoughts 1 --queries "$COCONUT_QUERIES" "${GPT[@]}")
             local cm=(--separation-weight "$SEPARATION") pm=(--separation-weight "$POLISH_SEPARATION")
             trained "${LE[@]}" train coconut "$dir-warm" "${WARMUP[@]}" --method cot "${GPT[@]}" &&
             trained "${LE[@]}" train coconut "$dir" "${MAIN[@]}" "${base[@]}" "${cc[@]}" "${cm[@]}" &&
             if [ ${#polish[@]} != 0 ]; then
               "${LE[@]}" train coconut "$dir-polish" "${POLISHED[@]}" "${polish[@]}" "${cc[@]}" --start-stage 6 \
                   --queries "$POLISH_QUERIES" "${pm[@]}"; fi ;;
    cot|nocot) local method; method=$([ "$m" = cot ] && echo cot || echo no_cot)
             trained "${LE[@]}" train coconut "$dir-warm" "${WARMUP[@]}" --method "$method" "${GPT[@]}" &&
             trained "${LE[@]}" train coconut "$dir" "${MAIN[@]}" "${base[@]}" --method "$method" "${GPT[@]}" &&
             if [ ${#polish[@]} != 0 ]; then
               "${LE[@]}" train coconut "$dir-polish" "${POLISHED[@]}" "${polish[@]}" --method "$method" "${GPT[@]}"; fi ;;
    recurrent) trained "${LE[@]}" train recurrent "$dir-warm" "${WARMUP[@]}" "${REC[@]}" &&
             trained "${LE[@]}" train recurrent "$dir" "${MAIN[@]}" "${base[@]}" "${REC[@]}" &&
             if [ ${#polish[@]} != 0 ]; then
               "${LE[@]}" train recurrent "$dir-polish" "${POLISHED[@]}" "${polish[@]}" "${REC[@]}" \
                   --mean-recurrence "$POLISH_ITERS" --backprop-depth "$POLISH_ITERS" --unreached-weight "$POLISH_UNREACHED" \
                   --separation-weight "$POLISH_SEPARATION"; fi ;;
    *) echo "unknown model $m (MODELS may hold coconut cot nocot recurrent)" >&2; return 2 ;;
  esac
}
final() { [ "$POLISH" != 0 ] && echo "$RUNS/$1-polish" || echo "$RUNS/$1"; }   # the run a model ships from

start=$(date +%s)
pids=()
for m in $MODELS; do
  train_one "$m" > "$RUNS/$m.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [ -n "${OUT:-}" ]; then   # the logs and learning curves come back from a device machine too
  mkdir -p "$OUT"; (cd "$RUNS" && tar -czf - ./*.log ./*/log.jsonl) > "$OUT/prosqa-graph-logs.tar.gz" || true
fi
if [ $status != 0 ]; then
  tail -n 5 "$RUNS"/*.log >&2
  echo "a run failed (logs in $RUNS/*.log); fix it and run the same command to resume" >&2
  exit 1
fi
echo "trained $MODELS in $(( ($(date +%s) - start) / 60 )) min ($MODE)"

if [ "${SHIP:-0}" = 1 ]; then
  limit=()
  [ -n "${EVAL_LIMIT:-}" ] && limit=(--limit "$EVAL_LIMIT")
  for m in $MODELS; do
    case $m in
      recurrent)   # and with each option read at its peak over the iterations (--readout peak); the adaptive exit
                   # stops once no token rises above its earlier peak (the search reaches nothing new)
        for readout in final peak; do
          "${LE[@]}" prosqa eval --engine recurrent --model "$(final "$m")/latest" --iterations 1,2,4,8,16 \
              --readout "$readout" --exit peak-rise "${limit[@]}" --json > "$RUNS/$m-eval$([ "$readout" = peak ] && echo -peak).json"
        done ;;
      *) "${LE[@]}" prosqa eval --engine thoughts --mode "$([ "$m" = nocot ] && echo no_cot || echo "$m")" \
                   --model "$(final "$m")/latest" "${limit[@]}" --json > "$RUNS/$m-eval.json" ;;
    esac
    if [ "$m" = coconut ]; then   # and the papers' protocol: one thought per hop, not the learned stop; and the
                                  # options read off the thoughts, each at its peak over all six (--readout peak)
      "${LE[@]}" prosqa eval --engine thoughts --mode coconut --n-thoughts hops --model "$(final "$m")/latest" \
          "${limit[@]}" --json > "$RUNS/$m-eval-hops.json"
      "${LE[@]}" prosqa eval --engine thoughts --mode coconut --readout peak --model "$(final "$m")/latest" \
          "${limit[@]}" --json > "$RUNS/$m-eval-peak.json"
    fi
  done
  polished="" more="" iters="" unreached=""   # (no `$(test && echo)` in an assignment: under set -e its status would end the script)
  if [ "$POLISH" != 0 ]; then
    polished=" POLISH=$POLISH POLISH_LR=$POLISH_LR POLISH_QUERIES=$POLISH_QUERIES POLISH_ITERS=$POLISH_ITERS POLISH_UNREACHED=$POLISH_UNREACHED POLISH_SEPARATION=$POLISH_SEPARATION${POLISH_FROM:+ POLISH_FROM=$POLISH_FROM}"
    more=" and $POLISH more at learning rate $POLISH_LR"; iters=", $POLISH_ITERS in the polish"
  fi
  if [ "$UNREACHED" != 0 ]; then unreached="; mass outside a question's reach set charged 1 + $UNREACHED times"; fi
  if [ "$POLISH" != 0 ] && [ "$POLISH_UNREACHED" != "$UNREACHED" ]; then
    unreached="$unreached; the polish charges mass outside the reach set 1 + $POLISH_UNREACHED times"; fi
  if [ "$SEPARATION" != 0 ]; then unreached="$unreached; a soft margin of every reached node over the rest at weight $SEPARATION"; fi
  if [ "$POLISH" != 0 ] && [ "$POLISH_SEPARATION" != "$SEPARATION" ]; then
    unreached="$unreached; the polish weighs a soft margin of every reached node over the rest $POLISH_SEPARATION"; fi
  bfs=""; if [ "$FRONTIER" != 0 ]; then bfs="-BFS (each thought also taught its BFS frontier, weight $FRONTIER)"; fi
  margin="thought's frontier held above the nodes its root does not reach by a soft margin"
  cmargin=""; if [ "$SEPARATION" != 0 ]; then cmargin="; each $margin at weight $SEPARATION"; fi
  if [ "$POLISH" != 0 ] && [ "$POLISH_SEPARATION" != "$SEPARATION" ]; then
    cmargin="$cmargin; the polish weighs each $margin $POLISH_SEPARATION"; fi
  asked=""; if [ "$COCONUT_QUERIES" != 1 ]; then asked=", $COCONUT_QUERIES questions per graph in a pass (the problem's own and $((COCONUT_QUERIES - 1)) drawn on its statements)"; fi
  cmd="MODE=$MODE SIZE=$SIZE MODELS='$MODELS' N=$N D=$D L=$L H=$H E=$E EPOCHS=$EPOCHS B=$B LR=$LR WARM=$WARM FRONTIER=$FRONTIER QUERIES=$QUERIES COCONUT_QUERIES=$COCONUT_QUERIES ITERS=$ITERS UNREACHED=$UNREACHED SEPARATION=$SEPARATION$polished THREADS=$THREADS SHIP=1 bash recipes/prosqa-graph.sh"
  shape="$L layers, d=$D, $H heads; ProsQA as graph tokens: $WARM warm-up steps on small graphs, then $N generated problems for $EPOCHS epochs$more"
  for m in $MODELS; do
    case $m in
      coconut) what="Coconut$bfs, a Llama-style transformer ($shape; curriculum of $E epochs a stage up to 6 continuous thoughts, uniform_prob 0.1$asked$cmargin)" ;;
      cot) what="Chain of thought, a Llama-style transformer ($shape; the path as node tokens, then the answer)" ;;
      nocot) what="No-CoT, a Llama-style transformer ($shape; the answer straight away)" ;;
      recurrent) what="Recurrent-depth model (prelude 1, core 1 iterated, no coda: the state read by the tied unembedding; $shape; $ITERS core iterations in training$iters, iteration j taught the nodes within j hops$unreached)" ;;
    esac
    results=("$RUNS/$m-eval.json")
    if [ "$m" = coconut ]; then results+=("$RUNS/$m-eval-hops.json"); fi
    if [ "$m" = coconut ] || [ "$m" = recurrent ]; then results+=("$RUNS/$m-eval-peak.json"); fi
    stages=("$RUNS/$m-warm")
    if [ "$POLISH" != 0 ]; then stages+=("$RUNS/$m"); fi
    if [ -n "$POLISH_FROM" ]; then   # the shipped model it went on from: its cost, and its provenance under "base"
      stages=("$(polish_base "$m")")
      polish_how=""
      if [ "$m" = coconut ]; then polish_how=", all at the last stage, $POLISH_QUERIES questions per graph in a pass"
        if [ "$POLISH_SEPARATION" != 0 ]; then polish_how="$polish_how; each $margin at weight $POLISH_SEPARATION"; fi
      fi
      if [ "$m" = recurrent ]; then
        polish_how=", $POLISH_ITERS core iterations"
        if [ "$POLISH_UNREACHED" != 0 ]; then polish_how="$polish_how; mass outside a question's reach set charged 1 + $POLISH_UNREACHED times"; fi
        if [ "$POLISH_SEPARATION" != 0 ]; then polish_how="$polish_how; a soft margin of every reached node over the rest at weight $POLISH_SEPARATION"; fi
      fi
      what="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["description"])' "$(polish_base "$m")/provenance.json"); then polished for $POLISH epochs from those weights at learning rate $POLISH_LR$polish_how"
    fi
    "${LE[@]}" train ship "$(final "$m")" "prosqa-$m$([ "$m" = recurrent ] && echo -graph)" \
        --description "$what" --command "$cmd" --device "$MODE" --stages "${stages[@]}" --results "${results[@]}" \
        ${SHIP_TO:+--dest "$SHIP_TO"} ${OUT:+--copy-to "$OUT"} ${COST_NOTE:+--cost-note "$COST_NOTE"}
  done
fi
}
main "$@"; exit   # one line: bash reads it whole, so an edit to this file during a run cannot run stray text
