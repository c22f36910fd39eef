"""Multi-hop benchmark: does a small recurrent-depth model learn to follow a chain of facts, and does it
need more core iterations for more hops?

A sequence holds a chain of ``--pairs`` facts on random symbols, ``k v .``, in shuffled order (the
form that :mod:`benchmarks.retrieval` found learnable: the value right after its key), then four
queries ``?h s`` → the symbol ``h`` links after ``s`` (the marker ``?h`` names the hop count). The
loss is on the answers only. Training follows a curriculum (``--curriculum 1,2,3``: each stage draws
hop counts 1…h and runs ``--steps`` steps, starting from the previous stage's weights), with
Huginn's randomised recurrence of mean ``--iterations``. Every ``--eval-every`` steps it measures the
held-out accuracy per hop count at 1, 2, 4, 8 and 16 core iterations: the recurrent-depth finding is
an accuracy at many hops that rises with iterations. Chance: one in ``--pairs``.

It prints a markdown table and appends it atomically to ``benchmarks/results/hops.md``.
Run: ``.venv/bin/python benchmarks/hops.py --curriculum 1,2,3``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from retrieval import FIRST, SYMBOLS, append_section, build  # noqa: E402

SEP = 5                 # '.'
MARK = 5                # query marker of h hops: MARK + h (ids 6..9), so at most 4 hops
QUERIES = 4
EVAL_ITERS = (1, 2, 4, 8, 16)


def make_batch(g: torch.Generator, batch: int, pairs: int, max_hops: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  torch.Tensor]:
    """(input_ids, labels, hops): a shuffled chain s0→s1→…→s_pairs as ``k v .`` facts, then
    QUERIES queries ``?h s_i s_{i+h}``; labels only on the answers; hops (batch, QUERIES)."""
    chain = torch.stack([torch.randperm(SYMBOLS, generator=g)[:pairs + 1] for _ in range(batch)]) + FIRST
    order = torch.stack([torch.randperm(pairs, generator=g) for _ in range(batch)])
    facts = torch.stack([chain.gather(1, order), chain.gather(1, order + 1), torch.full_like(order, SEP)], -1)
    hops = torch.randint(1, max_hops + 1, (batch, QUERIES), generator=g)
    start = (torch.rand(batch, QUERIES, generator=g) * (pairs + 1 - hops)).long()
    queries = torch.stack([MARK + hops, chain.gather(1, start), chain.gather(1, start + hops)], -1)
    ids = torch.cat([facts.reshape(batch, -1), queries.reshape(batch, -1)], 1)
    labels = torch.full_like(ids, -100)
    answers = 3 * pairs + 3 * torch.arange(QUERIES) + 2
    labels[:, answers] = ids[:, answers]
    return ids, labels, hops


@torch.no_grad()
def accuracy(model: torch.nn.Module, held_out: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
             max_hops: int) -> dict[int, list[float]]:
    """{iterations: [accuracy at 1 hop, 2 hops, …]} on the held-out batch."""
    ids, labels, hops = held_out
    model.eval()
    out = {}
    for r in EVAL_ITERS:
        pred = model(ids, num_steps=r).logits[:, :-1].argmax(-1)
        target = labels[:, 1:]
        ok = (pred[target != -100] == target[target != -100]).float().reshape(hops.shape)
        out[r] = [float(ok[hops == h].mean()) for h in range(1, max_hops + 1)]
    return out


def main(argv: list[str] | None = None) -> int:
    from tqdm.auto import tqdm

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--curriculum", default="1,2,3", help="comma-separated largest hop count of each stage (≤ 4)")
    ap.add_argument("--steps", type=int, default=1500, help="steps per stage")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=8, help="mean core iterations in training")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hops.md"))
    args = ap.parse_args(argv)
    stages = [int(h) for h in args.curriculum.split(",")]
    if not stages or min(stages) < 1 or max(stages) > 4:
        ap.error("--curriculum takes hop counts from 1 to 4, e.g. 1,2,3")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build("recurrent", args.n_embd, args.n_heads, 1, args.iterations, 3 * (args.pairs + QUERIES),
                  FIRST + SYMBOLS)
    train_g = torch.Generator().manual_seed(args.seed + 1)
    held_out = make_batch(torch.Generator().manual_seed(10_000 + args.seed), 512, args.pairs, max(stages))
    rows, t0 = [], time.perf_counter()
    for stage, max_hops in enumerate(stages):
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
        for step in tqdm(range(1, args.steps + 1), desc=f"stage {stage}: 1–{max_hops} hops"):
            ids, labels, _ = make_batch(train_g, args.batch_size, args.pairs, max_hops)
            model.train()
            loss = model(ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            if step % args.eval_every == 0 or step == args.steps:
                rows.append((max_hops, step, loss.item(), accuracy(model, held_out, max(stages)),
                             time.perf_counter() - t0))
    cmd = "python benchmarks/hops.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    hop_cols = range(1, max(stages) + 1)
    head = "| stage (hops) | step | loss | " + " | ".join(f"{h} hop{'s' * (h > 1)} @ r={{{','.join(map(str, EVAL_ITERS))}}}"
                                                      for h in hop_cols) + " | s |"
    text = "\n".join([
        f"## recurrent, d={args.n_embd}, {args.n_heads} heads, {args.pairs} facts, curriculum {args.curriculum}, "
        f"mean {args.iterations} iterations",
        "", f"`{cmd}` ({_dt.date.today()}, {args.threads} thread(s); chance ≈ {1 / args.pairs:.2f}; "
            "each cell: held-out accuracy at 1, 2, 4, 8, 16 core iterations)", "",
        head, "|" + "---:|" * (len(hop_cols) + 4),
        *(f"| 1–{mh} | {s} | {lo:.3f} | " + " | ".join(" ".join(f"{acc[r][h - 1]:.2f}" for r in EVAL_ITERS)
                                                       for h in hop_cols) + f" | {t:.0f} |"
          for mh, s, lo, acc, t in rows), "", ""])
    append_section(Path(args.out), "Multi-hop: accuracy per hop count and core iterations", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
