"""What does one training step of the graph-token recurrent-depth model cost, with the coda run at the
questions only against the whole coda? (recipes/prosqa-graph.sh, ``MODELS=recurrent``)

The recipe's model (d=128, 4 heads, prelude 1, core 1, coda 1, MLP 512; 8 core iterations, all with
gradient, each scored: ``supervise="iterations"``) on one batch of full-size generated ProsQA graphs
in graph tokens with ``--queries`` questions each. Two ways to read the questions' logits after every
iteration: ``hf.coda(state, positions)`` (what the trainer does: the coda's last block runs at the
questions alone) and ``hf.coda(state)[rows, cols]`` (the whole coda, then read there). Before timing
it checks that both give the same loss and gradients; then it times optimizer steps of each,
interleaved in rounds, after one warm-up step each.

    python benchmarks/recurrent_step.py [--batch 64] [--queries 8,16] [--rounds 3] [--threads 1]

Writes ``benchmarks/results/recurrent_step.md``.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "recurrent_step.md"


def loss_fn(hf: torch.nn.Module, batch: dict, at_questions: bool) -> torch.Tensor:
    """``supervise="iterations"`` with 8 iterations, all with gradient (the recipe's), read either way."""
    from explorer.recurrent.data import within_hops
    from explorer.recurrent.losses import reach_loss

    e = hf.prelude(hf.embed(batch["input_ids"]))
    x = hf.initial_state(e, generator=torch.Generator().manual_seed(0))
    pos = batch["positions"]
    losses = []
    for j in range(1, 9):
        x = hf.core_step(x, e)
        logits = hf.coda(x, pos) if at_questions else hf.coda(x)[pos[:, 0], pos[:, 1]]
        losses.append(reach_loss(logits, None, within_hops(batch["hops"], j)))
    return torch.stack(losses).mean()


def main(argv: list[str] | None = None) -> int:
    from explorer.io import atomic_write_text
    from explorer.recurrent.data import collate_reach, encode_reach_graph
    from explorer.recurrent.train import TrainConfig, build_recurrent_model
    from explorer.tasks.prosqa.generate import generate
    from explorer.tasks.prosqa.graph_tokens import build_graph_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--queries", default="8,16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    problems = generate(args.batch, seed=7)
    tok = build_graph_tokenizer()
    rows = []
    for q in (int(x) for x in args.queries.split(",")):
        batch = collate_reach([encode_reach_graph(p, random.Random(i), q) for i, p in enumerate(problems)],
                              tok.pad_token_id, len(tok))
        hf = build_recurrent_model(tok, TrainConfig(n_embd=128, n_heads=4, intermediate_size=512, n_core=1,
                                                    encoding="graph", queries=q))
        grads = []
        for at in (True, False):
            hf.zero_grad()
            loss = loss_fn(hf, batch, at)
            loss.backward()
            grads.append((loss.detach(), [p.grad.clone() for p in hf.parameters()]))
        torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-5)
        for a, b in zip(grads[0][1], grads[1][1]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        opt = torch.optim.AdamW(hf.parameters(), lr=1e-4)
        times: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds + 1):
            for at in (True, False) if r % 2 else (False, True):
                t0 = time.perf_counter()
                loss_fn(hf, batch, at).backward()
                opt.step()
                opt.zero_grad()
                if r:   # round 0 warms both up
                    times[at].append(time.perf_counter() - t0)
        row = {"queries": q, "tokens": tuple(batch["input_ids"].shape), "questions": len(batch["positions"]),
               "at": statistics.median(times[True]), "whole": statistics.median(times[False])}
        print(row, flush=True)
        rows.append(row)
    lines = ["# One training step of the graph-token recurrent model: coda at the questions against the whole coda", "",
             f"`python benchmarks/recurrent_step.py --batch {args.batch} --queries {args.queries} --rounds {args.rounds} "
             f"--threads {args.threads}` (the recipe's model: d=128, 4 heads, prelude 1 / core 1 / coda 1, MLP 512; "
             f"8 core iterations with gradient, each scored; {args.batch} full-size generated graphs; CPU, "
             f"{args.threads} thread(s); median of {args.rounds} optimizer steps each, interleaved). Both ways give "
             "the same loss and gradients (checked first).", "",
             "| questions per graph | batch (graphs × tokens) | questions | coda at the questions, s / step | "
             "whole coda, s / step | saved |", "|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['queries']} | {r['tokens'][0]} × {r['tokens'][1]} | {r['questions']} | {r['at']:.2f} | "
              f"{r['whole']:.2f} | {1 - r['at'] / r['whole']:.0%} |" for r in rows]
    atomic_write_text(RESULTS, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
