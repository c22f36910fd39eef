"""The corpus capture on a local Ray cluster (2 workers) gives what the single-process capture gives."""
from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray capture is the [scale] extra: pip install 'latent-explorer[scale]'")

from explorer.corpus import capture_corpus  # noqa: E402
from explorer.corpus.distributed import capture_ray  # noqa: E402

TEXTS = [f"Sentence number {i} is about {w}." for i, w in
         enumerate(["cats", "dogs", "rivers", "stars", "bread", "music", "snow", "trains", "salt", "glass"] * 2)]


@pytest.fixture(scope="module")
def local_cluster():
    # Ray gives its node 30 s to register (hard-coded in ray/_private/node.py); on two cores already busy
    # (a trainer beside the test run) that can pass before the GCS answers, so a second start is allowed
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - Ray raises a bare Exception for it
        if "timed out during startup" not in str(e):
            raise
        ray.shutdown()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_capture_on_two_workers_equals_one_process(local_cluster, smol, tmp_path):
    import torch

    kw = dict(points=["layer.4", "final"], reduce="mean", shard_docs=5, batch_size=3, progress=False)
    cap = capture_ray("smollm2-135m-instruct", TEXTS, out=tmp_path / "ray", workers=2, **kw)
    assert cap.manifest.complete and cap.manifest.n_shards == 4 and cap.manifest.stats["wall_seconds_ray"] > 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same kernels, the same numbers
    try:
        one = capture_corpus(smol, TEXTS, out=tmp_path / "one", **kw)
    finally:
        torch.set_num_threads(threads)
    assert cap.manifest.settings() == one.manifest.settings() and cap.manifest.shards == one.manifest.shards
    assert cap.frame(vectors=False).equals(one.frame(vectors=False))
    for p in kw["points"]:
        np.testing.assert_allclose(cap.vectors(p), one.vectors(p), rtol=1e-5, atol=1e-5)
    # a re-run finds every shard done and starts no worker
    again = capture_ray("smollm2-135m-instruct", TEXTS, out=tmp_path / "ray", workers=2, **kw)
    assert [p.stat().st_mtime_ns for p in again.shard_paths()] == [p.stat().st_mtime_ns for p in cap.shard_paths()]


def test_ray_capture_checks_its_arguments_before_starting_anything(tmp_path):
    from explorer.errors import InputError

    with pytest.raises(InputError, match="workers"):
        capture_ray("smollm2-135m-instruct", TEXTS, out=tmp_path / "x", workers=0)
    assert not (tmp_path / "x").exists()
