"""Nothing depends on SmolLM2's shapes: tiny random-weight models of three other architectures."""
import pytest
import torch

import explorer


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "gemma3"])
def test_trace_lens_and_probes_on_other_architectures(tiny_models, arch):
    m = explorer.load_model(tiny_models[arch], device="cpu")
    L = m.n_layers
    assert m.points == ["embed", *[f"layer.{i}" for i in range(L)], "final"]
    tr = m.trace("The capital of France is")
    assert all(tr[p].shape == (len(tr), m.d_model) for p in tr.points)
    with torch.inference_mode():
        out = m.hf(input_ids=torch.tensor([tr.token_ids]), output_hidden_states=True)
    hs = out.hidden_states
    assert torch.allclose(tr["embed"], hs[0][0], atol=1e-5)  # includes position embeddings / scaling
    for i in range(L - 1):
        assert torch.allclose(tr[f"layer.{i}"], hs[i + 1][0], atol=1e-5)
    assert torch.allclose(tr["final"], hs[-1][0], atol=1e-5)
    # the logit lens at the last block reproduces the model's own logits (softcapping included)
    lens = m.logit_lens(tr, k=3)
    expect = out.logits[0, -1].softmax(-1).topk(3)
    assert list(lens.top_ids[lens.points.index(f"layer.{L - 1}"), -1]) == expect.indices.tolist()
    assert torch.allclose(torch.tensor(lens.top_probs[-1, -1]), expect.values, atol=1e-5)
    with pytest.raises(explorer.VectorError):
        m.nearest_tokens(torch.zeros(m.d_model + 1))


def test_hub_id_loads_from_local_cache(tiny_models, tmp_path, monkeypatch):
    """The real Hub code path (from_pretrained with an id), served by a local HF cache."""
    import huggingface_hub

    repo = tmp_path / "hub" / "models--tiny-org--tiny-gpt2"
    snap = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snap.mkdir(parents=True)
    for f in tiny_models["gpt2"].iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snap.name)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import transformers.utils.hub as th

    monkeypatch.setattr(th, "HF_HUB_CACHE", str(tmp_path / "hub"), raising=False)
    m = explorer.load_model("tiny-org/tiny-gpt2", device="cpu")
    assert m.name == "tiny-org/tiny-gpt2" and m.n_layers == 3
