"""Semantic decoding on ProsQA, measured: every algorithm at several widths, with the Base-LCM's
proposals (with and without the fact checker) and with random proposals (with the tool), on the
real validation set; answer, chain and valid-chain accuracy against processor calls.

Usage:  .venv/bin/python benchmarks/semantic.py [--widths 1,2,3,5,8,12] [--limit N] [--no-figure]
Writes benchmarks/results/semantic.md and .json, and docs/images/semantic_calls.png. The rows alone:
``latent-explorer semantic sweep --out rows.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from explorer.semantic.prosqa import sweep
    from explorer.tasks.prosqa import VALIDATION, load

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="1,2,3,5,8,12")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-figure", action="store_true")
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    problems = load(VALIDATION)
    t0 = time.perf_counter()
    rows = sweep(problems, widths, proposers=("lcm",), tools=(True, False), limit=args.limit, progress=True)
    rows += sweep(problems, widths, proposers=("random",), tools=(True,), limit=args.limit, progress=True)
    minutes = (time.perf_counter() - t0) / 60
    out = REPO / "benchmarks" / "results"
    (out / "semantic.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    lines = ["# Semantic decoding on ProsQA (benchmarks/semantic.py)", "",
             f"The real validation set ({rows[0]['n']} problems). Proposer: the shipped Base-LCM (its concept snapped "
             "to the nearest fact) or random facts; tool: the fact checker vets each step; width: greedy's proposals "
             "per step, best-of-n's n, beam's width, ToT-BFS's breadth (each expansion asks for `width` proposals).", "",
             "| proposer | tool | algorithm | width | accuracy | chain accuracy | valid chains | calls / problem |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['proposer']} | {'yes' if r['tool'] else 'no'} | {r['algorithm']} | {r['width']} | "
                     f"{r['accuracy']:.3f} | {r['chain_accuracy']:.3f} | {r['valid_chain_accuracy']:.3f} | {r['mean_calls']:.1f} |")
    lines += ["", f"Machine: {platform.machine()}, {__import__('os').cpu_count()} CPU cores; {minutes:.1f} min for the "
                  "whole sweep.", ""]
    (out / "semantic.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    if not args.no_figure:
        sys.path.insert(0, str(REPO / "docs"))
        from figures import render

        from explorer.plots import search_calls_figure

        render({"semantic_calls": search_calls_figure(rows)}, REPO / "docs" / "images")


if __name__ == "__main__":
    main()
