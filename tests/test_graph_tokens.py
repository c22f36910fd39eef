"""ProsQA as graph tokens: the encoding, the relabelling, typed problems, and models trained on it."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.errors import ExplorerError, InputError
from explorer.paths import SHIPPED_DIR
from explorer.tasks.prosqa import VALIDATION, generate, load
from explorer.tasks.prosqa import graph_tokens as G

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real():
    return load(VALIDATION)


def test_every_real_problem_encodes_in_the_question_order(real):
    tok = G.build_graph_tokenizer()
    for p in real:
        g = G.encode(p)
        assert len(g.steps) == len(p["steps"]) and g.steps[-1] == [p["target"]]
        assert g.answer == [G.VOCAB.index(G.A), p["target"], tok.eos_token_id]
        assert tok(G.to_text(p), add_special_tokens=False)["input_ids"] == g.question
    p = real[0]   # "Every shumpus is a rempus. …": the first statement is the first edge
    first = p["question"].split(".")[0].split()
    assert G.question_edges(p)[0] == (p["idx_to_symbol"].index(first[1]), p["idx_to_symbol"].index(first[-1]))
    assert G.to_text(p).endswith(f"[Q] {p['target']} {p['neg_target']} [R] {p['root']}")   # "Is Tom a lempus or scrompus?"


def test_options_keep_the_order_they_are_asked_in(real):
    flipped = [p for p in real if p["question"].rstrip("?").endswith(p["idx_to_symbol"][p["target"]])]
    assert flipped, "the real set asks the target second in some problems"
    p = flipped[0]
    assert G.asked_options(p) == (p["neg_target"], p["target"])


def test_relabelling_hides_index_order_and_names_come_back(real):
    p = real[3]
    labels = G.relabelling(len(p["idx_to_symbol"]), random.Random(1))
    assert len(set(labels)) == len(labels) and max(labels) < G.MAX_NODES and labels != sorted(labels)
    g = G.encode(p, labels)
    assert G.names(p, g.steps[-1], labels) == [p["idx_to_symbol"][p["target"]]]
    assert G.names(p, g.answer, labels)[0] == "[A]"
    # the same problem under two relabellings: the same graph, other tokens
    assert G.encode(p, G.relabelling(len(p["idx_to_symbol"]), random.Random(2))).question != g.question
    # relabelling an encoded problem (what training does each epoch) is encoding it under those labels
    rng = random.Random(3)
    for q in real[:40]:
        n = len(q["idx_to_symbol"])
        a, b = G.relabelling(n, rng), G.relabelling(n, rng)
        assert G.encode(q).relabelled(a) == G.encode(q, a) and G.encode(q, a).relabelled(b) == G.encode(q, b)
    with pytest.raises(InputError, match="distinct node tokens"):
        g.relabelled([0] * len(labels))


def test_a_typed_problem(real):
    p = G.from_sentences("Tom is a cat. Every cat is a mammal. Every mammal is an animal. Bob is a fish. "
                         "Is Tom a fish or animal?")
    assert p["steps"] == ["Tom is a cat.", "Every cat is a mammal.", "Every mammal is a animal."]
    assert p["answer"] == "Tom is a animal." and p["idx_to_symbol"][p["target"]] == "animal"
    assert G.to_text(p) == "<eos> 0 1 | 1 2 | 2 3 | 4 5 [Q] 5 3 [R] 0"
    assert G.parse_answer("1 2 3 [A] 3 <eos>") == "3" and G.is_correct("[A] 3", p) and not G.is_correct("[A] 5", p)
    # the real set's own sentences give back the same graph
    q = G.from_sentences(real[0]["question"])
    sym = real[0]["idx_to_symbol"]
    assert {(sym[a], sym[b]) for a, b in real[0]["edges"]} == {(q["idx_to_symbol"][a], q["idx_to_symbol"][b])
                                                               for a, b in q["edges"]}


@pytest.mark.parametrize("text,match", [
    ("", "pass ProsQA sentences"),
    ("Tom is a cat.", "Is NAME a A or B"),
    ("Is Tom a cat or dog?", "no statements"),
    ("Tom is a cat. Is Tom a cat or dog?", "'dog' appears in the question"),
    ("Tom is a cat. Bob is a dog. Every cat is a pet. Every dog is a pet. Is Tom a pet or cat?", "both are"),
    ("Tom is a cat. Bob is a dog. Is Tom a dog or dog?", "neither is"),
])
def test_bad_typed_problems_name_the_fix(text, match):
    with pytest.raises(InputError, match=match):
        G.from_sentences(text)


def test_bad_problems_and_labels_are_typed_errors(real):
    with pytest.raises(InputError, match="Coconut format"):
        G.encode({"question": "x"})
    big = dict(real[0], idx_to_symbol=[f"n{i}" for i in range(G.MAX_NODES + 1)])
    with pytest.raises(InputError, match="at most 40"):
        G.encode(big)
    with pytest.raises(InputError, match="distinct node tokens"):
        G.encode(real[0], [0] * len(real[0]["idx_to_symbol"]))
    with pytest.raises(InputError, match="disagree"):
        G.encode(dict(real[0], edges=real[0]["edges"][1:]))


def test_a_chain_of_thought_reads_as_a_walk(real):
    """read_walk: the reference path walks real edges to the target; a hop across no edge is counted;
    a walk down another branch ends elsewhere."""
    p = real[0]
    path = G.reasoning_path(p)
    text = " ".join(map(str, path[1:] if path[0] == p["root"] else path)) + f" {G.A} {p['target']}"
    w = G.read_walk(text, p)
    assert w == {"hops": w["hops"], "edges": w["hops"], "reaches": True} and w["hops"] >= 3
    jump = G.read_walk(f"{p['target']} {G.A} {p['target']}", p)          # straight to the answer
    assert jump == {"hops": 1, "edges": int((p["root"], p["target"]) in map(tuple, p["edges"])), "reaches": True}
    child = next(b for a, b in p["edges"] if a == p["root"] and b not in path)
    assert G.read_walk(f"{child} {G.A} {child}", p) == {"hops": 1, "edges": 1, "reaches": False}
    assert G.read_walk(f"{G.A} {p['target']}", p) == {"hops": 0, "edges": 0, "reaches": False}


def test_the_thought_markers_are_the_engines():
    from explorer.thoughts.engine import BOT, EOT, LATENT

    assert (G.BOT, G.EOT, G.LATENT) == (BOT, EOT, LATENT)


def test_generated_problems_fit_and_train_a_coconut_model(tmp_path, real):
    """A tiny graph-token Coconut run on the one trainer: relabelled batches, thoughts, evaluation."""
    from explorer.thoughts.train import TrainConfig, Trainer

    data = generate(32, seed=3)
    cfg = TrainConfig(method="coconut", encoding="graph", n_layer=1, n_embd=16, n_head=2, batch_size=8, num_epochs=2,
                      epochs_per_stage=1, max_latent_stage=2, lr=1e-3, device="cpu", threads=1, save_every=100)
    t = Trainer(data, tmp_path / "run", cfg, eval_data=real[:3], eval_limit=3, progress=False)
    b0, b1 = t.recipe.epoch_batches(0)[0], t.recipe.epoch_batches(1)[0]
    latent = t.tokenizer.convert_tokens_to_ids(G.LATENT)
    assert (b1["input_ids"] == latent).sum() == 8 and (b0["input_ids"] == latent).sum() == 0   # stage 1: 1 thought
    st = t.train()
    assert st.stage == 1 and [e["n"] for e in st.evals] == [3, 3]
    # from stage 1 on, the options are also read off the thoughts (readout="peak"); before, there are none
    assert ["peak_accuracy" in e for e in st.evals] == [False, True]
    assert json.loads((tmp_path / "run" / "latest" / "config.json").read_text())["coconut"]["encoding"] == "graph"

    # the frontier, measured on the checkpoint: per hop count, per thought, every group and the path node
    import explorer
    from explorer.plots import frontier_figure
    from explorer.thoughts.frontier import frontier_probe, frontier_table

    model = explorer.load_model(tmp_path / "run" / "latest")
    from explorer.thoughts.evaluate import evaluate

    cot = evaluate(model, real[:6], "cot")
    assert set(cot["walk"]) == {"edge_share", "reaches_answer"} and "walk" not in evaluate(model, real[:2], "no_cot")
    res = evaluate(model, real[:6], "coconut", n_thoughts=2)
    n_by = {h: sum(len(p["steps"]) == h for p in real[:6]) for h in res["accuracy_by_hops"]}
    assert sum(n_by.values()) == 6 and res["mean_generated_tokens"] <= 2 + 16
    assert sum(res["accuracy_by_hops"][h] * n_by[h] for h in n_by) / 6 == pytest.approx(res["accuracy"])
    r = frontier_probe(model, real[0], 2)
    path = G.reasoning_path(real[0])
    assert len(r.rows) == 2 and r.rows[1]["path_prob"] == r.rows[1]["node_prob"][path[1]]
    assert r.rows[0]["path_inner"] == pytest.approx(r.rows[0]["node_inner"][path[0]])
    assert 0.0 <= sum(r.rows[0]["sums"].values()) <= 1.0 + 1e-6
    tab = frontier_table(model, real[:4], 2)
    assert sum(v["n"] for v in tab["by_hops"].values()) == 4 and tab["groups"][-1] == "path"
    h = min(tab["by_hops"])
    assert len(tab["by_hops"][h]["prob"]["frontier"]) == 2 and len(tab["by_hops"][h]["inner"]["path"]) == 2
    assert len(frontier_figure(tab, "inner").data) == 4 * len(tab["by_hops"])
    # where the answer could be read off: per thought, is the right option the likelier one; and the answers
    first = [p for p in real[:4] if len(p["steps"]) == h]
    probes = [frontier_probe(model, p, 2) for p in first]
    assert tab["by_hops"][h]["right_option"] == pytest.approx(
        [np.mean([pr.rows[k]["node_prob"][p["target"]] > pr.rows[k]["node_prob"][p["neg_target"]]
                  for pr, p in zip(probes, first)]) for k in range(2)])
    assert tab["by_hops"][h]["answer"] == pytest.approx(evaluate(model, first, "coconut", n_thoughts=2)["accuracy"])


def test_graph_thoughts_follow_the_root_without_markers(tmp_path):
    """The superposition paper's layout: ``… [R] root <latent> <latent> …`` then the rest, so the first
    thought is the root's own hidden state; a checkpoint records it and the engine thinks the same way.
    ``markers="yes"`` restores Coconut's ``<bot>``/``<eot>``; ProsQA's sentences keep them by default."""
    import explorer
    from explorer.thoughts.engine import ThoughtSession, think
    from explorer.thoughts.train import TrainConfig, Trainer

    data = generate(16, seed=3)
    cfg = TrainConfig(method="coconut", encoding="graph", n_layer=1, n_embd=16, n_head=2, batch_size=4, num_epochs=2,
                      epochs_per_stage=1, max_latent_stage=2, device="cpu", threads=1, save_every=100)
    assert TrainConfig().uses_markers() and not cfg.uses_markers()
    with pytest.raises(InputError, match="markers must be"):
        dataclasses.replace(cfg, markers="sometimes").check()

    def tokens(trainer):
        ids = trainer.recipe.epoch_batches(1)[0]["input_ids"][0].tolist()       # stage 1: one thought
        return [x for x in trainer.tokenizer.convert_ids_to_tokens(ids) if x != G.PAD]

    t = Trainer(data, tmp_path / "run", cfg, progress=False)
    toks = tokens(t)
    assert G.BOT not in toks and G.EOT not in toks and toks[toks.index(G.LATENT) - 2] == G.R
    marked = tokens(Trainer(data, tmp_path / "marked", dataclasses.replace(cfg, markers="yes"), progress=False))
    i = marked.index(G.LATENT)
    assert marked[i - 1] == G.BOT and marked[i + 1] == G.EOT and marked[i - 3] == G.R
    t.train()
    model = explorer.load_model(tmp_path / "run" / "latest")
    assert model.hf.config.coconut["markers"] is False
    prompt = G.prompt(data[0])
    root = model.tokenizer.convert_tokens_to_ids(str(data[0]["root"]))
    assert ThoughtSession(model, prompt).prompt_ids[-1] == root                 # thinks as it was trained
    assert ThoughtSession(model, prompt, markers=True).prompt_ids[-1] == model.tokenizer.convert_tokens_to_ids(G.BOT)
    assert think(model, prompt, 2, annotate=False).n_thoughts == 2


def test_exact_thoughts_one_per_hop_then_the_model_says_when_to_stop(tmp_path):
    """exact_thoughts: a problem gets min(stage, hops) thoughts and "[A]" right after the last one, the
    checkpoint names "[A]" as its stop token, and the engine stops thinking when the model predicts it."""
    import explorer
    from explorer.thoughts.evaluate import evaluate
    from explorer.thoughts.engine import ThoughtSession, think
    from explorer.thoughts.train import TrainConfig, Trainer

    with pytest.raises(InputError, match="exact_thoughts"):
        TrainConfig(method="coconut", encoding="words", exact_thoughts=True).check()
    data = generate(24, seed=5)
    cfg = TrainConfig(method="coconut", encoding="graph", exact_thoughts=True, n_layer=1, n_embd=16, n_head=2,
                      batch_size=24, num_epochs=1, epochs_per_stage=1, max_latent_stage=6, device="cpu", threads=1,
                      save_every=100, uniform_prob=0.0, group_by_length=False)   # rows in the shuffle's order
    t = Trainer(data, tmp_path / "run", cfg, progress=False)
    latent, a = (t.tokenizer.convert_tokens_to_ids(x) for x in (G.LATENT, G.A))
    order = np.random.default_rng([cfg.seed, 9]).permutation(len(data))
    batch = t.recipe.epoch_batches(9)[0]                          # stage 9: every step a thought, at most 6
    for row, j in zip(batch["input_ids"].tolist(), order):
        hops = len(data[int(j)]["steps"])
        lat = [i for i, x in enumerate(row) if x == latent]
        assert len(lat) == min(hops, 6) and row[lat[-1] + 1] == a
    three = t.recipe.epoch_batches(3)[0]                          # stage 3: 3 thoughts, the path goes on after them
    assert all((r == latent).sum() == 3 for r in three["input_ids"]) and min(len(p["steps"]) for p in data) >= 3
    t.train()
    model = explorer.load_model(tmp_path / "run" / "latest")
    assert model.hf.config.coconut["stop_on"] == G.A
    prompt = G.prompt(data[0])
    assert ThoughtSession(model, prompt).stop_id == a and ThoughtSession(model, prompt, stop_on=None).stop_id is None
    free = think(model, prompt, 4, stop_on=None, annotate=False)
    said = model.tokenizer.convert_ids_to_tokens(int(model.probe.logits(free.trajectory[1].vectors["thought.1"],
                                                                        normed=False).argmax()))
    stopped = think(model, prompt, 4, stop_on=said, annotate=False)  # stop on what the model says after thought 1
    assert stopped.n_thoughts == 1 and stopped.stopped_early and free.n_thoughts == 4
    # the papers' protocol: exactly one thought per hop of each problem's path, whatever the learned stop says
    some = data[:6]
    res = evaluate(model, some, "coconut", n_thoughts="hops")
    for h, mean in res["mean_generated_tokens_by_hops"].items():
        runs = [think(model, G.prompt(p), h, stop_on=None, annotate=False, max_new_tokens=16)
                for p in some if len(p["steps"]) == h]
        assert all(r.n_thoughts == h for r in runs)
        assert mean == pytest.approx(sum(r.generated_tokens for r in runs) / len(runs))
    with pytest.raises(InputError, match="hops"):
        evaluate(model, some, "cot", n_thoughts="hops")
    with pytest.raises(InputError, match="hops"):
        evaluate(lambda prompt: "[A] 1", some, "coconut", n_thoughts="hops")
    import argparse
    from explorer.thoughts.evaluate import add_eval_arguments
    ap = argparse.ArgumentParser()
    add_eval_arguments(ap)
    assert ap.parse_args(["--n-thoughts", "hops"]).n_thoughts == "hops" and ap.parse_args(["--n-thoughts", "3"]).n_thoughts == 3
    with pytest.raises(SystemExit):
        ap.parse_args(["--n-thoughts", "many"])


def test_coconut_bfs_teaches_each_thought_its_frontier(tmp_path, real):
    """frontier_loss: thought k's target is the relabelled set of nodes at the end of a walk of k+1 edges;
    the loss is lowest when the logits spread evenly over it, and a short run lowers it."""
    from explorer.tasks.prosqa.graph import hop_sets
    from explorer.thoughts.data import coconut_forward, frontier_loss
    from explorer.thoughts.train import TrainConfig, Trainer

    with pytest.raises(InputError, match="--method coconut --encoding graph"):
        TrainConfig(method="cot", encoding="graph", frontier_loss=1.0).check()
    with pytest.raises(InputError, match="--method coconut --encoding graph"):
        TrainConfig(method="coconut", encoding="words", frontier_loss=1.0).check()
    data = [p for p in generate(64, seed=4) if len(p["steps"]) >= 3][:16]
    cfg = TrainConfig(method="coconut", encoding="graph", frontier_loss=1.0, n_layer=1, n_embd=32, n_head=2,
                      batch_size=16, num_epochs=40, epochs_per_stage=1, max_latent_stage=2, lr=3e-3, device="cpu",
                      threads=1, save_every=1000, warmup_steps=0, group_by_length=False)  # rows in the shuffle's order
    t = Trainer(data, tmp_path / "run", cfg, progress=False)
    batch = t.recipe.epoch_batches(5)[0]                       # past the last stage: two thoughts per problem
    latent = t.recipe.ids[G.LATENT]
    assert batch["frontier"].shape == (16, 2, G.MAX_NODES)
    # the first problem of the batch, rebuilt with the same relabelling: its thoughts' targets are its walks
    order = np.random.default_rng([cfg.seed, 5]).permutation(len(data))
    relabel = random.Random(cfg.seed * 1_000_003 + 5)
    p0 = data[int(order[0])]
    t0 = t.recipe._tokenized(int(order[0]), relabel)
    lab = G.relabelling(len(p0["idx_to_symbol"]), random.Random(cfg.seed * 1_000_003 + 5))
    walks, _ = hop_sets(p0, 2)
    assert t0.frontiers == [sorted(lab[n] for n in walks[h]) for h in (1, 2)]
    assert (t0.question, t0.steps, t0.answer) == (lambda g: (g.question, g.steps, g.answer))(G.encode(p0, lab))
    assert lab[G.reasoning_path(p0)[0]] in t0.frontiers[0] and lab[G.reasoning_path(p0)[1]] in t0.frontiers[1]
    assert set(batch["frontier"][0, 1].nonzero().flatten().tolist()) == set(t0.frontiers[1])
    # an oracle that spreads the logits evenly over each frontier scores below one that picks a single node
    V = batch["input_ids"].max().item() + 1
    even = torch.full((*batch["input_ids"].shape, V), -20.0)
    single = even.clone()
    for b in range(16):
        pos = (batch["input_ids"][b] == latent).nonzero().flatten()
        for p in range(2):
            nodes = batch["frontier"][b, p].nonzero().flatten()
            even[b, pos[p] - 1, nodes] = 0.0
            single[b, pos[p] - 1, nodes[0]] = 0.0
    f_even = frontier_loss(even, batch["input_ids"], latent, batch["frontier"])
    f_single = frontier_loss(single, batch["input_ids"], latent, batch["frontier"])
    assert f_even < f_single and f_even == pytest.approx(
        float(np.mean([np.log(n) for n in batch["frontier"].sum(-1).flatten().tolist() if n])), rel=1e-3)
    # the term is what teaches it: the same run without it leaves the thoughts' frontier loss higher
    def frontier_after(trainer):
        assert trainer.train().global_step == 40
        with torch.no_grad():
            return float(frontier_loss(coconut_forward(trainer.model, batch, latent)[1], batch["input_ids"], latent,
                                       batch["frontier"]))

    plain = Trainer(data, tmp_path / "plain", dataclasses.replace(cfg, frontier_loss=0.0), progress=False)
    assert "frontier" not in plain.recipe.epoch_batches(5)[0]
    assert frontier_after(t) < frontier_after(plain) - 0.5


def test_the_separation_margin_holds_each_thought_s_frontier_above_the_nodes_its_root_does_not_reach(tmp_path):
    """separation_weight: every question in a batch (its own and the extra ones on its statements) carries the
    nodes its root reaches, under the same relabelling as its frontiers: its root and one option (the answer)
    among them, the other option not; the term adds ≈ 0 when each thought's frontier stands far above the rest
    and charges a thought that leaks as much onto a node the root cannot reach; it needs the frontier loss, a
    run trains with it, and a run keeps the weight it started with."""
    from explorer.thoughts.data import frontier_loss
    from explorer.thoughts.train import TrainConfig, Trainer

    with pytest.raises(InputError, match="separation_weight"):
        TrainConfig(method="coconut", encoding="graph", separation_weight=1.0).check()
    data = [p for p in generate(40, seed=4) if len(p["steps"]) >= 3][:12]
    cfg = TrainConfig(method="coconut", encoding="graph", arch="llama", frontier_loss=1.0, separation_weight=1.0,
                      exact_thoughts=True, queries=3, n_layer=1, n_embd=32, n_head=2, batch_size=4, num_epochs=4,
                      epochs_per_stage=1, max_latent_stage=6, lr=3e-3, device="cpu", threads=1, save_every=1000)
    t = Trainer(data, tmp_path / "run", cfg, progress=False)
    latent = t.recipe.ids[G.LATENT]
    batch = t.recipe.epoch_batches(3)[0]   # stage 3: three thoughts a question (fewer on a shorter path)
    reached, ids = batch["reached"], batch["input_ids"]
    assert reached.shape == (12, G.MAX_NODES) and reached.dtype == torch.bool
    q = G.VOCAB.index(G.Q)
    for r in range(12):
        assert ids[r, 0] == q
        a, b, root = int(ids[r, 1]), int(ids[r, 2]), int(ids[r, 4])
        assert reached[r, root] and int(reached[r, a]) + int(reached[r, b]) == 1
        assert bool((reached[r][None, :] | ~batch["frontier"][r].bool()).all())   # every target is reached
    # an oracle even over each frontier and far below elsewhere: the margin adds ≈ 0; the same oracle leaking as
    # much onto one node the root does not reach is charged softplus(0 - softmin over the n frontier nodes)
    # = softplus(log n) = log(1 + n) a thought
    V = int(ids.max()) + 1
    even = torch.full((*ids.shape, V), -20.0)
    for r in range(12):
        pos = (ids[r] == latent).nonzero().flatten()
        for p in range(len(pos)):
            nodes = batch["frontier"][r, p].nonzero().flatten()
            even[r, pos[p] - 1, nodes] = 0.0
    leak = even.clone()
    for r in range(12):
        outside = (~reached[r]).nonzero().flatten()[0]
        for pos in (ids[r] == latent).nonzero().flatten():
            leak[r, pos - 1, outside] = 0.0
    loss = {(name, w): float(frontier_loss(x, ids, latent, batch["frontier"], reached, w))
            for name, x in (("even", even), ("leak", leak)) for w in (0.0, 1.0)}
    assert loss["even", 1.0] - loss["even", 0.0] < 1e-3
    n = batch["frontier"].sum(-1).flatten()
    assert loss["leak", 1.0] - loss["leak", 0.0] == pytest.approx(float(torch.log1p(n[n > 0]).mean()), abs=1e-3)
    with pytest.raises(ExplorerError, match="reached_targets"):
        frontier_loss(even, ids, latent, batch["frontier"], None, 1.0)
    state = t.train()
    assert state.global_step == 12 and all(np.isfinite(x[1]) for x in state.losses)
    with pytest.raises(InputError, match="other settings"):
        Trainer(data, tmp_path / "run", dataclasses.replace(cfg, separation_weight=0.5), progress=False)
    # without it a batch carries no reach sets
    plain = Trainer(data, tmp_path / "plain", dataclasses.replace(cfg, separation_weight=0.0), progress=False)
    assert "reached" not in plain.recipe.epoch_batches(3)[0]


def test_reach_targets_teach_each_thought_every_node_within_its_hops(tmp_path):
    """thought_targets="reach": thought k is taught the union of the frontiers of hops 1..k+1 (what the
    recurrent model's iterations are taught), the same relabelling as the frontier; the setting needs the loss,
    and a run keeps the targets it started with."""
    from explorer.tasks.prosqa.graph import hop_sets
    from explorer.thoughts.train import TrainConfig, Trainer

    with pytest.raises(InputError, match="--frontier-loss 1"):
        TrainConfig(method="coconut", encoding="graph", thought_targets="reach").check()
    with pytest.raises(InputError, match="frontier, reach"):
        TrainConfig(method="coconut", encoding="graph", frontier_loss=1.0, thought_targets="all").check()
    data = [p for p in generate(64, seed=4) if len(p["steps"]) >= 3][:8]
    cfg = TrainConfig(method="coconut", encoding="graph", frontier_loss=1.0, thought_targets="reach", n_layer=1,
                      n_embd=16, n_head=2, batch_size=8, num_epochs=1, epochs_per_stage=1, max_latent_stage=3,
                      device="cpu", threads=1, save_every=1000, group_by_length=False)
    t = Trainer(data, tmp_path / "run", cfg, progress=False)
    relabel = random.Random(11)
    t0 = t.recipe._tokenized(0, relabel)
    lab = G.relabelling(len(data[0]["idx_to_symbol"]), random.Random(11))
    walks, _ = hop_sets(data[0], 3)
    assert t0.frontiers == [sorted({lab[n] for h in range(1, k + 1) for n in walks[h]}) for k in (1, 2, 3)]
    assert set(t0.frontiers[0]) < set(t0.frontiers[2])       # the sets grow: walks[1] alone is not all of them
    exact = Trainer(data, tmp_path / "frontier", dataclasses.replace(cfg, thought_targets="frontier"), progress=False)
    want = [sorted(lab[n] for n in walks[h]) for h in (1, 2, 3)]
    assert exact.recipe._tokenized(0, random.Random(11)).frontiers == want
    t.train()
    with pytest.raises(InputError, match="thought_targets"):
        Trainer(data, tmp_path / "run", dataclasses.replace(cfg, thought_targets="frontier"), progress=False).train()


@pytest.mark.slow
def test_the_recipe_rehearses_the_gpu_command_and_resumes_on_the_cpu(tmp_path):
    """recipes/prosqa-graph.sh at SIZE=tiny: the GPU command (DEVICE=cpu), as the device machine runs it (no
    .venv: a plain python with the checkout on its path), trains, evaluates and ships all four models, one
    archive each; the same command again resumes (no step is trained twice)."""
    env = {**os.environ, "SIZE": "tiny", "MODE": "gpu", "DEVICE": "cpu", "RUNS": str(tmp_path / "runs"), "SHIP": "1",
           "SHIP_TO": str(tmp_path / "shipped"), "OUT": str(tmp_path / "out"), "EVAL_LIMIT": "3",
           "MODELS": "coconut cot nocot recurrent", "BIN": str(tmp_path / "no-venv"), "PYTHON": sys.executable,
           "COCONUT_QUERIES": "2"}
    r = subprocess.run(["bash", "recipes/prosqa-graph.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    names = ["prosqa-coconut", "prosqa-cot", "prosqa-nocot", "prosqa-recurrent-graph"]
    # one archive a model and one of the logs: a device machine returns at most 8 files
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        sorted([*(n + ".tar" for n in names), "prosqa-graph-logs.tar.gz"])
    with tarfile.open(tmp_path / "out" / "prosqa-graph-logs.tar.gz") as tar:
        assert {"./coconut.log", "./coconut/log.jsonl", "./recurrent-warm/log.jsonl"} <= set(tar.getnames())
    for name in names:
        with tarfile.open(tmp_path / "out" / f"{name}.tar") as tar:
            tar.extractall(tmp_path / "unpacked", filter="data")
    for name in names:
        assert sorted(p.name for p in (tmp_path / "unpacked" / name).iterdir()) == \
            sorted(p.name for p in (tmp_path / "shipped" / name).iterdir())
        prov = json.loads((tmp_path / "unpacked" / name / "provenance.json").read_text())
        assert "MODE=gpu SIZE=tiny" in prov["command"] and prov["cost"]["device"] == "gpu"
        assert len(prov["cost"]["stages"]) == 2 and prov["results"]   # the warm-up and the main run
        result = next(iter(prov["results"].values()))
        if name == "prosqa-coconut":   # also measured with one thought per hop, the papers' protocol
            assert "COCONUT_QUERIES=2" in prov["command"] and "2 questions per graph in a pass" in prov["description"]
            hops = prov["results"]["coconut-eval-hops"]
            assert hops["n_thoughts"] == "hops" and hops["n"] == 3
            # and with the options read off the thoughts at their peak
            assert list(prov["results"]) == ["coconut-eval", "coconut-eval-hops", "coconut-eval-peak"]
            assert prov["results"]["coconut-eval-peak"]["readout"] == "peak"
        if name == "prosqa-recurrent-graph":   # and with each option read at its peak over the iterations
            assert list(prov["results"]) == ["recurrent-eval", "recurrent-eval-peak"]
            assert [prov["results"][k]["readout"] for k in prov["results"]] == ["final", "peak"]
            assert {prov["results"][k]["adaptive"]["exit"] for k in prov["results"]} == {"peak-rise"}
        assert result["n"] == 3 and ("accuracy_by_hops" in result if name != "prosqa-recurrent-graph" else
                                     set(result["accuracy"]) == {"1", "2", "4", "8", "16"})
        assert (tmp_path / "out" / f"{name}.tar").stat().st_size < 16 * 2 ** 20
    def steps(m):
        return json.loads((tmp_path / "runs" / m / "latest" / "trainer_state.json").read_text())["global_step"]

    trained = {m: steps(m) for m in ("coconut", "cot", "nocot", "recurrent", "coconut-warm", "recurrent-warm")}
    state = lambda m: json.loads((tmp_path / "runs" / m / "latest" / "trainer_state.json").read_text())  # noqa: E731
    # the CPU command resumes (no step trained twice); POLISH=1 then goes on from each main run for one more
    # epoch (Coconut at its last stage; the recurrent model at POLISH_ITERS iterations) and ships from there,
    # the polish's cost counted with the runs before it
    env.update(MODE="cpu", POLISH="1", POLISH_ITERS="3", POLISH_UNREACHED="2", POLISH_SEPARATION="0.5", OUT="",
               POLISH_QUERIES="3")
    r = subprocess.run(["bash", "recipes/prosqa-graph.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert trained == {m: steps(m) for m in trained}
    per_epoch = -(-24 // 8)   # SIZE=tiny: 24 problems, batches of 8
    assert {steps(m + "-polish") for m in ("coconut", "cot", "nocot")} == {per_epoch}
    log = [json.loads(x) for x in (tmp_path / "runs" / "coconut-polish" / "log.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in log if "checkpoint" in e} == {6}   # never back to the chain of thought
    assert [state(m)["config"]["queries"] for m in ("coconut", "coconut-polish")] == [2, 3]
    # POLISH_SEPARATION is the Coconut polish's margin too: each thought's frontier over the nodes its root misses
    assert [state(m)["config"]["separation_weight"] for m in ("coconut", "coconut-polish")] == [0.0, 0.5]
    iters = {m: json.loads((tmp_path / "runs" / m / "latest" / "config.json").read_text())["mean_recurrence"]
             for m in ("recurrent", "recurrent-polish")}
    assert iters == {"recurrent": 8, "recurrent-polish": 3}
    weights = {m: (state(m)["config"]["unreached_weight"], state(m)["config"]["separation_weight"])
               for m in ("recurrent", "recurrent-polish")}
    assert weights == {"recurrent": (0.0, 0.0), "recurrent-polish": (2.0, 0.5)}
    for name in names:
        prov = json.loads((tmp_path / "shipped" / name / "provenance.json").read_text())
        assert ("POLISH=1 POLISH_LR=3e-4 POLISH_QUERIES=3 POLISH_ITERS=3 POLISH_UNREACHED=2 POLISH_SEPARATION=0.5"
                in prov["command"])
        assert "and 1 more at learning rate" in prov["description"]
        assert len(prov["cost"]["stages"]) == 3 and list(prov["cost"]["stages"])[-1].endswith("-polish")
        assert next(iter(prov["results"].values()))["model"].endswith("-polish/latest")
        assert ("the polish charges mass outside the reach set 1 + 2 times; the polish weighs a soft margin of every "
                "reached node over the rest 0.5"
                in prov["description"]) == (name == "prosqa-recurrent-graph")
        assert ("the polish weighs each thought's frontier held above the nodes its root does not reach by a soft "
                "margin 0.5" in prov["description"]) == (name == "prosqa-coconut")
    # POLISH_FROM=shipped polishes the shipped weights (no warm-up or main run) and ships over them; the provenance
    # keeps theirs as its base, the chain that reproduces it, and counts their stages in the cost
    before = {n: json.loads((tmp_path / "shipped" / n / "provenance.json").read_text())
              for n in ("prosqa-coconut", "prosqa-recurrent-graph")}
    env.update(POLISH_FROM="shipped", MODELS="coconut recurrent", RUNS=str(tmp_path / "again"))
    r = subprocess.run(["bash", "recipes/prosqa-graph.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "again").iterdir() if p.is_dir()) == ["coconut-polish", "recurrent-polish"]
    for name, old in before.items():
        prov = json.loads((tmp_path / "shipped" / name / "provenance.json").read_text())
        assert prov["base"] == {k: old[k] for k in ("name", "description", "command", "cost")}
        assert "POLISH_FROM=shipped" in prov["command"] and prov["description"].startswith(old["description"])
        # the earlier polish's cost stays beside this one's
        assert list(prov["cost"]["stages"]) == [*old["cost"]["stages"], name.split("-")[1] + "-polish-2"]
    prov = json.loads((tmp_path / "shipped" / "prosqa-coconut" / "provenance.json").read_text())
    assert prov["description"].endswith("all at the last stage, 3 questions per graph in a pass; each thought's frontier "
                                        "held above the nodes its root does not reach by a soft margin at weight 0.5")
    prov = json.loads((tmp_path / "shipped" / "prosqa-recurrent-graph" / "provenance.json").read_text())
    assert prov["description"].endswith(", 3 core iterations; mass outside a question's reach set charged 1 + 2 times; "
                                        "a soft margin of every reached node over the rest at weight 0.5")
    # a polish keeps the shipped model it started from (weights and provenance, RUNS/<model>-polish/base): shipped
    # after another model went over that folder meanwhile, it names its own base, not the newcomer
    started = json.loads((tmp_path / "shipped" / "prosqa-recurrent-graph" / "provenance.json").read_text())
    env.update(MODELS="recurrent", RUNS=str(tmp_path / "third"), SHIP="0")
    r = subprocess.run(["bash", "recipes/prosqa-graph.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    base = tmp_path / "third" / "recurrent-polish" / "base"
    assert json.loads((base / "provenance.json").read_text()) == started
    assert (base / "model.safetensors").read_bytes() == \
        (tmp_path / "shipped" / "prosqa-recurrent-graph" / "model.safetensors").read_bytes()
    newcomer = {**started, "description": "another model", "command": "another command"}
    (tmp_path / "shipped" / "prosqa-recurrent-graph" / "provenance.json").write_text(json.dumps(newcomer))
    env.update(SHIP="1")
    r = subprocess.run(["bash", "recipes/prosqa-graph.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    prov = json.loads((tmp_path / "shipped" / "prosqa-recurrent-graph" / "provenance.json").read_text())
    assert prov["base"] == {k: started[k] for k in ("name", "description", "command", "cost", "base")}
    assert prov["description"].startswith(started["description"] + "; then polished for 1 epochs")
    assert list(prov["cost"]["stages"]) == [*started["cost"]["stages"], "recurrent-polish-3"]
    env.update(POLISH="0")
    r = subprocess.run(["bash", "recipes/prosqa-graph.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "needs POLISH=N epochs" in r.stderr


def test_the_audit_reads_index_rules_raw_and_relabelled(real):
    """In the real file the larger index is the answer 60 % of the time; relabelled as training
    relabels them, no index rule tells anything."""
    from explorer.tasks.prosqa.audit import audit

    raw = audit(real)
    assert raw["larger index"]["n"] == 300 and raw["larger index"]["right"] == pytest.approx(0.6, abs=0.02)
    gen = generate(1500, seed=11)
    assert audit(gen)["larger index"]["right"] > 0.58                     # the generator's DAGs: low → high
    rel = audit(gen, relabel_seed=0)
    for rule in ("larger index", "index nearer the root"):
        assert abs(rel[rule]["right"] - 0.5) < 0.04, (rule, rel[rule])


GRAPH_MODELS = {"prosqa-coconut": "coconut", "prosqa-cot": "cot", "prosqa-nocot": "no_cot"}


@pytest.mark.parametrize("name", [n for n in GRAPH_MODELS if (SHIPPED_DIR / n).is_dir()])
def test_a_shipped_graph_model_reproduces_its_published_numbers(name, real):
    """`latent-explorer prosqa eval --method M` (the shipped model is the default) on all 300 real
    problems gives the accuracy, per hop count and generated tokens its provenance published."""
    import contextlib
    import io

    from explorer.cli import prosqa_eval

    mode = GRAPH_MODELS[name]
    prov = json.loads((SHIPPED_DIR / name / "provenance.json").read_text())
    for want in prov["results"].values():   # Coconut's also with one thought per hop and read at the peak
        flags = [*(["--n-thoughts", str(want["n_thoughts"])] if "n_thoughts" in want else []),
                 *(["--readout", want["readout"]] if "readout" in want else [])]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert prosqa_eval(["--method", mode.replace("_", ""), *flags, "--json"]) == 0
        got = json.loads(out.getvalue())
        one = 1 / 300 + 1e-9  # a near-tie may fall the other way under other float rounding: one problem, no more
        assert got["model"] == name and got["n"] == want["n"] == 300, flags
        assert abs(got["accuracy"] - want["accuracy"]) <= one, flags
        assert got["accuracy_by_hops"].keys() == want["accuracy_by_hops"].keys()
        assert got["mean_generated_tokens"] == pytest.approx(want["mean_generated_tokens"], abs=0.05), flags
    assert "recipes/prosqa-graph.sh" in prov["command"] and prov["cost"]["train_minutes"] > 0
    if mode == "cot":   # the chain is a walk along the graph's edges; it is right exactly when it reaches the answer
        assert got["walk"]["edge_share"] > 0.95 and got["walk"]["reaches_answer"] == pytest.approx(got["accuracy"])


@pytest.mark.skipif(not (SHIPPED_DIR / "prosqa-coconut").is_dir(), reason="prosqa-coconut not shipped")
def test_the_peak_readout_reads_each_option_at_its_highest_over_all_thoughts():
    """``readout="peak"`` thinks every thought (no learned stop) and answers the option whose next-token
    probability peaked higher over them, as the frontier probe reads the same thoughts; it needs a
    graph-token model thinking in continuous thoughts."""
    import explorer
    from explorer.thoughts.evaluate import evaluate
    from explorer.thoughts.frontier import frontier_probe

    model = explorer.load_model("prosqa-coconut")
    some = generate(30, seed=5)
    res = evaluate(model, some, "coconut", readout="peak")
    assert res["readout"] == "peak" and res["mean_generated_tokens"] == 6   # six thoughts, no words
    for p, ok, said in zip(some, res["correct"], res["outputs"]):
        opts = np.array([row["options"] for row in frontier_probe(model, p, 6, stop_on=None).rows])
        assert ok == bool(opts[:, 0].max() > opts[:, 1].max())
        assert said == p["idx_to_symbol"][int(p["target"] if ok else p["neg_target"])]
    hops = evaluate(model, some, "coconut", readout="peak", n_thoughts="hops")
    assert hops["mean_generated_tokens_by_hops"] == {h: float(h) for h in hops["mean_generated_tokens_by_hops"]}
    for bad in (dict(method="cot"), dict(n_thoughts=0), dict(model_or_engine=lambda prompt: "[A] 1")):
        with pytest.raises(InputError, match="readout='peak'"):
            evaluate(**{"model_or_engine": model, "data": some, "method": "coconut", **bad}, readout="peak")
    with pytest.raises(InputError, match="answer, peak"):
        evaluate(model, some, "coconut", readout="best")


@pytest.mark.skipif(not (SHIPPED_DIR / "prosqa-recurrent-graph").is_dir(), reason="prosqa-recurrent-graph not shipped")
def test_the_shipped_graph_recurrent_model_reproduces_its_published_numbers(real):
    """`latent-explorer prosqa eval --method recurrent` (the graph-token model is the default once shipped) on
    all 300 real problems gives the accuracy at each iteration count and with the adaptive exit, and the
    iterations it spends per hop count, that its provenance published, with either readout."""
    from explorer.cli import prosqa_eval

    prov = json.loads((SHIPPED_DIR / "prosqa-recurrent-graph" / "provenance.json").read_text())
    assert list(prov["results"]) == ["recurrent-eval", "recurrent-eval-peak"]
    for want in prov["results"].values():
        _reproduces(prosqa_eval, want)
    assert "recipes/prosqa-graph.sh" in prov["command"] and prov["cost"]["train_minutes"] > 0


@pytest.mark.skipif(not (SHIPPED_DIR / "prosqa-recurrent-graph").is_dir(), reason="prosqa-recurrent-graph not shipped")
def test_the_peak_rise_exit_iterates_longer_on_deeper_problems_and_keeps_the_accuracy(real):
    """On the 300 real problems, the shipped recurrent model with ``--exit peak-rise`` (stop once no token
    rises above its earlier peak: the search reaches nothing new) spends more iterations the more hops a
    problem needs, under half of the 16 allowed (``kl`` spends 12.7-15.0 whatever the hops), and answers
    within two points of what 16 fixed iterations do (the polished model's exit answers 4 of the 300
    fewer; docs/thoughts.md, "The adaptive exit")."""
    import contextlib
    import io

    from explorer.cli import prosqa_eval

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert prosqa_eval(["--method", "recurrent", "--iterations", "16", "--readout", "peak", "--exit", "peak-rise",
                            "--max-iters", "16", "--json"]) == 0
    got = json.loads(out.getvalue())
    rise = got["adaptive"]
    per_hops = [rise["mean_iterations_by_hops"][h] for h in ("3", "4", "5", "6")]
    assert all(a < b for a, b in zip(per_hops, per_hops[1:])), per_hops
    assert rise["exit"] == "peak-rise" and rise["mean_iterations"] < 8
    assert rise["accuracy"] >= got["accuracy"]["16"] - 6 / 300 - 1e-9


def _reproduces(prosqa_eval, want):
    """`prosqa eval --method recurrent` with the published result's iterations and readout gives its numbers."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert prosqa_eval(["--method", "recurrent", "--iterations", ",".join(want["accuracy"]),
                            "--readout", want["readout"], "--exit", want["adaptive"]["exit"], "--json"]) == 0
    got = json.loads(out.getvalue())
    one = 1 / 300 + 1e-9  # a near-tie may fall the other way under other float rounding: one problem, no more
    assert got["model"] == "prosqa-recurrent-graph" and got["n"] == want["n"] == 300
    assert got["readout"] == want["readout"]
    assert got["accuracy"].keys() == want["accuracy"].keys()
    assert set(got["mean_generated_tokens"].values()) == {1.0}   # the answer token, read where the question ends
    assert all(abs(got["accuracy"][r] - want["accuracy"][r]) <= one for r in want["accuracy"])
    assert got["n_by_hops"] == {"3": 124, "4": 133, "5": 36, "6": 7}   # the real set's hop counts
    for r, by in got["accuracy_by_hops"].items():                        # the accuracy, per hop count
        assert sum(by[h] * got["n_by_hops"][h] for h in by) / 300 == pytest.approx(got["accuracy"][r])
    assert abs(got["adaptive"]["accuracy"] - want["adaptive"]["accuracy"]) <= one
    assert got["adaptive"]["mean_iterations_by_hops"] == pytest.approx(want["adaptive"]["mean_iterations_by_hops"],
                                                                       abs=0.05)


