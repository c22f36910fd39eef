"""Behaviour of the real offline default model (SmolLM2-135M-Instruct on CPU)."""
import numpy as np
import torch

import explorer

PROMPT = "The capital of France is"


def test_default_model_is_the_offline_smollm2(smol):
    assert smol.name == "smollm2-135m-instruct"
    assert (smol.n_layers, smol.d_model) == (30, 576)
    assert smol.points[0] == "embed" and smol.points[-2:] == ["layer.29", "final"]


def test_paris_is_top1_at_the_last_layer(smol):
    tr = smol.trace(PROMPT)
    assert tr.tokens == ["The", " capital", " of", " France", " is"]
    top = smol.nearest_tokens(tr["layer.29"][-1], k=3)
    assert top.top == " Paris"
    assert 0.6 < top.scores[0] < 0.9  # p ≈ 0.77 measured
    # `final` is already normed: read with point="final" it gives the same distribution
    same = smol.nearest_tokens(tr["final"][-1], k=3, point="final")
    assert same.tokens == top.tokens and np.allclose(same.scores, top.scores, atol=1e-5)
    # and it is the model's own prediction
    assert smol.next_tokens(PROMPT, k=1).top == " Paris"


def test_logit_lens_shows_paris_emerging_late(smol):
    tr = smol.trace(PROMPT)
    lens = smol.logit_lens(tr, k=5, target=" Paris")
    assert lens.top("layer.29", -1).top == " Paris"
    assert lens.top("final", -1).top == " Paris"
    assert lens.top("embed", -1).top != " Paris"
    first = lens.first_point(" Paris")
    assert first is not None and first.startswith("layer.")
    assert int(first.split(".")[1]) >= 20, first  # emerges in the later layers
    ranks = lens.target_rank[:, -1]
    assert ranks[lens.points.index("embed")] > 100 and ranks[lens.points.index("layer.29")] == 0
    # entropy drops from the early layers to the last one
    assert lens.entropy[lens.points.index("layer.29"), -1] < lens.entropy[lens.points.index("layer.5"), -1]
    fig = lens.figure()
    assert fig.data[0].type == "heatmap" and len(fig.data[0].y) == len(lens.points)


def test_token_arithmetic_king_man_woman(smol):
    v = smol.token_vector(" king") - smol.token_vector(" man") + smol.token_vector(" woman")
    res = smol.nearest_tokens(v, k=3, space="input", exclude=[" king", " man", " woman"])
    assert res.top == " queen"
    assert res.score_name == "cosine" and res.space == "input"
    assert all(t not in (" king", " man", " woman") for t in res.tokens)


def test_nearest_tokens_batch_and_input_space(smol):
    tr = smol.trace(PROMPT)
    tables = smol.nearest_tokens(tr["embed"], k=2, space="input")
    assert isinstance(tables, list) and len(tables) == len(tr)
    # an embedding row is its own nearest input token
    assert [t.top for t in tables] == tr.tokens


def test_trace_matches_hf_hidden_states(smol):
    tr = smol.trace(PROMPT)
    ids = torch.tensor([tr.token_ids])
    with torch.inference_mode():
        hs = smol.hf(input_ids=ids, output_hidden_states=True).hidden_states
    assert torch.allclose(tr["embed"], hs[0][0], atol=1e-6)
    for i in range(29):
        assert torch.allclose(tr[f"layer.{i}"], hs[i + 1][0], atol=1e-5), i
    assert torch.allclose(tr["final"], hs[-1][0], atol=1e-5)
    assert not torch.allclose(tr["layer.29"], hs[-1][0], atol=1e-3)  # layer.29 is before the final norm


def test_points_subset_stops_early_and_agrees(smol):
    full = smol.trace(PROMPT)
    part = smol.trace(PROMPT, points=["layer.3", "embed"])
    assert part.points == ["embed", "layer.3"]
    assert torch.equal(part["layer.3"], full["layer.3"])
    half = smol.trace(PROMPT, dtype="float16")
    assert half["layer.10"].dtype == torch.float16
    assert torch.allclose(half["layer.10"].float(), full["layer.10"], rtol=1e-2, atol=1e-2)


def test_chat_messages_use_the_template(smol):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    tr = smol.trace(msgs)
    assert tr.tokens[0] == "<|im_start|>" and tr.tokens.count("<|im_start|>") == 3  # system, user, generation prompt
    assert "".join(tr.tokens[-4:]) == "<|im_start|>assistant\n"
    assert "Paris" in smol.generate(msgs, max_new_tokens=16)


def test_layer_trajectory_is_annotated(smol):
    traj = smol.annotate(smol.trace(PROMPT).trajectory(-1), k=5)
    assert isinstance(traj, explorer.Trajectory) and traj.kind == "layers" and len(traj) == 32
    assert traj["layer.29"].probes["output"].top == " Paris"
    assert traj["final"].probes["output"].top == " Paris"  # read without a second norm
    ent = traj.scalar("entropy")
    assert ent[-1] < ent[5]
    assert np.isnan(traj.scalar("kl_prev")[0]) and np.all(traj.scalar("kl_prev")[1:] >= -1e-6)
    pos = smol.trace(PROMPT).trajectory(point="layer.12")
    assert pos.kind == "positions" and pos.labels == ["The", " capital", " of", " France", " is"]
