"""Concept space: encoders, ConceptSpace (the arithmetic protocol over sentences), analogies,
the shipped sentence autoencoder and the ProsQA Base-LCM, and their two trainers on the one loop."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.arithmetic import TokenSpace, evaluate, interpolate
from explorer.concepts import (ANALOGIES, BANKS, ConceptSpace, HiddenStateEncoder, MiniLMEncoder, analogy_accuracy,
                               load_encoder, minilm_path, prosqa_statements, sonar_available)
from explorer.concepts.encoders import ConceptEncoder
from explorer.errors import EmptyInputError, InputError, VectorError
from explorer.trajectory import TokenTable, Trajectory

from explorer.tasks.prosqa import VALIDATION as VALID  # noqa: E402  (shipped with the package)
SENTS = ["Tom is a wumpus.", "Every wumpus is a yumpus.", "The little cat chased a red ball across the garden."]


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("minilm")


@pytest.fixture(scope="module")
def space(minilm):
    return ConceptSpace("all", minilm)


class FakeEncoder(ConceptEncoder):
    """Constructed vectors: one axis per known word, summed over the sentence's words."""

    name, dim = "fake", 4
    AXES = {"king": 0, "man": 1, "woman": 2, "queen": 3}

    def __init__(self):
        super().__init__()
        self.calls = 0

    def _encode_batch(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            for w in t.lower().strip(".").split():
                if w in self.AXES:
                    out[r, self.AXES[w]] += 1
        return out


# -- encoders -------------------------------------------------------------------------------------
def test_minilm_shapes_norm_and_determinism(minilm):
    a = minilm.encode(SENTS)
    assert a.shape == (3, 384) and a.dtype == np.float32 and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    fresh = MiniLMEncoder()
    np.testing.assert_allclose(fresh.encode(list(reversed(SENTS)))[::-1], a, atol=1e-5)  # order/batching independent
    assert minilm.encode(SENTS[0]).shape == (1, 384)
    assert minilm.encode_one(SENTS[1]).shape == (384,)
    sim = a @ a.T
    assert sim[0, 1] > sim[0, 2]  # two ProsQA statements are closer than a story sentence


def test_minilm_matches_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed (dev only)")
    model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    ref = model.encode(SENTS, convert_to_numpy=True)
    ours = minilm.encode(SENTS)
    cos = (ours * ref).sum(1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.9999
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_encoder_cache_and_errors():
    enc = FakeEncoder()
    enc.encode(["king", "queen"], batch_size=1)
    assert enc.calls == 2
    enc.encode(["queen", "king", "king"])
    assert enc.calls == 2  # all cached
    with pytest.raises(EmptyInputError):
        enc.encode(["king", "  "])
    with pytest.raises(InputError):
        enc.encode([3])  # type: ignore[list-item]
    with pytest.raises(InputError):
        load_encoder("nope")


def test_hidden_state_encoder(smol):
    enc = HiddenStateEncoder(smol, layer=4)
    v = enc.encode(SENTS[:2])
    assert v.shape == (2, smol.d_model) and np.isfinite(v).all()
    # batched (padded) encoding equals encoding each sentence alone: padding is masked out
    np.testing.assert_allclose(enc._encode_batch([SENTS[0]])[0], v[0], atol=1e-4)
    tr = smol.trace(SENTS[1], points=["layer.4"])
    np.testing.assert_allclose(tr["layer.4"].float().numpy()[1:].mean(0) if tr.token_ids[0] == smol.tokenizer.bos_token_id
                               else tr["layer.4"].float().numpy().mean(0), v[1], atol=1e-3)
    with pytest.raises(InputError):
        HiddenStateEncoder(smol, layer=999)


def test_sonar_encoder():
    ok, why = sonar_available()
    if not ok:
        pytest.skip(f"SONAR not available: {why}")
    from explorer.concepts import SonarEncoder

    try:
        enc = SonarEncoder()
    except Exception as e:  # weights not downloaded (offline)
        pytest.skip(f"SONAR weights not available offline: {e}")
    v = enc.encode(SENTS[:2])
    assert v.shape == (2, 1024)
    assert isinstance(enc.decode(v[:1])[0], str)


# -- concept space --------------------------------------------------------------------------------
def test_concept_space_protocol_and_nearest(space):
    assert isinstance(space, TokenSpace)
    assert len(space) == sum(len(b) for b in BANKS.values())
    t = space.nearest(space.encode("Berlin is the capital of Germany."), k=3)
    assert isinstance(t, TokenTable) and t.space == "bank" and t.top == "Berlin is the capital of Germany."
    assert t.scores[0] == pytest.approx(1.0, abs=1e-5) and space.sentences[t.ids[0]] == t.top
    t2 = space.nearest(space.encode("Berlin is the capital of Germany."), k=3, exclude=["Berlin is the capital of Germany."])
    assert t2.top != t.top and "capital" in t2.top
    with pytest.raises(VectorError):
        space.nearest(np.ones(5))
    with pytest.raises(EmptyInputError):
        space.encode(" ")


def test_sentence_arithmetic_through_explorer_arithmetic(space):
    res = evaluate(space, '"The food at this restaurant is delicious." - "The hotel room was clean and comfortable." '
                          '+ "The hotel room was dirty and noisy."', k=5)
    assert res.table.space == "bank" and len(res.table) == 5
    assert "The food was cold and tasted terrible." in res.table.tokens[:3]
    traj = space.arithmetic('"The cat was happy to sleep on the warm blanket." - happy + afraid', k=3)
    assert isinstance(traj, Trajectory) and traj.names == ["concept.0", "concept.1", "concept.2", "concept.3"]
    assert traj[-1].meta["result"] and traj[-1].probes["bank"].space == "bank"
    np.testing.assert_allclose(traj[-1].vector, traj[0].vector - traj[1].vector + traj[2].vector, atol=1e-5)


def test_interpolation_trajectories(space):
    a, b = "I loved this movie from start to finish.", "This film was a complete waste of time."
    for method in ("slerp", "lerp"):
        tr = space.interpolate(a, b, n=5, method=method)
        assert tr.names == [f"concept.{i}" for i in range(5)] and tr.kind == "concepts"
        assert tr[0].probes["bank"].top == a and tr[-1].probes["bank"].top == b
        ref = interpolate(space.encode(a), space.encode(b), 5, method)
        np.testing.assert_allclose(tr.vectors(), ref.vectors(), atol=1e-6)
    mid = space.interpolate(a, b, n=3, method="slerp")[1].vector
    assert np.linalg.norm(mid) == pytest.approx(1.0, abs=1e-4)  # slerp keeps unit norm between unit vectors
    with pytest.raises(InputError):
        space.interpolate(a, b, n=1)


def test_constructed_vectors_arithmetic():
    sp = ConceptSpace(["king", "queen", "man", "woman", "king man"], FakeEncoder())
    assert sp.analogy("king", "man", "woman", k=1).top == "queen"
    res = sp.evaluate("king - man + woman", k=2)
    np.testing.assert_allclose(res.vector, [1, -1, 1, 0])
    tr = sp.interpolate("king", "queen", n=3, method="lerp")
    np.testing.assert_allclose(tr[1].vector, [0.5, 0, 0, 0.5])


def test_concept_lab_accepts_sentences(space):
    pytest.importorskip("ipywidgets")
    from widgets.concept_lab import ConceptLab

    lab = ConceptLab(space, k=3, steps=3)
    table = lab.compute("The hotel room was clean and comfortable.", "The hotel room was clean and comfortable.",
                        "The hotel room was dirty and noisy.")
    assert table is not None and table.space == "bank"
    assert "The hotel room was dirty and noisy." not in table.tokens  # operands excluded


def test_analogy_set_and_accuracy_on_fake_space():
    assert 30 <= len(ANALOGIES) <= 50 and all(len(x) == 4 for x in ANALOGIES)
    sp = ConceptSpace(["king", "queen", "man", "woman"], FakeEncoder())
    r = analogy_accuracy(sp, [("king", "man", "woman", "queen")], leading_space=False)
    assert r["accuracy"] == 1.0 and r["n"] == 1


@pytest.mark.slow
def test_analogy_accuracy_on_default_model(smol):
    r = analogy_accuracy(smol.token_space, ANALOGIES[:10])
    assert r["n"] == 10 and r["accuracy"] >= 0.5  # measured 0.825 on all 40 (see docs/concepts.md)


# -- shipped models -------------------------------------------------------------------------------
def _shipped(name: str) -> Path:
    p = Path(__file__).resolve().parents[1] / "explorer" / "concepts" / "weights" / name
    assert p.is_file(), f"{p.name} is shipped with the package; rebuild it with python -m explorer.concepts." + \
        name.split(".")[0].replace("prosqa-", "") + " train"
    return p


def test_autoencoder_round_trip(minilm):
    _shipped("autoencoder.safetensors")
    from explorer.concepts import load_autoencoder

    ae = load_autoencoder(encoder=minilm)
    sents = ["Tom is a wumpus.", "Every yumpus is a gorpus.", "Paris is the capital of France.",
             "The little cat chased a red ball across the garden."]
    out = ae.round_trip(sents)
    assert sum(o == s for o, s in zip(out, sents)) >= 3, out
    assert ae.info["results"]["held_out_exact_match"] >= 0.5  # type: ignore[attr-defined]
    with pytest.raises(InputError):
        ae.decode(np.zeros((1, 7), np.float32))
    sp = ConceptSpace("facts", minilm, decoder=ae)
    tr = sp.interpolate("Rome is the capital of Italy.", "Madrid is the capital of Spain.", n=3)
    assert all(isinstance(s.meta["decoded"], str) for s in tr)


def test_base_lcm_on_validation_slice(minilm):
    _shipped("prosqa-lcm.safetensors")
    from explorer.concepts.lcm import load_lcm
    from explorer.concepts.lcm.__main__ import main as lcm_main
    from explorer.concepts.lcm.evaluate import evaluate as lcm_eval
    from explorer.tasks.prosqa.generate import load

    model = load_lcm(encoder=minilm)
    data = load(VALID)[:24]
    res = lcm_eval(model, data)
    # measured on these 24: 11 answers right; on all 300: 0.61 answer, 0.57 step accuracy (docs/concepts.md)
    assert res["n"] == 24 and abs(sum(res["correct"]) - 11) <= 1 and res["step_accuracy"] >= 0.4
    traj = model.reason(data[0])
    assert traj.names[0] == "concept.0" and traj[0].probes["bank"].space == "bank"
    assert all(s.label in data[0]["question"] for s in traj)  # decoded to the problem's own statements
    assert lcm_main(["eval", "--data", str(VALID), "--limit", "2", "--json"]) == 0


def test_prosqa_statements_cover_the_vocabulary():
    st = prosqa_statements()
    assert "Tom is a wumpus." in st and "Every wumpus is a yumpus." in st and len(st) == len(set(st))


# -- the two concept trainers on the one loop (explorer.training) ---------------------------------
def _tensors(path) -> dict[str, np.ndarray]:
    from explorer.io import read_safetensors

    return read_safetensors(path)[0]


def _same_tensors(a, b) -> bool:
    ta, tb = _tensors(a), _tensors(b)
    return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


def _interrupt_at(monkeypatch, recipe_cls, k: int) -> None:
    """Make the recipe's loss raise KeyboardInterrupt (as Ctrl-C would) at global step ``k``."""
    loss = recipe_cls.loss

    def interrupted(self, model, batch, step):
        if step == k:
            raise KeyboardInterrupt
        return loss(self, model, batch, step)

    monkeypatch.setattr(recipe_cls, "loss", interrupted)


def _trainer_state(run_dir) -> dict:
    import json

    return json.loads((run_dir / "latest" / "trainer_state.json").read_text())


def test_lcm_trainer_resumes_exactly_and_refuses_other_settings(tmp_path, monkeypatch, minilm):
    from dataclasses import replace

    from explorer.concepts.lcm.train import LCMRecipe, LCMTrainConfig, train

    cfg = LCMTrainConfig(n_problems=16, epochs=2, batch_size=4, max_minutes=5.0)   # 4 steps an epoch, 8 in all
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "checkpoint.pt").write_bytes(b"not a checkpoint")         # the old format: never read
    full = train(tmp_path / "full.safetensors", tmp_path / "full", cfg, progress=False)
    assert set(full) == {"path", "epochs_done", "minutes", "bytes"} and full["epochs_done"] == 2
    assert (tmp_path / "full" / "concepts-16-0.npz").is_file()
    with monkeypatch.context() as m:
        _interrupt_at(m, LCMRecipe, 5)                                              # mid-epoch 1
        with pytest.raises(KeyboardInterrupt):
            train(tmp_path / "part.safetensors", tmp_path / "part", cfg, progress=False)
    assert _trainer_state(tmp_path / "part")["global_step"] == 5 and not (tmp_path / "part.safetensors").exists()
    part = train(tmp_path / "part.safetensors", tmp_path / "part", replace(cfg, max_minutes=9.0), progress=False)
    assert part["epochs_done"] == 2
    assert _same_tensors(tmp_path / "full.safetensors", tmp_path / "part.safetensors")
    a, b = _trainer_state(tmp_path / "full"), _trainer_state(tmp_path / "part")
    assert a["global_step"] == b["global_step"] == 8 and a["losses"] == b["losses"]
    assert [e["train_mse"] for e in a["evals"]] == [e["train_mse"] for e in b["evals"]]
    from explorer.concepts.lcm import load_lcm

    assert load_lcm(tmp_path / "part.safetensors").info["epochs_done"] == 2
    for other in (replace(cfg, lr=2e-3), replace(cfg, epochs=3), replace(cfg, n_problems=12)):
        with pytest.raises(InputError, match="other settings|trained on"):
            train(tmp_path / "x.safetensors", tmp_path / "part", other, progress=False)


def test_decoder_trainer_resumes_exactly_and_refuses_other_settings(tmp_path, monkeypatch, minilm):
    from dataclasses import replace

    from explorer.concepts import autoencoder as aem

    real_split = aem.split_sentences
    train_s, held = real_split(0, 0.1)
    monkeypatch.setattr(aem, "split_sentences", lambda seed, held_out: (train_s[:48], held[:8]))
    cfg = aem.AETrainConfig(epochs=2, batch_size=16, save_every=1, max_minutes=5.0)   # 3 steps an epoch, 6 in all
    full = aem.train(tmp_path / "full.safetensors", tmp_path / "full", cfg, progress=False)
    assert set(full) == {"held_out_exact_match", "n_held_out", "train_exact_match_banks", "train_minutes", "path",
                         "bytes"} and full["n_held_out"] == 8
    with monkeypatch.context() as m:
        _interrupt_at(m, aem.DecoderRecipe, 4)                                        # mid-epoch 1
        with pytest.raises(KeyboardInterrupt):
            aem.train(tmp_path / "part.safetensors", tmp_path / "part", cfg, progress=False)
    assert _trainer_state(tmp_path / "part")["global_step"] == 4
    part = aem.train(tmp_path / "part.safetensors", tmp_path / "part", replace(cfg, max_minutes=9.0), progress=False)
    assert _same_tensors(tmp_path / "full" / "latest" / "model.safetensors",
                         tmp_path / "part" / "latest" / "model.safetensors")            # float32
    assert _same_tensors(tmp_path / "full.safetensors", tmp_path / "part.safetensors")  # float16, as shipped
    assert _trainer_state(tmp_path / "full")["losses"] == _trainer_state(tmp_path / "part")["losses"]
    drop = ("train_minutes", "path")
    assert {k: v for k, v in full.items() if k not in drop} == {k: v for k, v in part.items() if k not in drop}
    ae = aem.load_autoencoder(tmp_path / "part.safetensors", encoder=minilm)
    assert ae.info["epochs_done"] == 2 and ae.info["results"]["n_held_out"] == 8
    with pytest.raises(InputError, match="other settings"):
        aem.train(tmp_path / "x.safetensors", tmp_path / "part", replace(cfg, noise=0.01), progress=False)
    monkeypatch.setattr(aem, "split_sentences", lambda seed, held_out: (train_s[48:96], held[:8]))
    with pytest.raises(InputError, match="vocab"):                                   # same count, other sentences
        aem.train(tmp_path / "x.safetensors", tmp_path / "part", cfg, progress=False)