@pytest.mark.parametrize("method", ["coconut", "recurrent"])
def test_an_epoch_of_graph_problems_is_batched_by_length(method):
    """Both graph-token trainers batch problems of similar length by default (less padding), every
    problem once an epoch, and the same batches for the same epoch (what an exact resume needs)."""
    data = generate(256, seed=4)
    if method == "coconut":
        from explorer.thoughts.train import CoconutRecipe as R, TrainConfig as C
        kw = dict(method="coconut", encoding="graph", n_layer=1, n_embd=16, n_head=2, batch_size=16, start_stage=6,
                  exact_thoughts=True)
    else:
        from explorer.recurrent.train import RecurrentRecipe as R, TrainConfig as C
        kw = dict(encoding="graph", n_embd=16, n_heads=2, intermediate_size=32, n_core=1, batch_size=16, queries=4)

    def epoch(grouped: bool, e: int = 0) -> tuple[list[dict], int]:
        recipe = R(data, C(**kw, group_by_length=grouped))
        recipe.build(None)
        return recipe.epoch_batches(e), int(recipe.tokenizer.pad_token_id)

    def real_share(batches: list[dict], pad: int) -> float:
        return sum(int((b["input_ids"] != pad).sum()) for b in batches) / sum(b["input_ids"].numel() for b in batches)

    (grouped, pad), (plain, _) = epoch(True), epoch(False)
    assert sum(len(b["input_ids"]) for b in grouped) == sum(len(b["input_ids"]) for b in plain) == 256
    assert real_share(plain, pad) + 0.05 < real_share(grouped, pad)
    again, _ = epoch(True)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(grouped, again))
    assert not torch.equal(epoch(True, 1)[0][0]["input_ids"], grouped[0]["input_ids"])


