"""Place vectors on a 2-D map: PCA (instant) and UMAP (umap-learn) with a stable layout.

A projection is *fitted once* on a background set (e.g. a sample of the vocabulary's input
embeddings plus captured states) and then *places* new vectors with :meth:`Projection.transform`;
adding points never moves the old ones.

Fitted projections are cached on disk, keyed by a hash of the content they were fitted on plus
the method and its parameters (``$LATENT_EXPLORER_CACHE/projections``). Writes are atomic.

Trust boundary of the cache: nothing is pickled. A cache file is a safetensors file holding
plain float32 arrays (PCA: mean, components, the fitted embedding; UMAP: the fitted embedding)
and a JSON description; reading one cannot run code. A UMAP is reloaded by rebuilding its
neighbour graph on the same data (``transform_mode="graph"``, which skips the layout
optimisation) and restoring the stored embedding, so ``transform`` behaves as after the original
fit. A tampered or corrupt file can at worst misplace points: its shapes, method, parameters
and content key are checked, and a file that fails the checks is ignored and refitted.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import DependencyError, InputError, SaveFileError
from .io import atomic_write_safetensors, read_safetensors

CACHE_FORMAT = "latent-explorer.projection/1"
METHODS = ("pca", "umap")

#: ``progress(stage, fraction)``: a stage name and how far the whole fit is, 0..1.
ProgressFn = Callable[[str, float], None]


def default_cache_dir() -> Path:
    """``$LATENT_EXPLORER_CACHE/projections`` (default ``~/.cache/latent-explorer/projections``)."""
    from .paths import cache_dir

    return cache_dir() / "projections"


def as_matrix(x: Any, name: str = "vectors") -> np.ndarray:
    """An (n, d) C-contiguous float32 array from numpy, torch, a list or a Trajectory."""
    if hasattr(x, "vectors") and callable(x.vectors):  # a Trajectory
        x = x.vectors()
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"{name} must be an (n, d) array, got shape {a.shape}.")
    step = max(1, (1 << 22) // max(1, a.shape[1]))  # checked in blocks: no (n, d) mask for a million rows
    for start in range(0, a.shape[0], step):
        if not np.isfinite(a[start:start + step]).all():
            raise InputError(f"{name} contains NaN or inf; drop or fix those rows before projecting.")
    return a


def content_key(x: np.ndarray, method: str, params: dict[str, Any]) -> str:
    """A hash of the data, its shape, the method and its parameters (hex, 32 chars)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"m": method, "p": params, "s": list(x.shape), "t": str(x.dtype)},
                        sort_keys=True).encode())
    h.update(np.ascontiguousarray(x).data)
    return h.hexdigest()


@dataclass
class Projection:
    """A fitted 2-D projection. ``embedding`` holds the coordinates of the data it was fitted on."""

    method: str
    key: str
    params: dict[str, Any]
    embedding: np.ndarray
    dim: int
    fit_seconds: float = 0.0
    from_cache: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def transform(self, x: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def place(self, x: Any) -> np.ndarray:
        """Coordinates (n, 2) float32 of new vectors; the fitted points stay where they are."""
        a = as_matrix(x)
        if a.shape[0] == 0:
            return np.zeros((0, 2), np.float32)
        if a.shape[1] != self.dim:
            raise InputError(f"this map was fitted on {self.dim}-d vectors, got {a.shape[1]}-d; "
                             "place vectors from the same model space, or fit a new map.")
        return np.asarray(self.transform(a), dtype=np.float32)

    def _tensors(self) -> dict[str, np.ndarray]:
        return {"embedding": self.embedding}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self.embedding)}, dim={self.dim}, key={self.key[:8]}…"
                f"{', cached' if self.from_cache else ''})")


@dataclass(repr=False)
class PCAProjection(Projection):
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    components: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), np.float32))

    def transform(self, x: Any) -> np.ndarray:
        a = as_matrix(x)
        if self.params.get("normalize"):
            a = _unit_rows(a)
        return ((a - self.mean) @ self.components.T).astype(np.float32)


    def _tensors(self) -> dict[str, np.ndarray]:
        return {"embedding": self.embedding, "mean": self.mean, "components": self.components}


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return (a / np.where(n > 0, n, 1.0)).astype(np.float32)


PLACEMENTS = ("umap", "knn")


