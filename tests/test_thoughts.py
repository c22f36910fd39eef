"""Continuous thoughts: the engine on the real default model, the frontier probe, the trainer."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from explorer.errors import ContextLengthError, InputError, SaveFileError
from explorer.tasks.prosqa.tokenizer import build_tokenizer, node_probabilities
from explorer.thoughts import ThoughtSession, recompute, think
from explorer.thoughts import data as D
from explorer.thoughts import train as T
from explorer.thoughts.engine import filter_probs
from explorer.thoughts.frontier import frontier_probe, frontier_share, group_probabilities, node_groups

PROMPT = "The capital of France is"


# -- the engine on SmolLM2 (the session fixture `smol` from conftest) ------------------------------
def test_coconut_shapes_and_probes(smol):
    r = think(smol, PROMPT, 3, "coconut", max_new_tokens=4)
    tr = r.trajectory
    assert tr.kind == "thoughts" and tr.names == ["thought.0", "thought.1", "thought.2"] and tr.dim == smol.d_model
    assert tr.vectors().shape == (3, smol.d_model)
    for s in tr:
        np.testing.assert_array_equal(s.vectors["fed"], s.vector)      # coconut feeds the thought itself
        assert set(s.probes) >= {"output", "input", "fed_input"} and len(s.probes["output"]) == 10
        assert math.isfinite(s.scalars["entropy"]) and s.scalars["norm"] > 0
        assert s.scalars["fed_norm"] == pytest.approx(s.scalars["norm"], rel=1e-5)
    assert tr[0].probes["output"].top == " Paris"      # thought 0 is the state after the prompt
    assert r.n_thoughts == 3 and 0 < len(r.answer_ids) <= 4 and r.generated_tokens == 3 + len(r.answer_ids)
    assert r.prompt_ids == smol.encode(PROMPT)[0].tolist()  # no markers for an untrained model


@pytest.mark.parametrize("mode", ["coconut", "soft"])
def test_cached_steps_equal_a_full_recompute(smol, mode):
    r = think(smol, PROMPT, 4, mode, max_new_tokens=1, annotate=False)
    fed = [s.vectors["fed"] for s in r.trajectory]
    full = recompute(smol, r.prompt_ids, fed)          # one forward over prompt embeds + all fed vectors
    np.testing.assert_allclose(full[:4], r.trajectory.vectors(), atol=2e-4, rtol=1e-4)


def test_session_steps_match_think(smol):
    s = ThoughtSession(smol, PROMPT, mode="coconut")
    a = s.step()
    assert s.length == len(s.prompt_ids) + 1 and a.name == "thought.0"
    s.step()
    res = s.finish(max_new_tokens=3)
    ref = think(smol, PROMPT, 2, "coconut", max_new_tokens=3)
    np.testing.assert_allclose(res.trajectory.vectors(), ref.trajectory.vectors(), atol=1e-5)
    assert res.answer_ids == ref.answer_ids
    with pytest.raises(InputError, match="stopped"):
        st = ThoughtSession(smol, PROMPT, mode="soft", cold_stop_entropy=1e9, cold_stop_patience=1)
        st.step()
        st.step()


def test_cot_equals_hf_greedy_generate(smol):
    r = think(smol, PROMPT, 5, "cot", max_new_tokens=7, annotate=False)
    ids = smol.encode(PROMPT)
    out = smol.hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                           pad_token_id=smol.tokenizer.eos_token_id)
    assert r.thought_ids + r.answer_ids == out[0, ids.shape[1]:].tolist()
    assert [s.label for s in r.trajectory] == [smol._decode_one(i) for i in r.thought_ids]


def test_soft_thinking(smol):
    # top-k = 1 feeds the top token's embedding row: the same states as the greedy chain
    soft = think(smol, PROMPT, 3, "soft", top_k=1, max_new_tokens=3, annotate=False)
    cot = think(smol, PROMPT, 3, "cot", max_new_tokens=3, annotate=False)
    np.testing.assert_allclose(soft.trajectory.vectors(), cot.trajectory.vectors(), atol=1e-4)
    assert soft.answer_ids == cot.answer_ids
    wide = think(smol, PROMPT, 2, "soft", top_k=20, top_p=0.99, annotate=False, max_new_tokens=1)
    E = smol._embed.weight.detach()
    p = filter_probs(smol.probe.logits(wide.trajectory[1].vector, normed=True)[0], top_k=20, top_p=0.99)
    np.testing.assert_allclose(wide.trajectory[1].vectors["fed"], (p @ E).numpy(), atol=1e-5)
    # cold stop: entropy below the threshold for `patience` thoughts ends thinking
    stopped = think(smol, PROMPT, 8, "soft", cold_stop_entropy=1e9, cold_stop_patience=2, annotate=False,
                    max_new_tokens=1)
    assert stopped.n_thoughts == 2 and stopped.stopped_early


def test_filter_probs():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    np.testing.assert_allclose(filter_probs(logits, top_k=2), [0.625, 0.375, 0, 0], atol=1e-6)
    np.testing.assert_allclose(filter_probs(logits, top_p=0.7), [0.625, 0.375, 0, 0], atol=1e-6)
    np.testing.assert_allclose(filter_probs(logits, top_p=0.85), [0.5 / .95, 0.3 / .95, 0.15 / .95, 0], atol=1e-6)
    with pytest.raises(InputError, match="temperature"):
        filter_probs(logits, temperature=0)


def test_engine_errors_name_the_fix(smol):
    with pytest.raises(InputError, match="mode"):
        think(smol, PROMPT, 1, "dream")
    with pytest.raises(InputError, match="trained with"):
        think(smol, PROMPT, 1, "coconut", markers=True)
    with pytest.raises(InputError, match="n_thoughts"):
        think(smol, PROMPT, -1)


# -- the frontier probe on a hand-made graph -----------------------------------------------------------
GRAPH = {"idx_to_symbol": ["Tom", "Ann", "a", "b", "c", "d", "e"],
         "edges": [[0, 2], [0, 3], [2, 4], [3, 4], [4, 5], [2, 5], [1, 6]], "root": 0, "target": 5,
         "neg_target": 6, "question": "", "answer": "Tom is a d.", "steps": []}


def test_frontier_grouping_on_a_hand_made_graph():
    assert node_groups(GRAPH, 1) == {"frontier": [2, 3], "reachable": [4, 5], "unreachable": [1, 6]}
    assert node_groups(GRAPH, 2) == {"frontier": [4, 5], "reachable": [2, 3], "unreachable": [1, 6]}
    assert node_groups(GRAPH, 3)["frontier"] == [5]                   # a path of exactly 3 hops: 0-2-4-5
    assert node_groups(GRAPH, 3, by="distance")["frontier"] == []      # but its shortest distance is 2
    tids = [10, 11, 12, 13, 14, 15, 16]
    probs = np.zeros(20)
    probs[[10, 11, 12, 13, 14, 15, 16, 0]] = [0.05, 0.1, 0.3, 0.2, 0.1, 0.05, 0.15, 0.05]
    g = group_probabilities(probs, GRAPH, 1, tids)
    assert g["sums"] == pytest.approx({"frontier": 0.5, "reachable": 0.15, "unreachable": 0.25})
    assert g["share"] == pytest.approx(0.5 / 0.9)
    np.testing.assert_allclose(node_probabilities(probs, [12, 12, 13]), [0.15, 0.15, 0.2])  # shared first token


def test_frontier_probe_on_a_model(smol):
    names = GRAPH["idx_to_symbol"]
    prob = dict(GRAPH, question="Every a is a c. Tom is a a. Is Tom a d or e?")
    r = frontier_probe(smol, prob, 2, max_new_tokens=1)
    assert len(r.rows) == 2 and r.rows[0]["hops"] == 1 and r.rows[1]["hops"] == 2
    assert {t["name"] for t in r.table()} == set(names) - {"Tom"}
    assert r.sums().shape == (2, 3) and (r.sums() >= 0).all() and r.sums().sum(1).max() <= 1 + 1e-6
    fig = r.figure()
    assert [d.name for d in fig.data] == ["frontier", "reachable", "unreachable"]
    avg = frontier_share(smol, [prob, prob], 2, max_new_tokens=1)
    assert avg["share"].shape == (2,) and avg["n"] == 2
    np.testing.assert_allclose(avg["sums"], r.sums(), atol=1e-6)


# -- the trainer (tiny GPT-2, tiny data) ------------------------------------------------------------------
def tiny_cfg(**kw):
    base = dict(method="coconut", batch_size=4, epochs_per_stage=1, num_epochs=3, max_latent_stage=2, lr=3e-3,
                n_layer=2, n_embd=32, n_head=2, n_positions=256, save_every=2, seed=0, device="cpu")
    base.update(kw)
    return T.TrainConfig(**base)


@pytest.fixture(scope="module")
def tiny_data():
    from explorer.tasks.prosqa.generate import GeneratorConfig, generate

    return generate(8, seed=11, cfg=GeneratorConfig(min_nodes=14, max_nodes=15, min_hops=3, max_hops=3))


def test_tokenizer_round_trips_and_curriculum(tiny_data):
    tok = build_tokenizer()
    p = tiny_data[0]
    text = p["question"] + "\n" + "\n".join(p["steps"]) + "\n### " + p["answer"]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text and tok.unk_token_id not in ids
    hf = T.build_base_model(tok, n_layer=1, n_embd=16, n_head=2, n_positions=256)
    sp = T.add_thought_tokens(hf, tok)
    assert hf.get_input_embeddings().weight.shape[0] == len(tok) and sp["<bot>"] in tok.get_vocab().values()
    cfg = tiny_cfg()
    t = D.tokenize_problem(tok, p)
    for stage, n_lat, n_steps in [(0, 0, 3), (1, 1, 2), (2, 2, 1), (3, 2, 0)]:   # stage 3 > max: all steps gone
        x, y = D.build_example(t, stage, cfg, sp)
        assert x.count(sp["<latent>"]) == n_lat and x.count(sp["<bot>"]) == 1
        kept = sum(len(s) for s in t.steps[len(t.steps) - n_steps:])
        labelled = [i for i in y if i != -100]
        assert labelled == [i for s in t.steps[len(t.steps) - n_steps:] for i in s] + t.answer
        assert len(labelled) == kept + len(t.answer) and y[x.index(sp["<eot>"])] == -100
    x, y = D.build_example(t, 5, T.TrainConfig(method="cot"), {})
    assert y.count(-100) == len(t.question) and len(x) == len(t.question) + sum(map(len, t.steps)) + len(t.answer)


def test_batched_multipass_equals_one_example_at_a_time(tiny_data):
    tok = build_tokenizer()
    hf = T.build_base_model(tok, n_layer=2, n_embd=32, n_head=2, n_positions=256).eval()
    sp = T.add_thought_tokens(hf, tok)
    cfg = tiny_cfg()
    exs = [D.build_example(D.tokenize_problem(tok, p), s, cfg, sp) for p, s in zip(tiny_data[:4], [0, 1, 2, 3])]
    batch = D.collate(exs, tok.pad_token_id, sp["<latent>"])
    lat = sp["<latent>"]
    assert len({(r == lat).nonzero().flatten()[:1].tolist()[0] for r in batch["input_ids"] if (r == lat).any()}) == 1
    with torch.no_grad():
        _, logits = D.coconut_forward(hf, batch, lat)
        for i, (x, _) in enumerate(exs):
            emb = hf.get_input_embeddings()(torch.tensor([x]))
            for q in [j for j, t in enumerate(x) if t == lat]:
                h = hf(inputs_embeds=emb[:, :q], output_hidden_states=True).hidden_states[-1]
                emb = emb.clone()
                emb[0, q] = h[0, -1]
            ref = hf(inputs_embeds=emb).logits[0]
            got = logits[i][batch["attention_mask"][i].bool()]
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_loss_falls(tiny_data, tmp_path):
    st = T.Trainer(tiny_data[:4], tmp_path / "run", tiny_cfg(method="cot", num_epochs=8, save_every=100),
                   progress=False).train()
    losses = [l for _, l in st.losses]
    assert len(losses) == 8 and losses[-1] < 0.8 * losses[0]


def test_resume_gives_the_same_state(tiny_data, tmp_path):
    full = T.Trainer(tiny_data, tmp_path / "a", tiny_cfg(uniform_prob=0.5), progress=False)
    full.train()                                                  # 3 epochs x 2 steps, stages 0, 1, 2
    part = T.Trainer(tiny_data, tmp_path / "b", tiny_cfg(uniform_prob=0.5, max_steps=3, save_every=1), progress=False)
    part.train()                                                  # "interrupted" mid-epoch 1 (stage 1)
    assert part.state.global_step == 3 and (tmp_path / "b" / "latest" / "model.safetensors").is_file()
    resumed = T.Trainer(tiny_data, tmp_path / "b", tiny_cfg(uniform_prob=0.5), progress=False)
    assert resumed.state.global_step == 3 and resumed.state.stage == 1
    resumed.train()
    assert resumed.state.global_step == full.state.global_step == 6
    for (n, a), (_, b) in zip(full.hf.state_dict().items(), resumed.hf.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=n)
    sa, sb = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(torch.allclose(sa[k]["exp_avg"], sb[k]["exp_avg"], atol=1e-6) for k in sa)
    assert [l for _, l in full.state.losses] == pytest.approx([l for _, l in resumed.state.losses], abs=1e-5)
    with pytest.raises(InputError, match="other settings"):
        T.Trainer(tiny_data, tmp_path / "b", tiny_cfg(c_thought=2), progress=False)


def test_checkpoint_loads_and_thinks(tiny_data, tmp_path):
    import explorer
    from explorer.thoughts.evaluate import evaluate

    tr = T.Trainer(tiny_data[:4], tmp_path / "r", tiny_cfg(num_epochs=2, save_every=100), progress=False,
                   eval_data=tiny_data[:2], eval_limit=2)
    tr.train()
    assert [e["epoch"] for e in tr.state.evals] == [1, 2] and all(e["n"] == 2 for e in tr.state.evals)
    state = json.loads((tmp_path / "r" / "latest" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and state["stage"] == 1
    m = explorer.load_model(tmp_path / "r" / "latest", device="cpu")
    assert m.hf.config.coconut["n_thoughts"] == 1
    r = think(m, tiny_data[0]["question"] + "\n", 2, "coconut", max_new_tokens=5)
    assert r.prompt_ids[-1] == m.tokenizer.get_vocab()["<bot>"] and r.n_thoughts == 2
    res = evaluate(m, tiny_data[:2], "coconut", max_new_tokens=8)
    assert set(res) >= {"accuracy", "n", "mean_generated_tokens"} and res["n"] == 2
    assert res["mean_generated_tokens"] >= 1 + 1           # one thought + at least one token
    again = T.Trainer(tiny_data[:4], tmp_path / "r", tiny_cfg(num_epochs=2, save_every=100), progress=False)
    again.train()                  # a finished run re-run (as `SHIP=1` does) saves the stage it trained
    m = explorer.load_model(tmp_path / "r" / "latest", device="cpu")
    assert m.hf.config.coconut["stage"] == 1 and m.hf.config.coconut["n_thoughts"] == 1
    (tmp_path / "r" / "latest" / "optimizer.pt").write_bytes(b"junk")
    with pytest.raises(SaveFileError, match="delete it"):
        T.Trainer(tiny_data[:4], tmp_path / "r", tiny_cfg(num_epochs=2), progress=False)


def test_context_overflow_is_typed(tiny_data, tmp_path):
    tok = build_tokenizer()
    import explorer

    hf = T.build_base_model(tok, n_layer=1, n_embd=16, n_head=2, n_positions=8)
    with pytest.raises(ContextLengthError):
        think(explorer.Model(hf.eval(), tok), "Every a is a b . Every b is a c . Is", 1)


def test_a_run_from_a_base_can_start_at_a_later_stage(tiny_data, tmp_path):
    """start_stage: a run that goes on from a model that already went through the curriculum trains at its
    last stage from the first epoch (every step a thought), not at the chain of thought again."""
    import explorer

    T.Trainer(tiny_data[:4], tmp_path / "a", tiny_cfg(num_epochs=3, save_every=100), progress=False).train()
    cfg = tiny_cfg(num_epochs=1, save_every=100, start_stage=2)
    assert [cfg.stage(e) for e in range(3)] == [2, 3, 4] and cfg.n_thoughts(cfg.stage(0)) == 2
    more = T.Trainer(tiny_data[:4], tmp_path / "b", cfg, base=tmp_path / "a" / "latest", progress=False)
    batch = more.recipe.epoch_batches(0)[0]
    latent = more.recipe.ids["<latent>"]
    assert ((batch["input_ids"] == latent).sum(1) == 2).all()        # two thoughts in every example
    more.train()
    assert explorer.load_model(tmp_path / "b" / "latest", device="cpu").hf.config.coconut["n_thoughts"] == 2
    with pytest.raises(InputError, match="start_stage"):
        tiny_cfg(start_stage=-1).check()


def test_optimizer_is_reset_at_each_stage(tiny_data, tmp_path):
    def adam_steps(method):
        tr = T.Trainer(tiny_data, tmp_path / method, tiny_cfg(method=method, num_epochs=2, save_every=100),
                       progress=False)
        tr.train()                                                # 2 epochs x 2 steps
        return {int(s["step"]) for s in tr.optimizer.state_dict()["state"].values()}

    assert adam_steps("coconut") == {2}                           # stage 1 began with a fresh AdamW
    assert adam_steps("cot") == {4}                               # one stage: never reset


def test_train_cli_flags_bools_and_resume(tmp_path, capsys):
    """`latent-explorer train coconut` end to end on a tiny run: typed flags (bools included),
    a checkpoint, and a second call that resumes instead of starting over."""
    import json

    from explorer.cli import main

    run = tmp_path / "run"
    args = ["train", "coconut", str(run), "--train", str(tmp_path / "t.json"), "--generate", "6", "--n-layer", "1",
            "--n-embd", "16", "--n-head", "2", "--batch-size", "3", "--max-steps", "2", "--save-every", "1",
            "--pad-latent-to-max", "false", "--threads", "1", "--device", "cpu"]
    assert main(args) == 0
    state = json.loads((run / "latest" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and state["config"]["pad_latent_to_max"] is False
    assert main([*args[:-6], "--max-steps", "3", *args[-4:]]) == 0  # resumes from step 2
    assert json.loads((run / "latest" / "trainer_state.json").read_text())["global_step"] == 3
    assert len((run / "log.jsonl").read_text().splitlines()) >= 3
    assert main([*args[:-6], "--max-steps", "4", "--batch-size", "2", *args[-4:]]) == 2  # other settings: refused
    assert "other settings" in capsys.readouterr().err


def test_token_level_beam_search_counts_its_compute(smol):
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.tasks.prosqa.prompts import prompt_for
    from explorer.thoughts.evaluate import evaluate

    probs = load(VALIDATION)[:2]
    greedy = evaluate(smol, probs, "cot", max_new_tokens=4)
    prompt_len = [len(smol.encode(prompt_for(smol.tokenizer, p))[0]) for p in probs]
    assert greedy["mean_forward_tokens"] == pytest.approx(sum(prompt_len) / 2 + greedy["mean_generated_tokens"])
    beam = evaluate(smol, probs, "cot", max_new_tokens=4, num_beams=3)
    assert beam["num_beams"] == 3 and beam["mean_generated_tokens"] <= 4
    # the prompt once per beam, then every beam at every step (4 at most)
    assert 3 * sum(prompt_len) / 2 < beam["mean_forward_tokens"] <= 3 * (sum(prompt_len) / 2 + 4)
    with pytest.raises(InputError, match="num_beams"):
        evaluate(smol, probs, "coconut", num_beams=2)
    with pytest.raises(InputError, match="num_beams"):
        evaluate(smol, probs, "cot", num_beams=0)