def test_more_questions_on_a_graph_are_drawn_as_prosqa_draws_its_own(real):
    """graph_questions: from any node with statements, a leaf it reaches in exactly len(path) hops (the path a
    shortest one, edge by edge) against a leaf it does not reach; as deep as ProsQA's questions (3 to 6 hops) where
    the graph allows, shallower where it does not; seeded. asking() writes one on the same statements under the
    problem's labels."""
    from explorer.tasks.prosqa.generate import graph_questions
    from explorer.tasks.prosqa.graph import distances

    problems = generate(30, seed=3)
    roots, hops = set(), []
    for p in problems:
        n, edges = len(p["idx_to_symbol"]), [tuple(e) for e in p["edges"]]
        qs = graph_questions(p, random.Random(1), 7)
        assert len(qs) == 7 and qs == graph_questions(p, random.Random(1), 7)
        leaves = set(range(n)) - {a for a, _ in edges}
        for q in qs:
            dist = distances(n, edges, q["root"])
            walk = [q["root"], *q["path"]]
            assert all(e in edges for e in zip(walk, walk[1:])) and q["path"][-1] == q["target"]
            assert dist[q["target"]] == len(q["path"]) and q["neg_target"] not in dist
            assert {q["target"], q["neg_target"]} <= leaves and set(q["options"]) == {q["target"], q["neg_target"]}
            roots.add(q["root"] != p["root"])
            hops.append(len(q["path"]))
    assert roots == {True, False} and {3, 4, 5} <= set(hops) <= {3, 4, 5, 6}
    assert graph_questions({"idx_to_symbol": ["A", "b"], "edges": [[0, 1]]}, random.Random(0), 3) == []  # no wrong leaf
    shallow = graph_questions({"idx_to_symbol": ["A", "B", "c", "d"], "edges": [[0, 2], [1, 3]]}, random.Random(0), 2)
    assert len(shallow) == 2 and all(q["path"] == [q["target"]] == [5 - q["neg_target"]] for q in shallow)

    p = real[0]
    lab = G.relabelling(len(p["idx_to_symbol"]), random.Random(2))
    g = G.encode(p, lab)
    q = graph_questions(p, random.Random(0), 1)[0]
    asked = g.asking(q["root"], q["options"], q["path"])
    assert asked.question[:-5] == g.question[:-5] and asked.labels == lab
    sym = p["idx_to_symbol"]
    assert G.names(p, asked.question[-5:], lab) == ["[Q]", *(sym[o] for o in q["options"]), "[R]", sym[q["root"]]]
    assert G.names(p, [s[0] for s in asked.steps] + asked.answer, lab) == \
        [*(sym[v] for v in q["path"]), "[A]", sym[q["target"]], "<eos>"]
    with pytest.raises(InputError, match="two options"):
        g.asking(q["root"], q["options"][:1], q["path"])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_a_graphs_questions_share_one_pass_over_its_statements(tmp_path, arch):
    """queries=Q: each graph's question and Q - 1 more on its statements, the statements read once for all of them,
    give the same loss, frontier loss and logits as the same questions batched one per row (at the chain of
    thought's stage and with thoughts), at far fewer positions; the batch counts graphs, and a run trains."""
    from explorer.thoughts.data import coconut_forward, collate, frontier_loss, frontier_targets
    from explorer.thoughts.train import TrainConfig, Trainer

    for bad in (dict(encoding="words"), dict(queries=0)):
        with pytest.raises(InputError, match="queries"):
            TrainConfig(**{"method": "coconut", "encoding": "graph", "queries": 3, **bad}).check()
    data = [p for p in generate(40, seed=4) if len(p["steps"]) >= 3][:12]
    cfg = TrainConfig(method="coconut", encoding="graph", arch=arch, frontier_loss=1.0, exact_thoughts=True, queries=3,
                      n_layer=2, n_embd=32, n_head=2, batch_size=4, num_epochs=4, epochs_per_stage=2,
                      max_latent_stage=6, uniform_prob=0.3, lr=3e-3, device="cpu", threads=1, save_every=1000)
    t = Trainer(data, tmp_path / "run", cfg, progress=False)
    recipe, latent, pad = t.recipe, t.recipe.ids[G.LATENT], int(t.recipe.tokenizer.pad_token_id)
    model = t.model.eval()
    for epoch in (0, 3):   # stage 0 (no thoughts but uniform_prob's) and stage 1 (a thought per question)
        batches = recipe.epoch_batches(epoch)
        assert len(batches) == 3 and sum(len(g) for g in batches.groups) == 36
        k = batches.batches[0]
        grouped = batches[0]
        questions = [x for j in k for x in batches.groups[j]]
        assert grouped["prefix_ids"].shape[0] == 4 and grouped["input_ids"].shape[0] == 12
        flat = collate([ex for ex, *_ in questions], pad, latent)
        flat["frontier"] = frontier_targets([ex for ex, *_ in questions], [f for _, f, *_ in questions], latent, 1,
                                            G.MAX_NODES)
        assert torch.equal(flat["frontier"], grouped["frontier"]) and int((flat["input_ids"] == latent).sum()) > 0
        with torch.no_grad():
            (lg, xg), (lf, xf) = coconut_forward(model, grouped, latent), coconut_forward(model, flat, latent)
            fg = frontier_loss(xg, grouped["input_ids"], latent, grouped["frontier"])
            ff = frontier_loss(xf, flat["input_ids"], latent, flat["frontier"])
        assert float(lg) == pytest.approx(float(lf), abs=1e-5) and float(fg) == pytest.approx(float(ff), abs=1e-5)
        real_g, real_f = grouped["attention_mask"].bool(), flat["attention_mask"].bool()
        for r in range(12):   # each question's own positions: the flat row's last ones
            n = int(real_g[r].sum())
            assert torch.allclose(xg[r][real_g[r]], xf[r][real_f[r]][-n:], atol=1e-4)
        assert int(grouped["prefix_mask"].sum() + real_g.sum()) < int(real_f.sum()) / 2
    # the first question of each group is the problem's own
    main = recipe._tokenized(int(np.random.default_rng([0, 3]).permutation(12)[0]), random.Random(3))
    assert batches.groups[0][0][0][0][:len(main.question)] == main.question
    assert t.train().global_step == 12
