"""explorer.projection: stable layouts, the on-disk cache, PCA and a real UMAP fit."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.errors import InputError
from explorer.projection import PCAProjection, UMAPProjection, content_key, fit_projection


def blobs(n_per: int = 150, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (4, d))
    return np.concatenate([c + rng.normal(0, 1, (n_per, d)) for c in centres]).astype(np.float32)


def test_pca_places_new_points_without_moving_old(tmp_path):
    x = blobs()
    p = fit_projection(x, "pca", cache_dir=tmp_path)
    assert isinstance(p, PCAProjection) and p.embedding.shape == (len(x), 2)
    before = p.place(x[:50])
    new = p.place(np.random.default_rng(1).normal(0, 1, (7, x.shape[1])))
    assert new.shape == (7, 2)
    np.testing.assert_array_equal(p.place(x[:50]), before)
    np.testing.assert_allclose(before, p.embedding[:50], atol=1e-4)
    # PCA axes carry most variance: the 4 blobs are separated on the map
    labels = np.repeat(np.arange(4), 150)
    centres = np.stack([p.embedding[labels == k].mean(0) for k in range(4)])
    spread = np.mean([p.embedding[labels == k].std(0).mean() for k in range(4)])
    assert np.min([np.linalg.norm(centres[i] - centres[j]) for i in range(4) for j in range(i)]) > spread


def test_pca_normalize_projects_directions(tmp_path):
    x = blobs()
    p = fit_projection(x, "pca", cache=False, normalize=True)
    np.testing.assert_allclose(p.place(x[:5] * 100.0), p.place(x[:5]), atol=1e-4)
    q = fit_projection(x, "pca", cache=False)
    assert not np.allclose(q.place(x[:5] * 100.0), q.place(x[:5]))


def test_cache_is_keyed_by_content_and_written_atomically(tmp_path):
    x = blobs()
    p = fit_projection(x, "pca", cache_dir=tmp_path)
    files = list(tmp_path.glob("pca-*.safetensors"))
    assert len(files) == 1 and p.key in files[0].name
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind
    q = fit_projection(x, "pca", cache_dir=tmp_path)
    assert q.from_cache and not p.from_cache
    np.testing.assert_array_equal(q.embedding, p.embedding)
    np.testing.assert_array_equal(q.place(x[:3] + 1), p.place(x[:3] + 1))
    y = x.copy()
    y[0, 0] += 1e-3
    assert content_key(y, "pca", {}) != content_key(x, "pca", {})
    assert not fit_projection(y, "pca", cache_dir=tmp_path).from_cache
    assert len(list(tmp_path.glob("pca-*.safetensors"))) == 2


def test_corrupt_cache_file_is_refitted(tmp_path):
    x = blobs()
    p = fit_projection(x, "pca", cache_dir=tmp_path)
    path = next(tmp_path.glob("pca-*.safetensors"))
    path.write_bytes(b"not a safetensors file")
    q = fit_projection(x, "pca", cache_dir=tmp_path)
    assert not q.from_cache
    np.testing.assert_allclose(q.embedding, p.embedding, atol=1e-5)
    assert fit_projection(x, "pca", cache_dir=tmp_path).from_cache  # rewritten


def test_bad_inputs_name_the_fix():
    with pytest.raises(InputError, match="at least 3"):
        fit_projection(np.zeros((2, 4)), "pca", cache=False)
    with pytest.raises(InputError, match="NaN"):
        fit_projection(np.full((5, 4), np.nan), "pca", cache=False)
    with pytest.raises(InputError, match="method"):
        fit_projection(blobs(), "tsne", cache=False)
    p = fit_projection(blobs(), "pca", cache=False)
    with pytest.raises(InputError, match="24-d"):
        p.place(np.zeros((1, 5)))


def test_umap_fit_is_stable_and_reloads_from_cache_without_pickle(tmp_path):
    """A real UMAP fit (umap-learn): old points never move; the cache restores the same map."""
    x = blobs(n_per=120)
    p = fit_projection(x, "umap", cache_dir=tmp_path, n_neighbors=10)
    assert isinstance(p, UMAPProjection) and p.embedding.shape == (len(x), 2)
    assert np.isfinite(p.embedding).all()
    emb0 = p.embedding.copy()
    rng = np.random.default_rng(3)
    new = x[rng.integers(0, len(x), 10)] + rng.normal(0, 0.3, (10, x.shape[1])).astype(np.float32)
    a = p.place(new)
    assert a.shape == (10, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(p.embedding, emb0)  # placing never moves the fitted points
    np.testing.assert_array_equal(p.place(x), emb0)
    # new points land near the blob they were drawn from
    labels = np.repeat(np.arange(4), 120)
    centres = np.stack([emb0[labels == k].mean(0) for k in range(4)])
    src = labels[np.argmin(((x[None] - new[:, None]) ** 2).sum(-1), axis=1)]
    nearest_centre = np.argmin(((a[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest_centre == src).mean() >= 0.8
    # the cache holds only arrays (no pickle) and restores an equivalent model
    files = list(tmp_path.glob("umap-*.safetensors"))
    assert len(files) == 1 and b"pickle" not in files[0].read_bytes()[:2000]
    q = fit_projection(x, "umap", cache_dir=tmp_path, n_neighbors=10)
    assert q.from_cache
    np.testing.assert_array_equal(q.embedding, emb0)
    np.testing.assert_allclose(q.place(new), a, atol=1e-4)


def _clusters(n: int, d: int = 24, k: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32) * 3
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)).astype(np.float32)


def test_knn_placement_lands_where_umap_transform_does(tmp_path):
    from explorer.projection import knn_place

    x = _clusters(900)
    proj = fit_projection(x[:600], "umap", cache=False)
    by_umap = proj.place(x[600:])
    proj.placement = "knn"
    by_knn = proj.place(x[600:])
    span = np.ptp(proj.embedding, axis=0).mean()
    gap = np.linalg.norm(by_umap - by_knn, axis=1) / span
    assert np.median(gap) < 0.05 and np.quantile(gap, 0.9) < 0.15, (np.median(gap), np.quantile(gap, 0.9))
    assert np.array_equal(proj.place(x[:7]), proj.embedding[:7])          # fitted vectors keep their places
    far = np.linalg.norm(by_knn[:, None] - proj.embedding[None], axis=2).min(1)
    assert far.max() < span                                               # never thrown off the map
    e = np.array([[0, 0], [10, 0], [0, 10]], np.float32)                 # the weighted mean, by hand
    got = knn_place(np.eye(3, dtype=np.float32), e, np.array([[1, 0.2, 0]], np.float32), k=2, metric="euclidean")
    d = np.array([np.hypot(0, 0.2), np.hypot(1, 0.2)])
    w = np.exp(-(d - d.min()) / (d.mean() - d.min()))
    assert np.allclose(got[0], (w[0] * e[0] + w[1] * e[1]) / w.sum(), atol=1e-5)
    proj.placement = "nearest"
    with pytest.raises(InputError, match="placement"):
        proj.place(x[:2])


def test_layout_fits_a_sample_and_places_the_rest(tmp_path):
    from explorer.projection import layout

    x = _clusters(5000, d=16)
    seen = []
    coords, proj = layout(x, "pca", max_fit=1000, cache=False, chunk=1500, progress=lambda s, f: seen.append(f))
    assert coords.shape == (5000, 2) and len(proj.embedding) == 1000
    assert np.allclose(coords, proj.place(x), atol=1e-4)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    small, p2 = layout(x[:500], "pca", cache=False)
    assert np.array_equal(small, p2.embedding) and len(p2.embedding) == 500
    for bad, match in [(dict(max_fit=2), "max_fit"), (dict(placement="x"), "placement"), (dict(chunk=0), "chunk")]:
        with pytest.raises(InputError, match=match):
            layout(x, "pca", cache=False, **bad)