@dataclass(repr=False)
class UMAPProjection(Projection):
    """A fitted UMAP. ``placement`` says how new vectors are placed: ``"umap"`` (umap-learn's
    ``transform``: a neighbour search, then refinement epochs; its first call in a process compiles
    numba code, seconds to a minute) or ``"knn"`` (the start of that same transform without the
    refinement: each new vector goes to the weighted mean of its k nearest fitted points' places,
    found exactly with matrix products — milliseconds, nothing to compile; how close it lands to
    ``"umap"`` is measured in docs/corpus.md)."""

    model: Any = None  # umap.UMAP; set after fit or rebuild
    placement: str = "umap"

    def transform(self, x: Any) -> np.ndarray:
        a = as_matrix(x)
        if self.placement == "knn" and self.params.get("metric", "euclidean") in ("cosine", "euclidean"):
            return knn_place(np.asarray(self.model._raw_data, np.float32), self.embedding, a,
                             k=int(self.params["n_neighbors"]), metric=self.params["metric"])
        if self.placement not in PLACEMENTS:
            raise InputError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}.")
        # umap short-cuts the exact training matrix to its embedding; anything else is placed
        return np.asarray(self.model.transform(a), dtype=np.float32)


def knn_place(fitted: np.ndarray, embedding: np.ndarray, x: np.ndarray, *, k: int = 15, metric: str = "cosine",
              chunk: int = 4096) -> np.ndarray:
    """Place each row of ``x`` at the weighted mean of the 2-D places of its ``k`` nearest rows of
    ``fitted`` (exact search, in chunks; torch's matrix product and ``topk``, which run on every core
    and beat numpy's ``argpartition`` 2× here). Weights fall off like UMAP's memberships:
    ``exp(-(d - d_nearest) / (mean d - d_nearest))``; a vector equal to a fitted one lands on it."""
    import torch

    k = max(1, min(k, len(fitted)))
    ref = torch.from_numpy(_unit_rows(fitted) if metric == "cosine" else np.ascontiguousarray(fitted, np.float32))
    ref_sq = (ref * ref).sum(1)
    out = np.empty((len(x), 2), np.float32)
    for start in range(0, len(x), chunk):
        q = torch.from_numpy(_unit_rows(x[start:start + chunk]) if metric == "cosine" else
                             np.ascontiguousarray(x[start:start + chunk], np.float32))
        if metric == "cosine":
            d = 1.0 - q @ ref.T
        else:
            d = ((q * q).sum(1)[:, None] - 2.0 * (q @ ref.T) + ref_sq[None, :]).clamp_min_(0.0).sqrt_()
        dk_t, idx_t = torch.topk(d, k, dim=1, largest=False)
        dk, idx = dk_t.numpy().astype(np.float64), idx_t.numpy()
        lo = dk.min(1, keepdims=True)
        scale = np.maximum(dk.mean(1, keepdims=True) - lo, 1e-12)
        w = np.exp(-(dk - lo) / scale)
        placed = (w[..., None] * embedding[idx]).sum(1) / w.sum(1, keepdims=True)
        same = lo[:, 0] <= 1e-6  # a fitted vector itself (up to rounding) keeps its place
        if same.any():
            placed[same] = embedding[idx[same, np.argmin(dk[same], axis=1)]]
        out[start:start + len(q)] = placed
    return out


# -- fitting ------------------------------------------------------------------------------------
def _pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    c = x - mean
    n, d = c.shape
    if min(n, d) >= 2 and n * d > 4_000_000:  # large: randomized SVD (sklearn) is much faster
        from sklearn.utils.extmath import randomized_svd

        _, _, vt = randomized_svd(c, 2, random_state=0)
    else:
        _, _, vt = np.linalg.svd(c, full_matrices=False)
    comps = np.zeros((2, d), np.float32)
    comps[: min(2, vt.shape[0])] = vt[:2]
    # a fixed sign per axis (largest |loading| positive) so refits of the same data agree
    for i in range(2):
        j = int(np.argmax(np.abs(comps[i]))) if d else 0
        if d and comps[i, j] < 0:
            comps[i] *= -1
    return mean, comps, (c @ comps.T).astype(np.float32)


def _umap_params(n: int, params: dict[str, Any]) -> dict[str, Any]:
    p = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "random_state": 0}
    p.update(params)
    p["n_neighbors"] = int(max(2, min(p["n_neighbors"], n - 1)))
    if p.get("random_state") is not None:
        p.setdefault("n_jobs", 1)  # umap is single-threaded when seeded; say so instead of warning
    return p


