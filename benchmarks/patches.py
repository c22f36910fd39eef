"""Byte patches, measured: what the BLT paper shows, on the shipped entropy model, and its speed.

Claims checked (issue 19):
  * bits per byte of the entropy model on held-out text, beside byte n-gram baselines (from the
    model's provenance, measured when it was shipped);
  * bytes per patch against bytes per SmolLM2 token over the held-out corpus, and the thresholds
    at which patches match 4.5 bytes (the paper's) and the tokenizer;
  * entropy spikes at the start of words: mean entropy of a word's first byte against the others,
    and the share of patch starts that fall on a word start;
  * the monotonic rule on repetitive text: patches per repetition of a repeated sentence, global
    against monotonic, each at its 4.5-byte threshold;
  * speed: entropies + patching in bytes per second (CPU; GPU when present).

Usage:  .venv/bin/python benchmarks/patches.py [--model byte-entropy] [--max-bytes 100000] [--no-figures]
Writes benchmarks/results/patches.md (and docs/images/patch_entropy.png, patch_sizes.png).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXAMPLE = "Daenerys Targaryen is in Game of Thrones, a fantasy epic by George R.R. Martin."
REPEATED = "The quick brown fox jumps over the lazy dog. " * 8


def main() -> None:
    import torch

    import explorer
    from explorer.patches.corpus import documents
    from explorer.patches.entropy import byte_entropies
    from explorer.patches.patching import RULES, calibrate, starts
    from explorer.patches.tokens import default_tokenizer, token_spans
    from explorer.patches.trajectory import cut

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="byte-entropy")
    ap.add_argument("--max-bytes", type=int, default=100_000)
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args()

    model = explorer.load_model(args.model, device="cpu")
    prov_file = Path(str(getattr(model.hf, "name_or_path", ""))) / "provenance.json"
    prov = json.loads(prov_file.read_text()) if prov_file.is_file() else {}
    by_source: dict[str, list[str]] = {}
    for name, t in documents("held_out", model.hf.config.byte_entropy.get("sources", ["kjv", "fortunes"])):
        by_source.setdefault(name.split("/")[0], []).append(t)
    texts, n, i = [], 0, 0        # the sources interleaved, one document each in turn, up to --max-bytes
    while n < args.max_bytes and any(i < len(v) for v in by_source.values()):
        for v in by_source.values():
            if i < len(v) and n < args.max_bytes:
                texts.append(v[i])
                n += len(v[i].encode())
        i += 1
    corpus = "".join(texts)

    # speed: entropies, then patching, on the CPU (and the GPU when there is one)
    speed = {}
    t0 = time.perf_counter()
    r = byte_entropies(model, corpus)
    speed["cpu entropies"] = len(r.data) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(5):
        starts(r.entropy, 1.0, "global")
    speed["patching (global rule)"] = 5 * len(r.data) / (time.perf_counter() - t0)
    if torch.cuda.is_available():
        gm = explorer.load_model(args.model, device="cuda")
        byte_entropies(gm, corpus[:10_000])
        t0 = time.perf_counter()
        byte_entropies(gm, corpus, batch_size=64)
        speed["gpu entropies"] = len(r.data) / (time.perf_counter() - t0)

    # patches against tokens over the corpus
    tok = default_tokenizer()
    n_tok = sum(len(token_spans(tok, t)) for t in texts)
    bpt = len(r.data) / n_tok
    rows, curves = [], {}
    for rule in RULES:
        th45 = calibrate(r.entropy, 4.5, rule)
        thtok = calibrate(r.entropy, bpt, rule)
        rows.append((rule, th45, thtok))
        vals = r.entropy if rule == "global" else np.diff(r.entropy)
        grid = np.quantile(vals, np.linspace(0.02, 0.995, 60))
        curves[rule] = {"threshold": grid.tolist(),
                        "bytes_per_patch": [len(r.data) / int(starts(r.entropy, g, rule).sum()) for g in grid]}

    # entropy at word starts
    data = r.data
    word_start = np.array([i > 0 and data[i - 1] in b" \n" and data[i] not in b" \n" for i in range(len(data))])
    inside = np.array([data[i] not in b" \n" for i in range(len(data))]) & ~word_start
    s45 = starts(r.entropy, rows[0][1], "global")
    share_word = float(word_start[s45].mean())

    # repetitive text
    rep = byte_entropies(model, REPEATED)
    sent = len(REPEATED) // 8
    per_rep = {}
    for rule, th45, _ in rows:
        m = starts(rep.entropy, th45, rule)
        per_rep[rule] = [int(m[i * sent:(i + 1) * sent].sum()) for i in range(8)]

    res = prov.get("results", {})
    ev = next(iter(res.values()), {}) if res else {}
    lines = ["# Byte patches (benchmarks/patches.py)", "",
             f"Model `{args.model}`; held-out text: {len(r.data):,} bytes of {len(texts)} documents (King James chapters "
             "and fortunes in turn).", "",
             "| measurement | value |", "|---|---:|"]
    if ev:
        lines.append(f"| bits per byte, held-out ({ev.get('bytes', 0):,} bytes; at shipping) | {ev.get('bits_per_byte')} |")
        for k, v in ev.get("ngram_bits_per_byte", {}).items():
            lines.append(f"| byte {k}-gram (Witten-Bell), same split | {v} |")
    lines.append(f"| bits per byte on this slice | {r.bits_per_byte:.3f} |")
    lines.append(f"| SmolLM2 BPE: bytes per token | {bpt:.2f} |")
    for rule, th45, thtok in rows:
        lines.append(f"| {rule} rule: θ for 4.5 bytes/patch | {th45:.3f} |")
        lines.append(f"| {rule} rule: θ for {bpt:.2f} bytes/patch (= SmolLM2 tokens) | {thtok:.3f} |")
    lines.append(f"| mean entropy, first byte of a word | {r.entropy[word_start].mean():.2f} nats |")
    lines.append(f"| mean entropy, other bytes inside words | {r.entropy[inside].mean():.2f} nats |")
    lines.append(f"| share of patch starts on a word's first byte (global, 4.5 bytes/patch) | {share_word:.2f} "
                 f"(bytes that start words: {word_start.mean():.2f}) |")
    for rule in RULES:
        lines.append(f"| repeated sentence ×8, patches per repetition ({rule}) | {per_rep[rule]} |")
    for k, v in speed.items():
        lines.append(f"| speed: {k} | {v:,.0f} bytes/s |")
    lines += ["", f"Machine: {platform.machine()}, {__import__('os').cpu_count()} CPU cores, torch threads "
                  f"{torch.get_num_threads()}, Python {platform.python_version()}.", ""]
    out = REPO / "benchmarks" / "results" / "patches.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))

    if not args.no_figures:
        sys.path.insert(0, str(REPO / "docs"))
        from figures import render

        from explorer.plots import byte_entropy_figure, patch_size_figure

        ex = byte_entropies(model, EXAMPLE)
        p = cut(ex, rows[0][1], "global")
        first = {a for a, _ in p.bounds}
        chars, ents, st = [], [], []
        i = 0
        for ch in EXAMPLE:
            chars.append(ch)
            ents.append(float(ex.entropy[i]))
            st.append(i in first)
            i += len(ch.encode())
        render({"patch_entropy": byte_entropy_figure(chars, ents, st, threshold=rows[0][1],
                                                     title=f"Next-byte entropy of {args.model}; red: a patch starts "
                                                           "(global rule, 4.5 bytes/patch on held-out text)"),
                "patch_sizes": patch_size_figure(curves, bytes_per_token=bpt)}, REPO / "docs" / "images")


if __name__ == "__main__":
    main()
