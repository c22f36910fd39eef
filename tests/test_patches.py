"""Byte patches: the byte tokenizer, the corpus and its baseline, next-byte entropies, both patching
rules (the global one identical to transformers' BltPatcher), calibration, patches as trajectories,
and the entropy model's training recipe."""
from __future__ import annotations

import filecmp
import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.errors import InputError
from explorer.model import Model
from explorer.patches.corpus import ByteNgram, documents, held_out
from explorer.patches.entropy import byte_entropies
from explorer.patches.patching import calibrate, lengths_of, patch_lengths, starts
from explorer.patches.tokenizer import BOS_ID, VOCAB_SIZE, build_byte_tokenizer, is_byte_tokenizer
from explorer.patches.trajectory import char_starts, cut, patch_trajectory

ROOT = Path(__file__).resolve().parents[1]
UNICODE = "Daenerys Targaryen rode north.\nNaïve café — 日本語 🙂 works.\n"


@pytest.fixture(scope="module")
def tiny():
    """A random-weight byte LM with a 16-byte window (the entropy model's shape, not its skill)."""
    from explorer.models.build import build_base_model

    tok = build_byte_tokenizer()
    hf = build_base_model(tok, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=3, arch="llama").eval()
    return Model(hf, tok, name="tiny-bytes")


def test_bytes_are_tokens_and_any_unicode_round_trips():
    tok = build_byte_tokenizer()
    ids = tok(UNICODE, add_special_tokens=False)["input_ids"]
    assert ids == list(UNICODE.encode("utf-8")) and tok.decode(ids) == UNICODE
    assert len(tok) == VOCAB_SIZE and tok.convert_tokens_to_ids("<bos>") == BOS_ID and is_byte_tokenizer(tok)
    from explorer.tasks.prosqa.graph_tokens import build_graph_tokenizer
    assert not is_byte_tokenizer(build_graph_tokenizer())


def test_the_global_rule_is_transformers_blt_patcher():
    """On the same entropies (over <bos> + bytes) and thresholds, with and without a maximum patch
    length, the patch lengths are BltPatcher's, token for token (including its trailing empty patch)."""
    from transformers.models.blt.modeling_blt import BltPatcher, process_patch_lengths

    rng = np.random.default_rng(0)
    for trial in range(200):
        T = int(rng.integers(2, 80))
        e = rng.gamma(2.0, 1.0, T).astype(np.float32)
        th, ml = float(rng.uniform(0.3, 5.0)), [None, 2, 4, 7][trial % 4]
        ref = BltPatcher.patch_lengths_from_entropies(torch.tensor(e)[None], T, patch_size=4.5, threshold=th)
        assert patch_lengths(e, th, max_len=ml) == process_patch_lengths(ref, ml)[0].tolist()
        # the same patches over the bytes (entropy e[i] is about byte i), less <bos> and the empty tail
        H = e[:-1] if T > 1 else e
        assert lengths_of(starts(H, th, max_len=ml)).tolist() == [n for n in patch_lengths(e, th, max_len=ml)[1:] if n]


def test_the_monotonic_rule_starts_patches_where_entropy_rises():
    H = np.array([3.0, 2.5, 2.0, 2.6, 1.0, 0.9, 0.8, 2.0, 2.1, 2.2])
    assert np.flatnonzero(starts(H, 1.5, "global")).tolist() == [0, 1, 2, 3, 7, 8, 9]
    assert np.flatnonzero(starts(H, 0.5, "monotonic")).tolist() == [0, 3, 7]
    # repetitive text: entropy stays high but flat, so only the global rule cuts it to pieces
    flat = np.full(20, 3.0)
    assert starts(flat, 1.0, "global").sum() == 20 and starts(flat, 0.5, "monotonic").sum() == 1
    assert lengths_of(starts(flat, 0.5, "monotonic", max_len=6)).tolist() == [6, 6, 6, 2]
    with pytest.raises(InputError, match="rule must be"):
        starts(H, 1.0, "local")
    with pytest.raises(InputError, match="max_len"):
        starts(H, 1.0, max_len=0)


@pytest.mark.parametrize("rule", ["global", "monotonic"])
def test_calibration_hits_the_target_patch_size(rule):
    rng = np.random.default_rng(1)
    texts = [rng.gamma(2.0, 1.0, int(n)) for n in rng.integers(200, 900, 6)]
    th = calibrate(texts, 4.5, rule)
    size = sum(map(len, texts)) / sum(int(starts(e, th, rule).sum()) for e in texts)
    assert size == pytest.approx(4.5, rel=0.02)
    assert sum(map(len, texts)) / sum(int(starts(e, calibrate(texts, 8.0, rule), rule).sum()) for e in texts) > 7.5
    with pytest.raises(InputError, match="target"):
        calibrate(texts, 0.5, rule)