def _require_umap() -> Any:
    try:
        import umap
    except ImportError as e:  # pragma: no cover - umap-learn is a dependency
        raise DependencyError("UMAP needs umap-learn: pip install umap-learn (or use method='pca').") from e
    return umap


def _make_umap(p: dict[str, Any], n: int, progress: bool) -> Any:
    umap = _require_umap()
    kw = dict(p)
    kw.setdefault("init", "spectral" if n > p["n_neighbors"] + 2 else "random")
    return umap.UMAP(n_components=2, tqdm_kwds={"disable": not progress, "leave": False}, **kw)


def fit_projection(vectors: Any, method: str = "umap", *, cache: bool = True,
                   cache_dir: str | Path | None = None, progress: bool | ProgressFn = False,
                   **params: Any) -> Projection:
    """Fit (or reload from the cache) a 2-D projection of ``vectors`` (n, d).

    ``method`` is ``"pca"`` (milliseconds; ``normalize=True`` projects directions, i.e. unit-length
    rows, so a few huge-norm states do not dominate) or ``"umap"`` (umap-learn; the first fit in a process
    also compiles numba code, ~20 s). ``params`` go to ``umap.UMAP`` (defaults: ``n_neighbors=15,
    min_dist=0.1, metric="cosine", random_state=0``). ``progress=True`` shows tqdm bars; a callable
    receives ``(stage, fraction)``.
    """
    method = method.lower()
    if method not in METHODS:
        raise InputError(f"unknown projection method {method!r}; use one of {METHODS}.")
    x = as_matrix(vectors)
    n = x.shape[0]
    if n < 3:
        raise InputError(f"a projection needs at least 3 vectors to fit, got {n}; add a background set.")
    if method == "umap" and n < 5:
        method = "pca"  # UMAP is meaningless on a handful of points
    if method == "pca":
        unknown = set(params) - {"normalize"}
        if unknown:
            raise InputError(f"PCA takes only normalize=True/False, not {sorted(unknown)}.")
        p: dict[str, Any] = {"normalize": bool(params.get("normalize", False))}
    else:
        p = _umap_params(n, params)
    key = content_key(x, method, p)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cdir / f"{method}-{key}.safetensors"
    report = _progress_fn(progress, method)
    if cache and path.is_file():
        try:
            proj = _load(path, x, key, method, p, report)
            report("loaded from cache", 1.0)
            return proj
        except SaveFileError:
            pass  # unreadable or not ours: refit and overwrite
    t0 = time.perf_counter()
    if method == "pca":
        report("pca", 0.0)
        mean, comps, emb = _pca(_unit_rows(x) if p["normalize"] else x)
        proj: Projection = PCAProjection("pca", key, p, emb, x.shape[1], mean=mean, components=comps)
    else:
        report("umap: neighbour graph + layout", 0.05)
        model = _make_umap(p, n, progress is True)
        emb = np.asarray(model.fit_transform(x), dtype=np.float32)
        if not np.isfinite(emb).all():  # disconnected points get NaN: park them at the centre
            emb = np.where(np.isfinite(emb), emb, np.nanmean(emb, axis=0)).astype(np.float32)
            model.embedding_ = emb
        proj = UMAPProjection("umap", key, p, emb, x.shape[1], model=model)
    proj.fit_seconds = time.perf_counter() - t0
    if cache:
        report("writing cache", 0.97)
        _save(path, proj)
    report("done", 1.0)
    return proj


