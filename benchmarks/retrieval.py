"""Retrieval benchmark: how many training steps until a small model finds a value by its key in context?

Every ProsQA hop is such a lookup: "Tom is a terpus." answers "Tom is a" → " terpus". This
benchmark strips the task to that step, on random symbols, so it trains in minutes on a CPU. A
sequence holds ``--pairs`` facts and then four queries; the loss is on the queried values only:

- ``--gap 0``: facts ``k v``, queries ``? k`` → ``v`` (the value right after its key);
- ``--gap 2``: facts ``k is a v .``, queries ``? k is a`` → ``v`` (ProsQA's form: two words between).

Models: the project's recurrent-depth model (``--model recurrent``: trained with Huginn's randomised
recurrence of mean ``--iterations``, as ``latent-explorer train recurrent`` does; evaluated at it)
and a GPT-2 of the same width from ``transformers`` (``--model gpt2``). Every ``--eval-every`` steps it
measures the accuracy on a fixed held-out batch (chance: one in ``--pairs`` for a model that
copies some value of the context). It prints a markdown table and appends it atomically to
``benchmarks/results/retrieval.md``. Run: ``.venv/bin/python benchmarks/retrieval.py --gap 2``.
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SYMBOLS = 40           # keys and values are drawn from these
FIRST = 10             # symbol ids start here; 1: '?', 3: 'is', 4: 'a', 5: '.'
QUERIES = 4


def make_batch(g: torch.Generator, batch: int, pairs: int, gap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels) of ``batch`` sequences: facts, then QUERIES queries; labels only on the answers."""
    keys = torch.stack([torch.randperm(SYMBOLS, generator=g)[:pairs] for _ in range(batch)]) + FIRST
    vals = torch.randint(FIRST, FIRST + SYMBOLS, (batch, pairs), generator=g)
    filler = [3, 4][:gap]
    const = lambda c: torch.full((batch,), c)  # noqa: E731
    facts = [torch.stack([keys[:, i], *map(const, filler), vals[:, i], *([const(5)] if gap else [])], -1)
             for i in range(pairs)]
    asked = torch.randint(0, pairs, (batch, QUERIES), generator=g)
    queries = [torch.stack([const(1), keys.gather(1, asked[:, j:j + 1])[:, 0], *map(const, filler),
                            vals.gather(1, asked[:, j:j + 1])[:, 0]], -1) for j in range(QUERIES)]
    ids = torch.cat(facts + queries, 1)
    labels = torch.full_like(ids, -100)
    start = sum(f.shape[1] for f in facts)
    for j, q in enumerate(queries):
        end = start + (j + 1) * q.shape[1] - 1
        labels[:, end] = ids[:, end]
    return ids, labels


def build(model: str, d: int, heads: int, prelude: int, iterations: int, block: int, vocab: int,
          rope_base: float = 50_000.0) -> torch.nn.Module:
    if model == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=d, n_layer=4, n_head=heads, n_positions=block,
                                          bos_token_id=2, eos_token_id=2))
    from explorer.recurrent.model import RecurrentConfig, RecurrentForCausalLM

    return RecurrentForCausalLM(RecurrentConfig(n_embd=d, n_heads=heads, intermediate_size=2 * d, vocab_size=vocab,
                                                block_size=block, n_layers_in_prelude=prelude, rope_base=rope_base,
                                                mean_recurrence=iterations, mean_backprop_depth=max(1, iterations // 2),
                                                pad_token_id=0, eos_token_id=2, bos_token_id=2))


def main(argv: list[str] | None = None) -> int:
    from tqdm.auto import tqdm

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="recurrent", choices=["recurrent", "gpt2"])
    ap.add_argument("--gap", type=int, default=2, choices=[0, 1, 2], help="words between a key and its value")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--prelude", type=int, default=1, help="prelude layers (recurrent)")
    ap.add_argument("--iterations", type=int, default=4, help="core iterations in training and evaluation")
    ap.add_argument("--rope-base", type=float, default=50_000.0, help="rotary base (recurrent; Huginn's: 50,000)")
    ap.add_argument("--mix-gap0", type=float, default=0.0,
                    help="share of training batches drawn at gap 0 (a curriculum: the adjacent lookup is learned first)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    block = (args.pairs + QUERIES) * (args.gap + 3)
    model = build(args.model, args.n_embd, args.n_heads, args.prelude, args.iterations, block, FIRST + SYMBOLS,
                  args.rope_base)
    evaluate = {} if args.model == "gpt2" else {"num_steps": args.iterations}
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    train_g = torch.Generator().manual_seed(args.seed + 1)
    held_out = make_batch(torch.Generator().manual_seed(10_000 + args.seed), 256, args.pairs, args.gap)
    rows, t0 = [], time.perf_counter()
    for step in tqdm(range(1, args.steps + 1), desc=f"{args.model} gap {args.gap}"):
        # draw only when mixing, so runs without --mix-gap0 see the same batches as before the flag
        gap = 0 if args.mix_gap0 and float(torch.rand((), generator=train_g)) < args.mix_gap0 else args.gap
        ids, labels = make_batch(train_g, args.batch_size, args.pairs, gap)
        model.train()
        loss = model(ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            with torch.no_grad():
                logits = model(held_out[0], **evaluate).logits[:, :-1]
            target = held_out[1][:, 1:]
            mask = target != -100
            acc = float((logits.argmax(-1)[mask] == target[mask]).float().mean())
            rows.append((step, loss.item(), acc, time.perf_counter() - t0))
    cmd = "python benchmarks/retrieval.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        f"## {args.model}, gap {args.gap}, d={args.n_embd}, {args.n_heads} heads"
        + (f", prelude {args.prelude}, {args.iterations} iterations, rope base {args.rope_base:g}"
           if args.model == "recurrent" else "") + (f", {args.mix_gap0:.0%} of batches at gap 0" if args.mix_gap0 else ""),
        "", f"`{cmd}` ({_dt.date.today()}, {args.threads} thread(s); chance ≈ {1 / args.pairs:.2f})", "",
        "| step | train loss | held-out accuracy | s |", "|---:|---:|---:|---:|",
        *(f"| {s} | {lo:.3f} | {a:.3f} | {t:.0f} |" for s, lo, a, t in rows), "", ""])
    append_section(Path(args.out), "Retrieval: steps until a small model finds a value by its key", text)
    return 0


def append_section(out: Path, title: str, text: str) -> None:
    """Print a results section and append it atomically to ``out`` (a new file starts with ``# title``)."""
    from explorer.io import atomic_write_text

    print(text)
    atomic_write_text(out, (out.read_text(encoding="utf-8") if out.exists() else f"# {title}\n\n") + text)


if __name__ == "__main__":
    sys.exit(main())
