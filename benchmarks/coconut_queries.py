"""What does asking several questions of each graph in one Coconut training pass cost?
(recipes/prosqa-graph.sh, ``COCONUT_QUERIES``; the trainer's ``--queries``)

The recipe's Coconut model (Llama-style, 2 layers, d=128, 4 heads) at its last curriculum stage (every
hop a continuous thought, one forward pass per thought, the frontier loss on each) on one batch of 64
full-size generated ProsQA graphs in graph tokens, each with its own question and Q − 1 more drawn on its
statements. Two ways to run the same questions: grouped (``collate_grouped`` / ``grouped_forward``: the
statements once per graph, the questions side by side in its row) and flat (``collate``: every question
in a row of its own, the statements repeated). Before timing it checks that both give the same loss;
then it times optimizer steps of each, interleaved in rounds, after one warm-up step each.

    python benchmarks/coconut_queries.py [--batch 64] [--queries 1,4,8] [--rounds 3] [--threads 1]

Writes ``benchmarks/results/coconut_queries.md``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "coconut_queries.md"


def main(argv: list[str] | None = None) -> int:
    from explorer.io import atomic_write_text
    from explorer.tasks.prosqa.generate import generate
    from explorer.thoughts.data import collate, frontier_targets
    from explorer.thoughts.train import CoconutRecipe, TrainConfig
    from explorer.tasks.prosqa.graph_tokens import LATENT, MAX_NODES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--queries", default="1,4,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    problems = generate(args.batch, seed=7)
    rows = []
    for q in (int(x) for x in args.queries.split(",")):
        cfg = TrainConfig(method="coconut", encoding="graph", arch="llama", n_layer=2, n_embd=128, n_head=4,
                          batch_size=args.batch, frontier_loss=1.0, exact_thoughts=True, queries=q, start_stage=6,
                          max_latent_stage=6, group_by_length=False)
        recipe = CoconutRecipe(problems, cfg)
        hf = recipe.build(None)
        recipe.begin_epoch(0)
        epoch = recipe.epoch_batches(0)
        grouped = epoch[0]
        questions = [x for j in epoch.batches[0] for x in epoch.groups[j]]
        latent = recipe.ids[LATENT]
        flat = collate([ex for ex, _, _ in questions], int(recipe.tokenizer.pad_token_id), latent)
        flat["frontier"] = frontier_targets([ex for ex, _, _ in questions], [f for _, f, _ in questions], latent, 1,
                                            MAX_NODES)
        ways = {"grouped": grouped, "flat": flat}
        with torch.no_grad():
            losses = {k: recipe.loss(hf, b, 0)[0] for k, b in ways.items()}
        torch.testing.assert_close(losses["grouped"], losses["flat"], rtol=1e-4, atol=1e-4)
        opt = torch.optim.AdamW(hf.parameters(), lr=1e-4)
        times: dict[str, list[float]] = {k: [] for k in ways}
        for r in range(args.rounds + 1):
            for k in list(ways) if r % 2 else list(ways)[::-1]:
                t0 = time.perf_counter()
                recipe.loss(hf, ways[k], 0)[0].backward()
                opt.step()
                opt.zero_grad()
                if r:   # round 0 warms both up
                    times[k].append(time.perf_counter() - t0)
        row = {"queries": q, "questions": len(questions), "thoughts": int((flat["input_ids"] == latent).sum()),
               "flat_tokens": int(flat["attention_mask"].sum()),
               "grouped_tokens": int(grouped.get("prefix_mask", torch.zeros(0)).sum() + grouped["attention_mask"].sum()),
               **{k: statistics.median(v) for k, v in times.items()}}
        print(row, flush=True)
        rows.append(row)
    one = next((r for r in rows if r["queries"] == 1), None)
    lines = ["# Several questions on each graph in one Coconut training pass", "",
             f"`python benchmarks/coconut_queries.py --batch {args.batch} --queries {args.queries} --rounds {args.rounds} "
             f"--threads {args.threads}` (the recipe's Coconut model: Llama-style, 2 layers, d=128, 4 heads, random "
             f"weights; its last stage: a continuous thought per hop, the frontier loss on each; {args.batch} full-size "
             f"generated graphs, each with its question and Q − 1 more on its statements; CPU, {args.threads} "
             f"thread(s); median of {args.rounds} optimizer steps each, interleaved). Grouped: the statements once "
             "per graph; flat: a row per question. Both give the same loss (checked first).", "",
             "| questions per graph | questions | thoughts | positions grouped / flat | grouped, s / step | "
             "flat, s / step | grouped against one question per graph |", "|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        rel = f"{r['grouped'] / one['grouped']:.2f}× the time for {r['thoughts'] / one['thoughts']:.1f}× the thoughts" \
            if one else "–"
        lines.append(f"| {r['queries']} | {r['questions']} | {r['thoughts']} | {r['grouped_tokens']} / "
                     f"{r['flat_tokens']} | {r['grouped']:.2f} | {r['flat']:.2f} | {rel} |")
    atomic_write_text(RESULTS, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