def test_entropies_reset_at_newlines_and_slide_over_long_lines(tiny):
    text = "abcab\nabc" + "xyzw" * 6 + "\n"
    r = byte_entropies(tiny, text, hidden=True, logits=True)
    data = text.encode()
    assert len(r.entropy) == len(data) == len(r.bits) and r.hidden.shape == (len(data), 16)

    def direct(ids):
        with torch.no_grad():
            lp = tiny.hf(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
        return -(lp.exp() * lp).sum(-1).numpy(), lp

    H, lp = direct([BOS_ID, *data[:6]])                       # the first line: <bos> + its bytes
    np.testing.assert_allclose(r.entropy[:6], H[:6], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r.bits[:6], -lp[np.arange(6), list(data[:6])].numpy() / np.log(2), rtol=1e-4)
    H2, _ = direct([BOS_ID, *data[6:6 + 15]])                 # the second line starts afresh from <bos>
    assert r.entropy[6] == pytest.approx(r.entropy[0], rel=1e-5)  # both predicted from <bos> alone
    np.testing.assert_allclose(r.entropy[6:21], H2[:15], rtol=1e-4, atol=1e-5)
    # past the 16-byte window: windows of 8 bytes of context then up to 8 new bytes
    H3, _ = direct(list(data[21 - 8:21 + 8]))
    np.testing.assert_allclose(r.entropy[21:29], H3[7:15], rtol=1e-4, atol=1e-5)
    assert not np.allclose(byte_entropies(tiny, text, reset_at_newline=False).entropy[6:8], r.entropy[6:8])
    with pytest.raises(InputError, match="byte-level entropy model"):
        from explorer.tasks.prosqa.graph_tokens import build_graph_tokenizer
        byte_entropies(Model(tiny.hf, build_graph_tokenizer()), "x")


def test_patches_are_a_trajectory_of_whole_characters(tiny):
    tr = patch_trajectory(tiny, UNICODE, target=3.0, strings=2, string_len=3)
    bounds = tr.meta["bounds"]
    data = UNICODE.encode()
    assert bounds[0][0] == 0 and bounds[-1][1] == len(data) and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    ok = char_starts(data)
    assert all(ok[a] for a, _ in bounds) and "".join(s.label for s in tr.steps) == UNICODE
    assert len(tr) == len(bounds) and tr.meta["bytes_per_patch"] == pytest.approx(len(data) / len(bounds))
    r = byte_entropies(tiny, UNICODE, hidden=True)
    a, b = bounds[3]
    np.testing.assert_allclose(tr.steps[3].vectors[tr.steps[3].name], r.hidden[b - 1], rtol=1e-5)
    mean = patch_trajectory(tiny, UNICODE, tr.meta["threshold"], vector="mean", strings=0)
    np.testing.assert_allclose(mean.steps[3].vectors[mean.steps[3].name], r.hidden[a:b].mean(0), rtol=1e-5, atol=1e-6)
    st = tr.steps[3]
    assert st.scalars["bytes"] == b - a and st.scalars["entropy_first"] == pytest.approx(float(r.entropy[a]))
    assert len(st.probes["output"]) == 8 and len(st.probes["strings"]) == 2
    assert all(len(s.encode("utf-8", errors="replace")) >= 1 for s in st.probes["strings"].tokens)
    raw = cut(r, tr.meta["threshold"], whole_chars=False)
    assert len(raw.bounds) >= len(bounds)
    with pytest.raises(InputError, match="vector must be"):
        patch_trajectory(tiny, UNICODE, vector="first")
    with pytest.raises(InputError, match="empty"):
        patch_trajectory(tiny, "")


def test_the_corpus_split_is_stable_and_the_ngram_baseline_learns():
    train, held = documents("train", ["fortunes"]), documents("held_out", ["fortunes"])
    assert train and held and not {n for n, _ in train} & {n for n, _ in held}
    assert all(held_out(n) for n, _ in held) and 0.02 < len(held) / (len(held) + len(train)) < 0.08
    with pytest.raises(InputError, match="split must be"):
        documents("test")
    ng = ByteNgram(3).fit(["abcabcabc\n"] * 50)
    assert ng.bits_per_byte(["abcabc\n"]) < 1.0 < ByteNgram(1).fit(["abcabcabc\n"] * 50).bits_per_byte(["abcabc\n"])
    assert ByteNgram(3).fit(["aaaa\n"]).bits_per_byte(["zzzz\n"]) > 4


def test_a_tiny_entropy_model_trains_and_its_held_out_bits_fall(tmp_path):
    from explorer.patches.train import ByteTrainConfig, train

    docs = [(f"d{i}", "the cat sat on the mat.\nthe dog sat on the log.\n" * 4) for i in range(40)]
    cfg = ByteTrainConfig(n_embd=32, n_layer=1, n_head=2, window=32, batch_size=16, num_epochs=6, lr=1e-2,
                          warmup_steps=0, device="cpu", threads=1, eval_bytes=400, save_minutes=None, save_every=1000)
    st = train(tmp_path / "run", cfg, progress=False, docs=docs, eval_docs=docs[:2])
    bits = [e["bits_per_byte"] for e in st.evals]
    assert len(bits) == 6 and bits[-1] < bits[0] < 8.5 and bits[-1] < 3.0, bits
    import explorer
    m = explorer.load_model(tmp_path / "run" / "latest", device="cpu")
    assert is_byte_tokenizer(m.tokenizer) and m.hf.config.byte_entropy["window"] == 32
    with pytest.raises(InputError, match="window"):
        ByteTrainConfig(window=4).check()


@pytest.mark.slow
def test_the_recipe_rehearses_training_measuring_and_shipping(tmp_path):
    """recipes/byte-entropy.sh at SIZE=tiny with the GPU command on the CPU: trains, measures, ships."""
    env = {**os.environ, "SIZE": "tiny", "MODE": "gpu", "DEVICE": "cpu", "RUN": str(tmp_path / "run"), "SHIP": "1",
           "SHIP_TO": str(tmp_path / "shipped"), "OUT": str(tmp_path / "out")}
    r = subprocess.run(["bash", "recipes/byte-entropy.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["byte-entropy.tar"]   # one file back from a device
    with tarfile.open(tmp_path / "out" / "byte-entropy.tar") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    same = filecmp.dircmp(tmp_path / "unpacked" / "byte-entropy", tmp_path / "shipped" / "byte-entropy")
    assert not (same.diff_files or same.left_only or same.right_only)
    prov = json.loads((tmp_path / "unpacked" / "byte-entropy" / "provenance.json").read_text())
    res = prov["results"]["run-eval"]
    assert "MODE=gpu SIZE=tiny" in prov["command"] and prov["cost"]["device"] == "gpu"
    assert res["bytes"] >= 2000 and set(res["ngram_bits_per_byte"]) == {"3", "5"} and res["bits_per_byte"] > 0


def test_patch_view_state_without_a_browser(tiny):
    from widgets import PatchView

    class Words:   # a whitespace "tokenizer" with offsets, to compare patches with tokens
        def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
            import re
            return {"offset_mapping": [m.span() for m in re.finditer(r"\S+\s*", text)]}

    v = PatchView(tiny, UNICODE, tokenizer=Words(), target=3.0)
    cal = v._data["calibrated"]
    assert v.rule == "global" and v.threshold == cal["global"] and len(v._entropy) == 4 * len(UNICODE.encode())
    chars = v._data["chars"]
    assert "".join(c[2] for c in chars) == UNICODE and chars[-2][2] == "." and any(c[2] == "🙂" for c in chars)
    assert [t[2] for t in v._data["tokens"]][:3] == ["Daenerys ", "Targaryen ", "rode "]
    s = v.stats()
    assert s["bytes"] == len(UNICODE.encode()) and s["tokens"] == len(UNICODE.split())
    assert s["bytes_per_patch"] == pytest.approx(s["bytes"] / len(v.patches().bounds))
    v.threshold = -1.0                       # every character its own patch
    assert len(v.patches().bounds) == len(chars)
    v.rule = "monotonic"                      # a rule brings its own calibrated threshold
    assert v.threshold == cal["monotonic"] and v.patches().rule == "monotonic"
    v.max_len = 2
    assert max(b - a for a, b in v.patches().bounds) <= 4   # whole characters may stretch a cut patch
    assert v.calibrate(6.0) == v.threshold and v.trajectory(strings=0).meta["rule"] == "monotonic"
    with pytest.raises(InputError, match="rule must be"):
        v.rule = "local"
    with pytest.raises(InputError, match="max_len"):
        v.max_len = -1
    with pytest.raises(InputError, match="empty"):
        PatchView(tiny, "", tokenizer=None)


def test_the_shipped_entropy_model_loads_offline_and_keeps_its_bits_per_byte():
    """`byte-entropy` loads by name (offline), is the byte tokenizer's model, and on a slice of the
    held-out documents measures close to the bits per byte its provenance publishes (all held-out
    text), well below the byte 5-gram baseline published beside it."""
    import explorer
    from explorer.models.registry import lookup
    from explorer.patches.train import held_out_bits

    m = explorer.load_model("byte-entropy", device="cpu")
    assert is_byte_tokenizer(m.tokenizer) and m.hf.config.byte_entropy["reset_at_newline"]
    prov = json.loads((lookup("byte-entropy").prepare() / "provenance.json").read_text())
    res = next(iter(prov["results"].values()))
    assert res["bytes"] > 300_000 and res["bits_per_byte"] < res["ngram_bits_per_byte"]["5"] - 0.2
    assert "recipes/byte-entropy.sh" in prov["command"] and prov["cost"]["train_minutes"] > 0
    mine = held_out_bits(m.hf, m.tokenizer, documents("held_out")[::10], 10**6)   # every 10th: both sources
    assert mine["bytes"] > 30_000 and abs(mine["bits_per_byte"] - res["bits_per_byte"]) < 0.15
    # where text is predictable the model is sure; a word's first byte is where it is not
    r = byte_entropies(m, "In the beginning God created the heaven and the earth.\n")
    assert r.bits_per_byte < 1.5 and r.entropy[r.data.index(b"heaven") + 2] < r.entropy[r.data.index(b"heaven")]
