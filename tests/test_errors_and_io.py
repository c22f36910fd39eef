"""Every documented error, and exact save/load round trips."""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import explorer
from explorer import errors


def test_error_hierarchy():
    for cls in (errors.InputError, errors.EmptyInputError, errors.ContextLengthError, errors.VectorError,
                errors.UnknownPointError, errors.ModelNotFoundError, errors.OfflineError, errors.SaveFileError,
                errors.DependencyError):
        assert issubclass(cls, errors.ExplorerError)
    assert issubclass(errors.ContextLengthError, ValueError) and issubclass(errors.OfflineError, ConnectionError)


@pytest.mark.parametrize("bad", ["", "   ", [], [{"role": "user", "content": " "}]])
def test_empty_input(smol, bad):
    with pytest.raises(errors.EmptyInputError, match="empty|non-empty"):
        smol.trace(bad)


def test_too_long_input_raises_unless_truncating(smol):
    long_text = "word " * (smol.max_length + 10)
    with pytest.raises(errors.ContextLengthError, match="truncate=True"):
        smol.encode(long_text)
    assert smol.encode(long_text, truncate=True).shape[1] == smol.max_length


def test_unknown_model_name():
    with pytest.raises(errors.ModelNotFoundError, match="registered name"):
        explorer.load_model("no-such-model")


def test_folder_without_config(tmp_path):
    with pytest.raises(errors.ModelNotFoundError, match="config.json"):
        explorer.load_model(tmp_path)


def test_unreachable_hub_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(errors.OfflineError, match="HF_HUB_OFFLINE"):
        explorer.load_model("some-org/some-model-that-is-not-cached")
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("vec, match", [
    (np.full(576, np.nan, np.float32), "NaN"),
    (np.full(576, 1e300), "infinite"),          # too large for float32: refused, and quietly (no overflow warning)
    (np.zeros(575, np.float32), "size 576"),
    (np.zeros((2, 3, 576), np.float32), "size 576"),
])
def test_bad_vectors(smol, vec, match):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(errors.VectorError, match=match):
            smol.nearest_tokens(vec)


def test_unknown_points(smol):
    with pytest.raises(errors.UnknownPointError, match="layer.29"):
        smol.trace("hi there", points=["layer.99"])
    tr = smol.trace("hi there", points=["layer.1"])
    with pytest.raises(errors.UnknownPointError, match="points="):
        tr["layer.2"]
    with pytest.raises(errors.InputError, match="single token"):
        smol.logit_lens(tr, target=" Paris is")
    with pytest.raises(errors.InputError, match="reduce='mean'"):
        smol.token_vector(" antidisestablishmentarianism")


