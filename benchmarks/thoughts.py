"""Thoughts benchmark: what does one continuous thought cost, cached versus recomputed?

Claim: :class:`explorer.thoughts.ThoughtSession` advances a thought with ONE single-position forward
over the KV cache, so a thought costs about one greedy decode step whatever the prompt length, while
the cache-free way (recompute the whole ``inputs_embeds`` sequence for every thought, as a naive
Coconut loop does) grows with the prompt and the number of thoughts.

On the default model (SmolLM2-135M-Instruct, offline), CPU, ``--threads`` torch threads, a prompt of
``--prompt-tokens`` tokens and ``--thoughts`` thoughts, it times, interleaved in ``--rounds`` rounds:

- ``coconut`` cached (``think(..., annotate=False)``), ``soft`` cached, ``cot`` cached;
- ``coconut`` recomputed from scratch for every thought;
- HF greedy ``generate`` of the same number of tokens (the reference cost of a decode step).

Before timing it checks that the cached and recomputed coconut thoughts agree (max abs difference).
With ``--checkpoint DIR --data FILE`` it also evaluates ProsQA accuracy of a trained checkpoint for
each method. It prints a markdown table and writes it atomically to ``benchmarks/results/thoughts.md``.
Run: ``.venv/bin/python benchmarks/thoughts.py``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEXT = ("The river runs past the old mill, where the miller's daughter keeps a ledger of every sack of grain "
        "that comes through the door. In winter the wheel freezes and the village waits. ")


def recomputed(model, ids: list[int], n: int) -> torch.Tensor:
    """Coconut without a cache: one full forward over prompt + thoughts for every new thought."""
    emb = model._embed(torch.tensor([ids]))
    out = []
    with torch.inference_mode():
        for _ in range(n):
            h = model.hf(inputs_embeds=emb, use_cache=False, output_hidden_states=True).hidden_states[-1][:, -1:]
            out.append(h[0, 0])
            emb = torch.cat([emb, h], 1)
    return torch.stack(out)


def main(argv: list[str] | None = None) -> int:
    import explorer
    from explorer.io import atomic_write_text
    from explorer.thoughts import think

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--thoughts", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", help="a trained ProsQA checkpoint folder (optional)")
    ap.add_argument("--data", help="ProsQA JSON for --checkpoint")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "thoughts.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = explorer.load_model(device="cpu")
    ids = model.encode(TEXT * 20)[0, : args.prompt_tokens].tolist()
    n = args.thoughts
    cached = think(model, ids, n, "coconut", max_new_tokens=0, annotate=False).trajectory.vectors()
    full = recomputed(model, ids, n).float().numpy()
    diff = float(abs(cached - full).max())

    ids_t = torch.tensor([ids])
    runs = {
        "coconut, cached (ThoughtSession)": lambda: think(model, ids, n, "coconut", max_new_tokens=0, annotate=False),
        "soft, cached": lambda: think(model, ids, n, "soft", max_new_tokens=0, annotate=False),
        "cot, cached": lambda: think(model, ids, n, "cot", max_new_tokens=0, annotate=False),
        "coconut, recomputed per thought": lambda: recomputed(model, ids, n),
        "HF greedy generate (same length)": lambda: model.hf.generate(
            ids_t, attention_mask=torch.ones_like(ids_t), max_new_tokens=n, min_new_tokens=n, do_sample=False,
            pad_token_id=model.tokenizer.eos_token_id),
    }
    for f in runs.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in runs}
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(runs)
        rng.shuffle(order)
        for k in order:
            t = time.perf_counter()
            runs[k]()
            times[k].append(time.perf_counter() - t)
    base = statistics.median(times["HF greedy generate (same length)"])
    lines = [f"# Thoughts benchmark — {_dt.date.today().isoformat()}", "",
             f"`{shlex.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}` on {platform.machine()}, "
             f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads; model {model.name}; "
             f"prompt {len(ids)} tokens, {n} thoughts, median of {args.rounds} interleaved rounds.", "",
             f"Cached vs recomputed coconut thoughts: max |Δ| = {diff:.2e}.", "",
             "| approach (prompt pass + n thoughts) | median s | ms / thought, prompt included | × HF generate |", "|---|---:|---:|---:|"]
    for k, v in times.items():
        m = statistics.median(v)
        lines.append(f"| {k} | {m:.3f} | {1000 * m / n:.1f} | {m / base:.2f} |")
    if args.checkpoint and args.data:
        from explorer.thoughts.evaluate import evaluate
        from explorer.tasks.prosqa.generate import load

        ck = explorer.load_model(args.checkpoint, device="cpu")
        data = load(args.data)
        lines += ["", f"ProsQA on {args.data} (first {args.limit}) with {args.checkpoint}:", "",
                  "| method | accuracy | mean generated tokens |", "|---|---:|---:|"]
        info = getattr(ck.hf.config, "coconut", {}) or {}
        methods = ["coconut", "soft"] if info.get("method") == "coconut" else [info.get("method", "cot")]
        for meth in methods:
            r = evaluate(ck, data, meth, limit=args.limit)
            lines.append(f"| {meth} | {r['accuracy']:.3f} | {r['mean_generated_tokens']:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
