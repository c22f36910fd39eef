"""Batched capture of a whole corpus: chosen points only, reduced per text, streamed to disk in shards.

The corpus is cut into shards of ``shard_docs`` consecutive documents. Inside a shard the texts are
sorted by length (longest first) and run in padded batches of ``batch_size`` (right padding with an
attention mask: a causal model's states of real tokens do not see the padding), each forward pass
stopping after the last requested point (:meth:`explorer.Model.capture_forward`). States are reduced
on the model's device as they are captured — the last token, the mean over the text, or every token —
so only the reduced vectors of one shard are ever held; the shard is written (atomically) and the
manifest updated before the next one starts. A re-run with the same settings skips finished shards.

The same per-shard function runs in each Ray actor (:mod:`explorer.corpus.distributed`), so a
distributed capture writes byte-for-byte the same shard format.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..trace import check_points
from ..validate import whole
from .sources import Corpus, read_corpus
from .store import MANIFEST, STORE_DTYPES, CorpusCapture, Manifest, shard_name, write_shard

REDUCE = ("last", "mean", "all")
DEFAULT_SHARD_DOCS = {"last": 1024, "mean": 1024, "all": 64}


def _settings(model: Any, corpus: Corpus, points: Sequence[str] | str | None, reduce: str, batch_size: int,
              dtype: str, max_tokens: int | None, shard_docs: int | None) -> Manifest:
    """Checked settings, as the manifest of a capture not yet started."""
    if reduce not in REDUCE:
        raise InputError(f"reduce must be one of {REDUCE}, got {reduce!r}.")
    if dtype not in STORE_DTYPES:
        raise InputError(f"dtype must be one of {STORE_DTYPES} (how vectors are stored), got {dtype!r}.")
    whole(batch_size, "batch_size", lo=1)
    limit = model.max_length or 1 << 30
    max_tokens = min(whole(max_tokens, "max_tokens", lo=1), limit) if max_tokens is not None else min(512, limit)
    shard_docs = whole(shard_docs, "shard_docs", lo=1) if shard_docs is not None else DEFAULT_SHARD_DOCS[reduce]
    wanted = check_points(points, model.points, model.name)
    return Manifest(model=model.name, points=wanted, reduce=reduce, dtype=dtype, max_tokens=max_tokens,
                    shard_docs=shard_docs, n_docs=len(corpus), fingerprint=corpus.fingerprint, origin=corpus.origin,
                    d_model=model.d_model, shards={}, stats={})


def _default_out(m: Manifest) -> Path:
    from ..paths import cache_dir

    key = hashlib.blake2b(json.dumps(m.settings(), sort_keys=True).encode(), digest_size=12).hexdigest()
    return cache_dir() / "captures" / key


def prepare_out(out: str | Path | None, m: Manifest) -> Manifest:
    """The manifest to continue from: a fresh one, or the finished shards of an earlier run with the same
    settings (typed error when the folder holds anything else)."""
    folder = Path(out) if out is not None else _default_out(m)
    if (folder / MANIFEST).is_file():
        old = Manifest.load(folder)
        if old.settings() != m.settings():
            diff = {k: (v, m.settings()[k]) for k, v in old.settings().items() if m.settings()[k] != v}
            raise InputError(f"{folder} holds a capture with other settings ({', '.join(f'{k}: {a!r} there, {b!r} now' for k, (a, b) in diff.items())}); "
                             "pass another out=, or delete that folder to start over.")
        m.shards = {k: v for k, v in old.shards.items() if (folder / k).is_file()}
        m.stats = old.stats
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} exists and is not a capture folder; pass out= a new or empty folder.")
    folder.mkdir(parents=True, exist_ok=True)
    return m


def shard_docs_of(m: Manifest, i: int) -> range:
    return range(i * m.shard_docs, min((i + 1) * m.shard_docs, m.n_docs))


def tokenize(model: Any, texts: Sequence[str], max_tokens: int) -> tuple[list[list[int]], int]:
    """Token ids of each text (the tokenizer's special tokens included, as ``model.trace`` encodes text),
    cut to ``max_tokens``; and how many texts were cut."""
    ids = model.tokenizer(list(texts))["input_ids"]
    cut = sum(len(x) > max_tokens for x in ids)
    return [list(x[:max_tokens]) for x in ids], cut


def padded_batches(ids: Sequence[Sequence[int]], batch_size: int, pad: int | None = None):
    """(rows, input ids (b, T), attention mask (b, T), lengths (b,)) of the non-empty texts, longest first,
    right-padded: the batches a capture runs (and what ``benchmarks/capture_corpus.py`` times a plain
    forward on)."""
    pad = int(pad) if pad is not None else 0
    order = sorted((j for j in range(len(ids)) if ids[j]), key=lambda j: (-len(ids[j]), j))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        lens = torch.tensor([len(ids[j]) for j in batch])
        x = torch.full((len(batch), int(lens.max())), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, j in enumerate(batch):
            x[r, : len(ids[j])] = torch.tensor(ids[j])
            mask[r, : len(ids[j])] = 1
        yield batch, x, mask, lens


@torch.inference_mode()
def capture_shard(model: Any, texts: Sequence[str], first_doc: int, m: Manifest, batch_size: int,
                  bar: Any = None) -> tuple[dict[str, list], np.ndarray, dict[str, int]]:
    """The rows and (n, d) float32 vectors of one shard, in (doc, point, position) order."""
    ids, cut = tokenize(model, texts, m.max_tokens)
    device = model.device
    got: dict[tuple[int, str], np.ndarray] = {}
    n_run = 0
    for batch, x, mask, lens in padded_batches(ids, batch_size, getattr(model.tokenizer, "pad_token_id", None)):
        n_run += len(batch)
        lens_d, mask_d = lens.to(device), mask.to(device)
        starts = torch.cumsum(lens, 0) - lens

        def keep(point: str, h: torch.Tensor) -> None:
            h = h.detach()
            if m.reduce == "last":
                out = h[torch.arange(len(batch), device=h.device), lens_d - 1]
            elif m.reduce == "mean":
                out = (h.float() * mask_d[..., None]).sum(1) / lens_d[:, None]
            else:
                out = h[mask_d.bool()]
            out = out.float().cpu().numpy()
            if m.reduce == "all":  # the batch's real tokens, row after row
                for j, lo, n in zip(batch, starts.tolist(), lens.tolist()):
                    got[(j, point)] = out[lo: lo + n]
            else:
                for r, j in enumerate(batch):
                    got[(j, point)] = out[r: r + 1]

        model.capture_forward(x.to(device), m.points, keep, attention_mask=None if bool(mask.all()) else mask_d)
        if bar is not None:
            bar.advance(len(batch), int(lens.sum()))
    if bar is not None and n_run < len(ids):
        bar.advance(len(ids) - n_run, 0)  # empty texts: nothing to run
    rows: dict[str, list] = {c: [] for c in ("doc", "text", "position", "token", "n_tokens", "point")}
    chunks = []
    for j in range(len(ids)):
        if not ids[j]:
            continue
        n = len(ids[j])
        positions = list(range(n)) if m.reduce == "all" else [n - 1] if m.reduce == "last" else [-1]
        tokens = ["" if p < 0 else model.decode_one(ids[j][p]) for p in positions]
        for point in m.points:
            rows["doc"] += [first_doc + j] * len(positions)
            rows["text"] += [texts[j]] * len(positions)
            rows["position"] += positions
            rows["token"] += tokens
            rows["n_tokens"] += [n] * len(positions)
            rows["point"] += [point] * len(positions)
            chunks.append(got[(j, point)])
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, m.d_model), np.float32)
    stats = {"tokens": sum(len(i) for i in ids), "truncated": cut, "empty": sum(not i for i in ids)}
    return rows, vectors, stats


def run_shard(model: Any, texts: Sequence[str], m: Manifest, i: int, folder: Path, batch_size: int,
              bar: Any = None) -> tuple[int, dict[str, Any]]:
    """Capture shard ``i`` (``texts``: its documents) and write it; returns (rows, stats with the seconds it took)."""
    t0 = time.perf_counter()
    rows, vectors, stats = capture_shard(model, texts, shard_docs_of(m, i).start, m, batch_size, bar)
    n = write_shard(folder / shard_name(i), rows, vectors, m.dtype)
    stats["seconds"] = time.perf_counter() - t0
    return n, stats


def add_stats(m: Manifest, stats: dict[str, Any]) -> None:
    for k, v in stats.items():
        m.stats[k] = m.stats.get(k, 0) + v
    if m.stats.get("seconds"):
        m.stats["tokens_per_s"] = round(m.stats["tokens"] / m.stats["seconds"], 1)


class _Progress:
    """A tqdm bar over texts, with the tokens per second and the shards done beside it."""

    def __init__(self, total: int, n_texts: int, m: Manifest) -> None:
        from tqdm.auto import tqdm

        self.m, self.tokens, self.t0 = m, 0, time.perf_counter()
        self.bar = tqdm(total=total, unit="text", desc=f"capturing {n_texts:,} texts", smoothing=0.1)

    def advance(self, texts: int, tokens: int) -> None:
        self.tokens += tokens
        rate = self.tokens / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{rate:,.0f} tok/s, {len(self.m.shards)}/{self.m.n_shards} shards", refresh=False)
        self.bar.update(texts)

    def close(self) -> None:
        self.bar.close()


def capture_corpus(model: Any, source: Any, *, points: Sequence[str] | str | None = None, reduce: str = "last",
                   batch_size: int = 32, out: str | Path | None = None, dtype: str = "float32",
                   max_tokens: int | None = None, shard_docs: int | None = None, text_field: str = "text",
                   progress: bool = True) -> CorpusCapture:
    """Capture the hidden states of every text of ``source`` at ``points`` and write them to ``out``.

    ``source``: a list of strings, a ``.txt`` / ``.jsonl`` / ``.parquet`` file, or a ``datasets`` dataset
    (see :func:`explorer.corpus.read_corpus`). ``points``: capture-point names (default: all of them).
    ``reduce``: ``"last"`` (the last token's state: what a causal model knows of the whole text),
    ``"mean"`` (mean over tokens) or ``"all"`` (every token). ``dtype``: how vectors are stored
    (``"float16"``/``"bfloat16"`` halve the disk). ``max_tokens`` (default 512) cuts long texts.
    ``out``: the capture folder (default: a folder in the cache named by the model, the corpus and
    the settings, so the same call twice reads the first run's shards). Interrupted? Call again:
    finished shards are skipped. Returns a :class:`~explorer.corpus.CorpusCapture`.
    """
    if not hasattr(model, "capture_forward"):
        raise InputError(f"a corpus capture runs a causal language model (explorer.load_model(...)), not a "
                         f"{type(model).__name__}; for a recurrent-depth model, trace texts one by one with model.iterate.")
    corpus = read_corpus(source, text_field=text_field)
    m = _settings(model, corpus, points, reduce, batch_size, dtype, max_tokens, shard_docs)
    folder = Path(out) if out is not None else _default_out(m)
    m = prepare_out(folder, m)
    todo = [i for i in range(m.n_shards) if shard_name(i) not in m.shards]
    bar = _Progress(sum(len(shard_docs_of(m, i)) for i in todo), len(corpus), m) if todo and progress else None
    try:
        for i in todo:
            docs = shard_docs_of(m, i)
            n, stats = run_shard(model, corpus.texts[docs.start:docs.stop], m, i, folder, int(batch_size), bar)
            m.shards[shard_name(i)] = n
            add_stats(m, stats)
            m.save(folder)
    finally:
        if bar is not None:
            bar.close()
    if not m.shards:  # nothing to do and nothing there (an empty corpus is refused earlier): write the manifest
        m.save(folder)
    return CorpusCapture(folder)


__all__ = ["capture_corpus", "capture_shard", "run_shard", "REDUCE"]
