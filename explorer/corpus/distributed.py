"""The corpus capture on Ray, for corpora or models that outgrow one process or one machine.

A Ray Data pipeline: the corpus becomes a dataset whose blocks are the capture's shards (the same
``shard_docs`` documents each), and ``map_batches`` runs them through a pool of actors
(``ActorPoolStrategy``) — one model replica per actor, loaded once by name, on a GPU each when the cluster has them (``gpus_per_worker``)
and else on ``threads_per_worker`` CPU threads. Each actor runs the very function of the
single-process capture (:func:`explorer.corpus.capture.run_shard`) and writes its shard itself; the
driver is the only writer of the manifest, which it updates as shards finish, so a killed run
resumes like a single-process one. A model larger than one GPU keeps using accelerate's
``device_map="auto"`` inside each replica (``device="auto"`` with several GPUs per worker).

On a multi-node cluster, ``out`` must be a folder every node sees (NFS, a mounted bucket) and the
model a name every node can load (a registered name, a Hub id, or a path present on every node).
Install with ``pip install latent-explorer[scale]``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import DependencyError, InputError
from ..validate import whole
from .capture import _default_out, _settings, add_stats, prepare_out, run_shard, shard_docs_of
from .sources import read_corpus
from .store import CorpusCapture, Manifest, shard_name


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DependencyError("the Ray capture needs Ray Data: pip install 'latent-explorer[scale]' "
                              "(or pip install 'ray[data]'); without it, use model.capture(...) in one process.") from None
    return ray


@dataclass
class ModelInfo:
    """What the driver needs to know of a model to plan a capture (the workers load the weights)."""

    name: str
    max_length: int | None
    d_model: int
    points: list[str]


class ShardWorker:
    """One model replica (a Ray actor): captures and writes whole shards."""

    def __init__(self, model: str, device: str, dtype: str, threads: int, manifest: dict[str, Any], out: str,
                 batch_size: int) -> None:
        import torch

        from ..loading import load_model

        torch.set_num_threads(threads)
        self.model = load_model(model, device=device, dtype=dtype)
        self.m = Manifest(**manifest)
        self.out = Path(out)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        shards, rows, stats = [], [], []
        for i, texts in zip(batch["shard"], batch["texts"]):
            n, st = run_shard(self.model, [str(t) for t in texts], self.m, int(i), self.out, self.batch_size)
            shards.append(int(i))
            rows.append(n)
            stats.append(st)
        return {"shard": shards, "rows": rows, "stats": [json.dumps(s) for s in stats]}


def describe_model(model: str, device: str = "cpu", dtype: str = "auto") -> ModelInfo:
    """Load ``model`` once in this process to read its name, points and width (cheap for the models this
    runs on a laptop; on a cluster the driver needs no GPU for it)."""
    from ..loading import load_model

    m = load_model(model, device=device, dtype=dtype)
    return ModelInfo(m.name, m.max_length, m.d_model, list(m.points))


def capture_ray(model: str, source: Any, *, out: str | Path | None = None, address: str | None = "auto",
                workers: int = 2, threads_per_worker: int = 1, gpus_per_worker: float = 0, device: str = "cpu",
                dtype: str = "auto", points: Sequence[str] | str | None = None, reduce: str = "last",
                batch_size: int = 32, store_dtype: str = "float32", max_tokens: int | None = None,
                shard_docs: int | None = None, text_field: str = "text", progress: bool = True) -> CorpusCapture:
    """:func:`explorer.corpus.capture_corpus` as a Ray Data pipeline over ``workers`` model replicas.

    ``model`` is a name or path every worker loads (:func:`explorer.load_model`). ``address``:
    ``"auto"`` joins a running cluster (``ray start --head`` / the cluster's address) or starts a local
    one; ``"local"`` always starts a local one; ``"ray://host:10001"`` connects a client. Each worker
    takes ``threads_per_worker`` CPUs (and ``gpus_per_worker`` GPUs: set 1 and ``device="cuda"`` on a GPU
    cluster). The shards, manifest and read-back are those of the single-process capture."""
    ray = _ray()
    workers = whole(workers, "workers", lo=1)
    threads = whole(threads_per_worker, "threads_per_worker", lo=1)
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError:
                if address != "auto":
                    raise InputError(f"no Ray cluster at {address!r}; start one (ray start --head) or pass "
                                     "address='local'.") from None
                ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
    corpus = read_corpus(source, text_field=text_field)
    info = describe_model(model, dtype=dtype)
    m = _settings(info, corpus, points, reduce, batch_size, store_dtype, max_tokens, shard_docs)
    folder = Path(out) if out is not None else _default_out(m)
    m = prepare_out(folder, m)
    todo = [i for i in range(m.n_shards) if shard_name(i) not in m.shards]
    if todo:
        items = [{"shard": i, "texts": list(corpus.texts[shard_docs_of(m, i).start: shard_docs_of(m, i).stop])} for i in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        done = ds.map_batches(
            ShardWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))), num_cpus=threads,
            num_gpus=gpus_per_worker or None,
            fn_constructor_kwargs=dict(model=model, device=device, dtype=dtype, threads=threads,
                                       manifest=m.__dict__ | {"shards": {}, "stats": {}}, out=str(folder),
                                       batch_size=int(batch_size)))
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        bar = tqdm(total=len(todo), unit="shard", desc=f"capturing on Ray ({workers} workers)", disable=not progress)
        try:
            for row in done.iter_rows():
                m.shards[shard_name(int(row["shard"]))] = int(row["rows"])
                add_stats(m, json.loads(row["stats"]))
                m.stats["wall_seconds_ray"] = round(time.perf_counter() - t0, 3)
                m.save(folder)
                bar.update(1)
        finally:
            bar.close()
    if not m.shards:
        m.save(folder)
    return CorpusCapture(folder)


__all__ = ["capture_ray", "ShardWorker", "describe_model", "ModelInfo"]
