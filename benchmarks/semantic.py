"""Semantic decoding on ProsQA, measured: every algorithm at several widths, with the Base-LCM's
proposals (with and without the fact checker) and with random proposals (with the tool), on the
real validation set; answer, chain and valid-chain accuracy against processor calls.

Usage:  .venv/bin/python benchmarks/semantic.py [--widths 1,2,3,5,8,12] [--limit N] [--no-figure]
                [--token-beam prosqa-cot] [--token-beam-only]
Writes benchmarks/results/semantic.md and .json, and docs/images/semantic_calls.png. The rows alone:
``latent-explorer semantic sweep --out rows.json``. ``--token-beam MODEL`` adds the token-level
baseline: beam search over the tokens of a chain-of-thought model (transformers' ``generate``) at the
same widths, with the tokens the model ran as its compute; ``--token-beam-only`` adds it to the rows
of the last sweep (semantic.json) without running the sweep again.
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
    ap.add_argument("--token-beam", metavar="MODEL", help="also beam-search the tokens of this CoT model")
    ap.add_argument("--token-beam-only", action="store_true", help="reuse semantic.json's rows; run only --token-beam")
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    problems = load(VALIDATION)
    out = REPO / "benchmarks" / "results"
    t0 = time.perf_counter()
    if args.token_beam_only:
        rows = [r for r in json.loads((out / "semantic.json").read_text()) if r["proposer"] != "tokens"]
    else:
        rows = sweep(problems, widths, proposers=("lcm",), tools=(True, False), limit=args.limit, progress=True)
        rows += sweep(problems, widths, proposers=("random",), tools=(True,), limit=args.limit, progress=True)
    if args.token_beam:
        rows += token_beam(args.token_beam, problems[: args.limit or len(problems)], widths)
    minutes = (time.perf_counter() - t0) / 60
    (out / "semantic.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    lines = ["# Semantic decoding on ProsQA (benchmarks/semantic.py)", "",
             f"The real validation set ({rows[0]['n']} problems). Proposer: the shipped Base-LCM (its concept snapped "
             "to the nearest fact) or random facts; tool: the fact checker vets each step; width: greedy's proposals "
             "per step, best-of-n's n, beam's width, ToT-BFS's breadth (each expansion asks for `width` proposals).", "",
             "| proposer | tool | algorithm | width | accuracy | chain accuracy | valid chains | calls / problem |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in [r for r in rows if r["proposer"] != "tokens"]:
        lines.append(f"| {r['proposer']} | {'yes' if r['tool'] else 'no'} | {r['algorithm']} | {r['width']} | "
                     f"{r['accuracy']:.3f} | {r['chain_accuracy']:.3f} | {r['valid_chain_accuracy']:.3f} | {r['mean_calls']:.1f} |")
    beams = [r for r in rows if r["proposer"] == "tokens"]
    if beams:
        lines += ["", f"## Token-level beam search of a chain-of-thought model ({beams[0]['model']})", "",
                  "The same problems; the model reads the problem as graph tokens and writes the path, then the answer; "
                  "transformers' beam search keeps `width` token sequences. Its compute is the tokens the model ran "
                  "(the prompt once per beam, then every beam at every step) — forward passes of a 2-layer model, not "
                  "processor calls, so compare the accuracy each buys rather than the two columns' numbers.", "",
                  "| width | accuracy | tokens run / problem | generated tokens / problem |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['width']} | {r['accuracy']:.3f} | {r['mean_forward_tokens']:.0f} | {r['mean_generated_tokens']:.1f} |"
                  for r in beams]
    what = "the token-level beam search (the sweep's rows reused)" if args.token_beam_only else "the whole sweep"
    lines += ["", f"Machine: {platform.machine()}, {__import__('os').cpu_count()} CPU cores; {minutes:.1f} min for {what}.", ""]
    (out / "semantic.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    if not args.no_figure:
        sys.path.insert(0, str(REPO / "docs"))
        from figures import render

        from explorer.plots import search_calls_figure

        render({"semantic_calls": search_calls_figure([r for r in rows if r["proposer"] != "tokens"])}, REPO / "docs" / "images")


def token_beam(model_name: str, problems: list, widths: list[int]) -> list[dict]:
    """Accuracy of token-level beam search of a CoT model at each width (explorer.thoughts.evaluate)."""
    import explorer
    from explorer.thoughts.evaluate import evaluate

    model = explorer.load_model(model_name, device="cpu")
    rows = []
    for w in widths:
        r = evaluate(model, problems, "cot", num_beams=w, progress=True)
        rows.append({"proposer": "tokens", "model": model_name, "tool": False, "algorithm": "token beam", "width": w,
                     "accuracy": r["accuracy"], "n": r["n"], "mean_generated_tokens": r["mean_generated_tokens"],
                     "mean_forward_tokens": r["mean_forward_tokens"]})
    return rows


if __name__ == "__main__":
    main()
