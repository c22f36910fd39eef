"""How much of a training batch is padding, and what does grouping problems of similar length save?
(recipes/prosqa-graph.sh: the recurrent model and Coconut, ProsQA in graph tokens)

Each model of the recipe's CPU size trains on full-size generated ProsQA problems in batches padded to
their longest problem. With ``group_by_length`` (the trainers' default) an epoch's batches hold
problems of similar length (``explorer.training.length_grouped_batches``); without it, a plain
shuffle. For each model and each way, on one epoch of ``--n`` problems: the share of the batches'
tokens that are real (not padding), and the seconds of the epoch's optimizer steps (both ways
interleaved, batch by batch, after one warm-up step each; ``--steps K``: the first K batches only, a
quick look, and the grouped epoch's batches are not alike, so only the whole epoch is a fair measure).

    python benchmarks/length_grouping.py [--n 2048] [--batch 64] [--steps K] [--threads 1]

Writes ``benchmarks/results/length_grouping.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "length_grouping.md"


def make_recipe(name: str, problems: list[dict[str, Any]], batch: int, grouped: bool) -> Any:
    """One of the recipe's two graph-token models at its CPU sizes (d=128): ``"coconut"`` at its last
    stage (six thoughts at most, one per hop, then [A]; the frontier loss) or ``"recurrent"`` (16
    questions a graph, 8 iterations with gradient, no coda)."""
    from explorer.recurrent.train import RecurrentRecipe
    from explorer.recurrent.train import TrainConfig as RecurrentConfig
    from explorer.thoughts.train import CoconutRecipe
    from explorer.thoughts.train import TrainConfig as CoconutConfig

    if name == "coconut":
        return CoconutRecipe(problems, CoconutConfig(
            method="coconut", encoding="graph", arch="llama", n_layer=2, n_embd=128, n_head=4, batch_size=batch,
            start_stage=6, frontier_loss=1.0, exact_thoughts=True, uniform_prob=0.1, group_by_length=grouped))
    return RecurrentRecipe(problems, RecurrentConfig(
        encoding="graph", task="reach", queries=16, n_embd=128, n_heads=4, intermediate_size=512, n_prelude=1,
        n_core=1, n_coda=0, mean_recurrence=8, backprop_depth=8, recurrence="fixed", supervise="iterations",
        batch_size=batch, group_by_length=grouped))


def real_share(batches: list[dict[str, torch.Tensor]], pad_id: int) -> float:
    ids = [b["input_ids"] for b in batches]
    return sum(int((x != pad_id).sum()) for x in ids) / sum(x.numel() for x in ids)


def main(argv: list[str] | None = None) -> int:
    from explorer.io import atomic_write_text
    from explorer.tasks.prosqa.generate import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048, help="generated problems (one epoch)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=0, help="time the first K batches only (0: the whole epoch)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    problems = generate(args.n, seed=7)
    rows = []
    for name in ("coconut", "recurrent"):
        runs = {}
        for grouped in (False, True):
            r = make_recipe(name, problems, args.batch, grouped)
            model = r.build(None)
            runs[grouped] = (r, model, r.epoch_batches(0), torch.optim.AdamW(model.parameters(), lr=1e-4), [])
        n_steps = min(args.steps or len(runs[True][2]), len(runs[True][2]))
        for step in range(-1, n_steps):   # step -1: one warm-up step each, on the first batch
            for grouped in (False, True) if step % 2 else (True, False):
                recipe, model, batches, opt, times = runs[grouped]
                t0 = time.perf_counter()
                loss, _ = recipe.loss(model, batches[max(step, 0)], max(step, 0))
                loss.backward()
                opt.step()
                opt.zero_grad()
                if step >= 0:
                    times.append(time.perf_counter() - t0)
        pad = int(runs[True][0].tokenizer.pad_token_id)
        row = {"model": name, "batches": len(runs[True][2]),
               "real": {g: real_share(runs[g][2], pad) for g in runs},
               "s": {g: sum(runs[g][4]) for g in runs}, "timed": n_steps}
        print(row, flush=True)
        rows.append(row)
    lines = ["# Padding in a training batch, and grouping problems of similar length", "",
             f"`python benchmarks/length_grouping.py --n {args.n} --batch {args.batch} --steps {args.steps} "
             f"--threads {args.threads}` (the recipe's CPU sizes, d=128, 2 layers; Coconut at its last stage with "
             f"the frontier loss, the recurrent model with 16 questions a graph and 8 iterations with gradient; one "
             f"epoch of {args.n} full-size generated ProsQA problems in graph tokens; CPU, {args.threads} "
             f"thread(s); the optimizer steps of the batches timed, both ways interleaved).", "",
             "| model | batches an epoch (timed) | real tokens, shuffled | real tokens, grouped | s, shuffled | "
             "s, grouped | time saved |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['batches']} ({r['timed']}) | {r['real'][False]:.0%} | {r['real'][True]:.0%} | "
              f"{r['s'][False]:.0f} | {r['s'][True]:.0f} | {1 - r['s'][True] / r['s'][False]:.0%} |" for r in rows]
    atomic_write_text(RESULTS, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