def test_trace_save_load_exact(smol, tmp_path):
    tr = smol.trace("The capital of France is")
    path = tr.save(tmp_path / "t.safetensors")
    back = explorer.Trace.load(path)
    assert back.tokens == tr.tokens and back.token_ids == tr.token_ids and back.points == tr.points
    assert back.model == tr.model and back.text == tr.text
    for p in tr.points:
        assert torch.equal(back[p], tr[p])
    half = smol.trace("The capital", dtype="float16", points=["layer.2"])
    back = explorer.Trace.load(half.save(tmp_path / "h.safetensors"))
    assert back["layer.2"].dtype == torch.float16 and torch.equal(back["layer.2"], half["layer.2"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_corrupted_and_foreign_save_files(smol, tmp_path):
    good = smol.trace("hello", points=["layer.0"]).save(tmp_path / "good.safetensors")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(errors.SaveFileError, match="corrupted"):
        explorer.Trace.load(truncated)
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(errors.SaveFileError, match="not a latent-explorer trace"):
        explorer.Trace.load(tmp_path / "foreign.safetensors")
    with pytest.raises(errors.SaveFileError, match="does not exist"):
        explorer.Trace.load(tmp_path / "missing.safetensors")
    traj = smol.trace("hello", points=["layer.0"]).trajectory()
    with pytest.raises(errors.SaveFileError, match="trajectory"):
        explorer.Trajectory.load(good)
    assert explorer.Trajectory.load(traj.save(tmp_path / "traj.safetensors")).names == ["layer.0"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.numpy

    def boom(*a, **k):
        Path(a[1]).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    tr = explorer.Trace(tokens=["a"], token_ids=[1], states={"embed": torch.zeros(1, 4)})
    with pytest.raises(OSError):
        tr.save(tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    from explorer.io import atomic_write_text

    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert p.read_text() == "x" and (p.stat().st_mode & 0o777) == 0o644


def test_atomic_dir_replaces_whole_folders_or_nothing(tmp_path):
    from explorer.io import atomic_dir

    dest = tmp_path / "model"
    with atomic_dir(dest) as d:
        (d / "a.txt").write_text("1")
    assert (dest / "a.txt").read_text() == "1" and (dest.stat().st_mode & 0o777) == 0o777 & ~_umask_now()
    with pytest.raises(OSError):
        with atomic_dir(dest) as d:
            (d / "a.txt").write_text("half")
            raise OSError("disk full")
    assert (dest / "a.txt").read_text() == "1"  # the old folder is untouched
    with atomic_dir(dest) as d:
        (d / "b.txt").write_text("2")
    assert sorted(p.name for p in dest.iterdir()) == ["b.txt"]  # replaced whole, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp or .old folders left


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_failed_swap_always_leaves_one_complete_folder(tmp_path, monkeypatch, fail_at):
    """Whichever rename of the swap fails (1: the old folder aside, 2: the new one into place), the
    complete old folder is where readers look, no temporary is left, and the next save succeeds."""
    import explorer.io as io

    dest = tmp_path / "latest"
    with io.atomic_dir(dest) as d:
        (d / "state.json").write_text("old")
    real, calls = os.replace, []

    def flaky(a, b):
        calls.append((a, b))
        if len(calls) == fail_at:
            raise OSError("the disk went away")
        return real(a, b)

    monkeypatch.setattr(io.os, "replace", flaky)
    with pytest.raises(OSError, match="went away"):
        with io.atomic_dir(dest) as d:
            (d / "state.json").write_text("new")
    monkeypatch.setattr(io.os, "replace", real)
    assert (dest / "state.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]
    with io.atomic_dir(dest) as d:
        (d / "state.json").write_text("newer")
    assert (dest / "state.json").read_text() == "newer" and sorted(p.name for p in tmp_path.iterdir()) == ["latest"]


def test_a_save_killed_between_the_renames_is_recovered_by_the_trainer(tmp_path):
    """A kill after the old checkpoint was moved aside and before the new one was in place leaves
    only .latest.old: the trainer finds it (and resumes from it) instead of starting over, and its next
    save does not delete it before the new one is complete."""
    from explorer.training import checkpoint as ck
    from explorer.thoughts.train import TrainConfig, Trainer
    from explorer.tasks.prosqa import generate

    data = generate(8, seed=1)
    cfg = TrainConfig(method="cot", encoding="graph", n_layer=1, n_embd=16, n_head=2, batch_size=4, num_epochs=1,
                      lr=1e-3, device="cpu", threads=1, save_every=1)
    st = Trainer(data, tmp_path / "run", cfg, progress=False).train()
    latest = tmp_path / "run" / "latest"
    os.replace(latest, tmp_path / "run" / ".latest.old")       # the state a kill between the renames leaves
    assert ck.has_checkpoint(latest) and latest.is_dir() and not (tmp_path / "run" / ".latest.old").exists()
    again = Trainer(data, tmp_path / "run", cfg, progress=False)
    assert again.state.global_step == st.global_step == 2


def test_stale_temporaries_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    import time

    import explorer.io as io

    dead_dir, dead_file = tmp_path / ".latest.k1ll3d", tmp_path / ".a.txt.k1ll3d.tmp"
    live_dir = tmp_path / ".latest.wr1t1ng"
    for p in (dead_dir, live_dir):
        p.mkdir()
        (p / "model.safetensors").write_bytes(b"x" * 1000)
    dead_file.write_text("half")
    hour_ago = time.time() - 3600
    for p in (dead_dir, dead_file):
        os.utime(p, (hour_ago, hour_ago))
    with io.atomic_dir(tmp_path / "latest") as d:
        (d / "x").write_text("1")
    io.atomic_write_text(tmp_path / "a.txt", "whole")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".latest.wr1t1ng", "a.txt", "latest"]     # a save still writing (recent) is left alone


def _umask_now() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_trajectory_round_trip_with_probes(smol, tmp_path):
    traj = smol.annotate(smol.trace("The capital of France is").trajectory(-1), k=3)
    back = explorer.Trajectory.load(traj.save(tmp_path / "traj.safetensors"))
    assert back.names == traj.names and back.labels == traj.labels and back.kind == "layers"
    assert np.array_equal(back.vectors(), traj.vectors())
    assert back["layer.29"].probes["output"] == traj["layer.29"].probes["output"]
    assert np.allclose(back.scalar("entropy"), traj.scalar("entropy"))
    assert np.isnan(back.scalar("kl_prev")[0])
    json.dumps(back.to_dict())  # JSON-able


def test_issue_22_reproducers_get_typed_errors(smol, tmp_path):
    """Each bad input the reliability audit found now raises a typed error naming the fix, at once."""
    import time

    from explorer.arithmetic import parse_expression
    from explorer.errors import ContextLengthError, ExplorerError, InputError, SaveFileError, UnknownPointError
    from explorer.thoughts.engine import think

    with pytest.raises(InputError, match="outside .* vocabulary"):
        smol.trace([49152])
    with pytest.raises(UnknownPointError, match="points is empty"):
        smol.trace("Hi", points=[])
    with pytest.raises(InputError, match="floating-point"):
        smol.trace("Hi", dtype=torch.int8)
    tr = smol.trace("Hi", points=["final"])
    with pytest.raises(InputError, match="k must be"):
        smol.logit_lens(tr, k=60000)
    v = tr["final"][-1].numpy()
    assert smol.nearest_tokens(np.flip(v), 3).tokens                 # a negative-stride view works
    for call in (lambda: smol.trace("caf\udce9"), lambda: smol.token_vector("caf\udce9"),
                 lambda: think(smol, "caf\udce9", 1)):
        with pytest.raises(InputError, match="not a character"):
            call()
    with pytest.raises(InputError, match="string 'role' and a string 'content'"):
        smol.trace([{"role": "user"}])
    with pytest.raises(InputError, match="string 'role'"):
        smol.trace([{"role": 3, "content": "Hi"}])
    t0 = time.perf_counter()
    with pytest.raises(ContextLengthError, match="do not fit"):
        think(smol, "Hi", 10**6)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(InputError, match="temperature"):
        think(smol, "Hi", 1, "soft", temperature=float("nan"))
    with pytest.raises(InputError, match="reduce must be"):
        smol.token_vector(" king", reduce="max")
    t0 = time.perf_counter()
    with pytest.raises(ExplorerError):
        parse_expression("a" + " " * 32000 + "b c -")
    assert time.perf_counter() - t0 < 1
    from safetensors.numpy import save_file
    for header in ("[]", '"x"', '{"format": "latent-explorer.trajectory/1"}'):
        f = tmp_path / "bad.safetensors"
        save_file({"token_ids": np.zeros(1, np.int64)}, str(f), metadata={"latent_explorer": header})
        with pytest.raises(SaveFileError):
            explorer.Trajectory.load(f)
        with pytest.raises(SaveFileError):
            explorer.Trace.load(f)


def test_concept_space_nearest_refuses_a_bad_k():
    from explorer.concepts import ConceptSpace
    from explorer.errors import InputError

    space = ConceptSpace("facts")
    with pytest.raises(InputError, match="k must be"):
        space.nearest(space.encode("Paris is the capital of France."), k=-1)


class _Payload:
    """Unpickling this creates a marker file: proof that a load ran code."""

    marker: Path = Path("/nonexistent")

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_runs_nowhere(tmp_path, monkeypatch):
    """A pickle payload planted in every place the project reads files from — a model folder's weights,
    a training run's optimizer state, a trace and a trajectory file, the projection cache, the LCM's
    concept cache — is refused with a typed error (or treated as a cache miss), and never runs."""
    import shutil

    from explorer.errors import ExplorerError
    from explorer.projection import fit_projection
    from explorer.thoughts.train import TrainConfig, Trainer
    from explorer.tasks.prosqa import generate

    marker = tmp_path / "PWNED"
    monkeypatch.setattr(_Payload, "marker", marker)
    evil = {"x": _Payload()}
    # a model folder with pickled weights
    m = tmp_path / "model"
    m.mkdir()
    src = Path(explorer.__file__).parent / "models" / "shipped" / "prosqa-recurrent"
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / f, m / f)
    torch.save(evil, m / "pytorch_model.bin")
    with pytest.raises(ExplorerError, match="pickled weights"):
        explorer.load_model(m, device="cpu")
    # a training run's optimizer state
    data = generate(8, seed=1)
    cfg = TrainConfig(method="cot", encoding="graph", n_layer=1, n_embd=16, n_head=2, batch_size=4, num_epochs=1,
                      device="cpu", threads=1, save_every=1)
    Trainer(data, tmp_path / "run", cfg, progress=False).train()
    torch.save(evil, tmp_path / "run" / "latest" / "optimizer.pt")
    with pytest.raises(ExplorerError, match="not a complete trainer checkpoint"):
        Trainer(data, tmp_path / "run", cfg, progress=False)
    # traces, trajectories and the projection cache are safetensors: pickle bytes are not a file of theirs
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(__import__("pickle").dumps(evil))
    for load in (explorer.Trace.load, explorer.Trajectory.load):
        with pytest.raises(ExplorerError):
            load(bad)
    cache = tmp_path / "proj"
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    fit_projection(x, "pca", cache_dir=cache)
    for f in cache.rglob("*"):
        if f.is_file():
            f.write_bytes(__import__("pickle").dumps(evil))
    assert fit_projection(x, "pca", cache_dir=cache).place(x[:2]).shape == (2, 2)   # refitted, not unpickled
    # the LCM's concept cache (.npz, read without pickles): a planted object array is a miss
    from explorer.concepts.lcm import train as lcm_train

    npz = tmp_path / "concepts.npz"
    np.savez(npz, texts=np.array([evil], dtype=object), vecs=np.zeros((1, 3)))
    monkeypatch.setattr("explorer.concepts.encoders.load_encoder", lambda name: type("E", (), {
        "encode": staticmethod(lambda texts, **kw: np.ones((len(texts), 3), np.float32))})())
    table = lcm_train._concepts([{"statements": ["A is a b."], "question": "Is A a b or c?", "steps": []}], npz, False)
    assert set(table) == {"A is a b.", "Is A a b or c?"}
    assert not marker.exists()


def test_bad_prosqa_files_and_truncated_weights_get_typed_errors(tmp_path):
    """Files that are not UTF-8, JSON nested past any sane depth, or weights cut short: typed errors."""
    import shutil

    from explorer.errors import SaveFileError
    from explorer.tasks.prosqa import load

    (tmp_path / "latin1.json").write_bytes(b'[{"question": "caf\xe9"}]')
    (tmp_path / "deep.json").write_bytes(b"[" * 5000 + b"]" * 5000)
    for name, match in (("latin1.json", "not UTF-8"), ("deep.json", "not valid JSON")):
        with pytest.raises(SaveFileError, match=match):
            load(tmp_path / name)
    m = tmp_path / "m"
    shutil.copytree(Path(explorer.__file__).parent / "models" / "shipped" / "byte-entropy", m)
    (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(SaveFileError, match="truncated or corrupt"):
        explorer.load_model(m, device="cpu")


def test_one_check_per_argument_kind():
    from explorer.errors import InputError
    from explorer.validate import finite, whole

    assert whole(np.int64(3), "k", 1) == 3 and finite(0.5, "top_p", 0.0, 1.0) == 0.5
    for bad in (True, 2.0, "3", None, 0):
        with pytest.raises(InputError, match=r"k must be a whole number >= 1, got"):
            whole(bad, "k", 1)
    with pytest.raises(InputError, match="from 1 to 5"):
        whole(9, "width", 1, 5)
    for bad in (float("nan"), float("inf"), "0.5", 0.0, True):
        with pytest.raises(InputError, match="temperature must be a finite number > 0"):
            finite(bad, "temperature", 0.0, strict_lo=True)