def layout(vectors: Any, method: str = "umap", *, max_fit: int = 20_000, seed: int = 0, cache: bool = True,
           cache_dir: str | Path | None = None, progress: bool | ProgressFn = False, chunk: int = 50_000,
           placement: str = "knn", **params: Any) -> tuple[np.ndarray, Projection]:
    """Coordinates (n, 2) for every row of ``vectors`` and the projection that placed them.

    Up to ``max_fit`` rows the projection is fitted on all of them; beyond, on a seeded random
    sample of ``max_fit`` rows, and the rest are placed with :meth:`Projection.place` in chunks of
    ``chunk`` rows; the sample's own points keep their fitted places. ``placement`` (UMAP only):
    ``"knn"`` (default: exact nearest fitted points, no numba compilation) or ``"umap"`` (umap-learn's
    ``transform``); the returned projection places later vectors the same way. Made for maps of 100k
    to millions of points: see docs/corpus.md for the measured costs and how the two placements agree."""
    from .validate import whole

    max_fit = whole(max_fit, "max_fit", lo=3)
    chunk = whole(chunk, "chunk", lo=1)
    if placement not in PLACEMENTS:
        raise InputError(f"placement must be one of {PLACEMENTS}, got {placement!r}.")
    x = as_matrix(vectors)
    n = len(x)
    report = _progress_fn(progress, method)
    if n <= max_fit:
        proj = fit_projection(x, method, cache=cache, cache_dir=cache_dir, progress=report, **params)
        if isinstance(proj, UMAPProjection):
            proj.placement = placement
        return proj.embedding.copy(), proj
    fit_idx = np.sort(np.random.default_rng(seed).choice(n, max_fit, replace=False))
    proj = fit_projection(x[fit_idx], method, cache=cache, cache_dir=cache_dir,
                          progress=lambda stage, f: report(stage, 0.5 * f), **params)
    if isinstance(proj, UMAPProjection):
        proj.placement = placement
    coords = np.empty((n, 2), np.float32)
    coords[fit_idx] = proj.embedding
    rest = np.ones(n, bool)
    rest[fit_idx] = False
    rest_idx = np.flatnonzero(rest)
    for start in range(0, len(rest_idx), chunk):
        idx = rest_idx[start:start + chunk]
        coords[idx] = proj.place(x[idx])
        report(f"placing {min(start + chunk, len(rest_idx)):,} of {len(rest_idx):,}",
               0.5 + 0.5 * min(start + chunk, len(rest_idx)) / len(rest_idx))
    report("done", 1.0)
    return coords, proj


def warm_up() -> float:
    """Fit a tiny UMAP once so numba compiles umap-learn's cacheable functions into its on-disk cache
    (``make setup`` runs this): later processes load them instead of compiling. Returns the seconds."""
    t0 = time.perf_counter()
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    fit_projection(x, "umap", cache=False)
    return time.perf_counter() - t0


def _progress_fn(progress: bool | ProgressFn, method: str) -> ProgressFn:
    if callable(progress):
        return progress
    if not progress:
        return lambda stage, frac: None
    from tqdm.auto import tqdm

    bar = tqdm(total=100, desc=f"fitting {method}", leave=False)

    def report(stage: str, frac: float) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.update(max(0, int(frac * 100) - bar.n))
        if frac >= 1.0:
            bar.close()

    return report


def _save(path: Path, proj: Projection) -> None:
    meta = {"format": CACHE_FORMAT, "method": proj.method, "key": proj.key, "dim": str(proj.dim),
            "params": json.dumps(proj.params, sort_keys=True), "fit_seconds": f"{proj.fit_seconds:.3f}"}
    try:
        atomic_write_safetensors(path, proj._tensors(), meta)
    except OSError:
        pass  # a read-only cache must not break the map


def _load(path: Path, x: np.ndarray, key: str, method: str, p: dict[str, Any],
          report: ProgressFn) -> Projection:
    tensors, meta = read_safetensors(path)
    n, d = x.shape
    ok = (meta.get("format") == CACHE_FORMAT and meta.get("method") == method and meta.get("key") == key
          and meta.get("dim") == str(d) and json.loads(meta.get("params", "null")) == p
          and tensors.get("embedding") is not None and tensors["embedding"].shape == (n, 2))
    if not ok:
        raise SaveFileError(f"{path} does not match the data it is named for.")
    emb = np.ascontiguousarray(tensors["embedding"], dtype=np.float32)
    if not np.isfinite(emb).all():
        raise SaveFileError(f"{path} holds non-finite coordinates.")
    if method == "pca":
        mean, comps = tensors.get("mean"), tensors.get("components")
        if mean is None or comps is None or mean.shape != (d,) or comps.shape != (2, d):
            raise SaveFileError(f"{path} lacks a valid PCA basis.")
        return PCAProjection("pca", key, p, emb, d, from_cache=True, mean=mean.astype(np.float32),
                             components=comps.astype(np.float32))
    # UMAP: rebuild the neighbour graph only (no layout optimisation), then restore the layout
    report("umap: rebuilding neighbour graph", 0.1)
    model = _make_umap(p, n, False)
    model.transform_mode = "graph"
    model.fit(x)
    model.transform_mode = "embedding"
    model.embedding_ = emb
    model._n_features_out = 2
    return UMAPProjection("umap", key, p, emb, d, from_cache=True, model=model)


__all__ = ["Projection", "PCAProjection", "UMAPProjection", "fit_projection", "layout", "knn_place", "PLACEMENTS", "warm_up", "content_key",
           "default_cache_dir", "as_matrix", "METHODS"]
