"""Graph runs (any reasoner on one ProsQA problem as node masses per step), problem edits, and the
GraphView / GraphCompare widgets' state, without a browser (tests/browser has the rest)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.errors import InputError
from explorer.graph_runs import GraphRun, compare, disagreements, engine_of, run_graph
from explorer.model import Model
from explorer.tasks.prosqa import VALIDATION, load
from explorer.tasks.prosqa import graph_tokens as G
from explorer.tasks.prosqa.edit import edit, to_sentences
from explorer.tasks.prosqa.graph import cycle, hop_sets

SMALL = ("Tom is a cat. Tom is a bird. Every cat is a mammal. Every bird is a fish. Every mammal is an animal. "
         "Every reptile is a plant. Is Tom an animal or plant?")


@pytest.fixture(scope="module")
def real():
    return load(VALIDATION)


@pytest.fixture(scope="module")
def reasoners():
    """Tiny random-weight graph-token reasoners of each engine (the state, not the skill, is tested)."""
    from explorer.recurrent.engine import RecurrentModel
    from explorer.recurrent.model import build_model, tiny_config
    from explorer.thoughts.train import add_thought_tokens, build_base_model

    out = {}
    for method in ("coconut", "cot", "no_cot"):
        tok = G.build_graph_tokenizer()
        hf = build_base_model(tok, n_layer=1, n_embd=16, n_head=2, arch="llama", seed=1).eval()
        if method == "coconut":
            add_thought_tokens(hf, tok)
        hf.config.coconut = {"method": method, "n_thoughts": 3, "encoding": "graph"}
        out[method] = Model(hf, tok, name=f"tiny-{method}")
    tok = G.build_graph_tokenizer()
    out["recurrent"] = RecurrentModel(build_model(tiny_config(vocab_size=len(tok), prosqa_task="reach"), seed=1).eval(),
                                      tok)
    return out


def test_a_coconut_run_reads_each_thought_as_node_masses(reasoners, real):
    m, p = reasoners["coconut"], real[0]
    run = run_graph(m, p)
    assert engine_of(m) == "coconut" and run.engine == "coconut" and len(run.trajectory) == 3
    assert run.hops == [1, 2, 3] and run.labels == ["thought 1", "thought 2", "thought 3"]
    # the first thought is the hidden state after the prompt and <bot>: its next-token distribution, per node
    ids = torch.tensor([G.encode(p).question + [m.tokenizer.convert_tokens_to_ids(G.BOT)]])
    with torch.no_grad():
        probs = m.hf(ids).logits[0, -1].float().softmax(-1).numpy()
    n = len(p["idx_to_symbol"])
    np.testing.assert_allclose(run.prob[0], probs[:n], rtol=1e-4, atol=1e-6)
    emb = m.hf.get_input_embeddings().weight[:n].detach().double().numpy()
    np.testing.assert_allclose(run.inner[1], run.trajectory.vectors()[1].astype(np.float64) @ emb.T, rtol=1e-4)
    walks, _ = hop_sets(p, 3)
    assert run.frontier(2) == sorted(walks[3]) and run.first_reach(0, threshold=2.0) is None
    assert run.correct == (run.answer == p["idx_to_symbol"][int(p["target"])])


def test_cot_steps_are_its_tokens_and_recurrent_steps_its_iterations(reasoners, real):
    from explorer.recurrent.evaluate import option_scores, reach_logits

    p = real[1]
    cot = run_graph(reasoners["cot"], p, steps=4)
    assert cot.engine == "cot" and 1 <= len(cot.trajectory) <= 4 and cot.hops == list(range(1, len(cot.trajectory) + 1))
    sym = p["idx_to_symbol"]
    for label, step in zip(cot.labels, cot.trajectory.steps):   # node tokens read as names
        assert label == (sym[int(step.label)] if step.label.strip().isdigit() and int(step.label) < len(sym)
                         else step.label.strip())
    nocot = run_graph(reasoners["no_cot"], p)
    assert set(nocot.hops) == {None} and nocot.frontier(0) == []

    rec = run_graph(reasoners["recurrent"], p, steps=3)
    assert rec.engine == "recurrent" and len(rec.trajectory) == 4 and rec.hops == [None, 1, 2, 3]
    want = reach_logits(reasoners["recurrent"], [p], (1, 3))
    n = len(sym)
    for r in (1, 3):
        np.testing.assert_allclose(rec.prob[r], want[r][0].softmax(-1).numpy()[:n], rtol=1e-3, atol=1e-6)
    # the answer is the option whose probability peaked higher over the iterations (`--readout peak`), which
    # on some of these problems is not the one scored higher after the last iteration
    some = real[:30]
    peak = option_scores(reasoners["recurrent"], some, (3,), "peak")[3]
    final = option_scores(reasoners["recurrent"], some, (3,), "final")[3]
    assert ((peak[:, 0] > peak[:, 1]) != (final[:, 0] > final[:, 1])).any()
    for q, (right, wrong) in zip(some, peak.tolist()):
        run = run_graph(reasoners["recurrent"], q, steps=3)
        assert run.correct == (right > wrong)
        assert run.answer == q["idx_to_symbol"][int(q["target"] if run.correct else q["neg_target"])]


def test_runs_check_their_own_shapes_and_engines(reasoners, real):
    run = run_graph(reasoners["coconut"], real[0])
    with pytest.raises(InputError, match=r"steps × nodes"):
        GraphRun(run.problem, run.engine, run.model, run.trajectory, run.prob[:, :-1], run.inner, run.hops, "", False)
    with pytest.raises(InputError, match="probabilities"):
        GraphRun(run.problem, run.engine, run.model, run.trajectory, run.prob * 3, run.inner, run.hops, "", False)
    with pytest.raises(InputError, match="engine must be"):
        run_graph(reasoners["coconut"], real[0], engine="beam")
    plain = Model(reasoners["cot"].hf, reasoners["cot"].tokenizer, name="plain")
    plain.hf.config.coconut, saved = None, plain.hf.config.coconut
    try:
        with pytest.raises(InputError, match="not a ProsQA reasoner"):
            engine_of(plain)
    finally:
        plain.hf.config.coconut = saved
    runs = compare(list(reasoners.values()), real[2])
    assert [r.engine for r in runs] == ["coconut", "cot", "no_cot", "recurrent"]
    found = disagreements(list(reasoners.values()), real, limit=6)
    assert found == [i for i in range(6) if len({r.correct for r in compare(list(reasoners.values()), real[i])}) > 1]


def test_sentences_round_trip_every_real_problem(real):
    for p in real:
        q = G.from_sentences(to_sentences(p), p["idx_to_symbol"])
        assert q["idx_to_symbol"] == p["idx_to_symbol"] and (q["target"], q["neg_target"]) == (p["target"], p["neg_target"])
        assert G.encode(q).question == G.encode(p).question


def test_edits_rebuild_a_valid_problem_and_bad_edits_name_the_fix():
    p = G.from_sentences(SMALL)
    assert p["idx_to_symbol"][p["target"]] == "animal"
    q = edit(p, swap_options=True)
    assert G.asked_options(q) == G.asked_options(p)[::-1] and q["target"] == p["target"]
    # cut the cat branch and join the bird branch to the plant: the other option becomes the answer
    r = edit(p, remove=[("cat", "mammal")], add=[("fish", "reptile")])
    assert r["idx_to_symbol"][r["target"]] == "plant" and r["idx_to_symbol"] == p["idx_to_symbol"]
    assert G.reasoning_path(r) == [p["idx_to_symbol"].index(s) for s in ("bird", "fish", "reptile", "plant")]
    assert cycle(len(r["idx_to_symbol"]), r["edges"]) is None
    with pytest.raises(InputError, match=r"cycle \(.*remove one of these statements"):
        edit(p, add=[("animal", "cat")])
    with pytest.raises(InputError, match="'dog' is not a node of this problem; its nodes are Tom, cat"):
        edit(p, add=[("dog", "cat")])
    with pytest.raises(InputError, match="no statement 'Every cat is a fish.' to remove"):
        edit(p, remove=[("cat", "fish")])
    with pytest.raises(InputError, match="exactly one option must be reachable"):
        edit(p, add=[("fish", "reptile")])
    with pytest.raises(InputError, match="appears in the question but in no statement"):
        edit(p, remove=[("reptile", "plant")])             # a dangling option
    with pytest.raises(InputError, match="two names"):
        edit(p, add=["cat"])
    with pytest.raises(InputError, match="the one asked about"):
        edit(p, options=("Tom", "plant"))


def test_graph_view_state_follows_the_step():
    from widgets import GraphView
    from widgets.demo import demo_graph_run
    from widgets.graph_view import layered_layout

    p = G.from_sentences(SMALL)
    run = demo_graph_run(p, "coconut", steps=3)
    v = GraphView(run)
    layout = v._graph
    sym = p["idx_to_symbol"]
    xs = {sym[i]: n["x"] for i, n in enumerate(layout["nodes"])}
    assert xs["Tom"] == 0 and xs["cat"] == xs["bird"] < xs["mammal"] < xs["animal"]
    ys = {sym[i]: n["y"] for i, n in enumerate(layout["nodes"])}
    assert xs["reptile"] < xs["plant"] and min(ys["reptile"], ys["plant"]) > max(ys[s] for s in ("Tom", "cat", "bird"))
    assert [sym[i] for i in layout["options"]] == ["animal", "plant"] and layout["path"][0] == p["root"]
    assert len(v._prob) == 4 * run.prob.size and v._steps["frontiers"][0] == run.frontier(0)
    m0, f0 = v.masses(), v.frontier()
    v.index = 1
    assert v.step == 1 and v.masses() != m0 and sorted(v.frontier()) == ["fish", "mammal"] != f0
    v.index = 99                                                 # a linked longer view: the last step shows
    assert v.step == 2 and v.masses()["animal"] == pytest.approx(run.prob[2][sym.index("animal")])
    v.measure = "inner"
    assert v.masses()["animal"] == pytest.approx(run.inner[2][sym.index("animal")])
    with pytest.raises(InputError, match="measure must be"):
        v.measure = "logit"
    with pytest.raises(InputError, match="outline takes"):
        v.outline = ["edges"]
    with pytest.raises(InputError, match="draws a GraphRun"):
        GraphView(run.trajectory)
    assert layered_layout(p) == layout


def test_graph_compare_steps_together_and_reruns_on_edits():
    from widgets import GraphCompare, ThoughtStepper, link_steps
    from widgets.demo import demo_graph_run

    calls = []

    def runner(models, problem):
        calls.append(problem)
        return [demo_graph_run(problem, e, steps=3, seed=i) for i, e in enumerate(models)]

    p = G.from_sentences(SMALL)
    c = GraphCompare(["coconut", "cot", "recurrent"], p, runner=runner)
    assert [v.run.engine for v in c.views] == ["coconut", "cot", "recurrent"] and c.slider.max == 3
    assert len(c.links) == 4 and all(l.target[1] == "index" for l in c.links[1:])
    assert c.answers() == [("coconut", "animal", True), ("cot", "animal", True), ("recurrent", "animal", True)]
    c.edit(remove=[("cat", "mammal")], add=[("fish", "reptile")])
    assert len(calls) == 2 and all(v.run.problem is c.problem for v in c.views)
    assert c.answers()[0][1] == "plant" and "Every fish is a reptile." in c.sentences.value
    before = c.problem
    c.sentences.value = SMALL.replace("Every mammal is an animal.", "Every mammal is an animal. Every animal is a cat.")
    c._from_text()                                                # a cycle: the message says so, the problem stays
    assert "cycle" in c.message.value and c.problem is before
    c.sentences.value = SMALL
    c._from_text()
    assert c.message.value == "" and c.answers()[0][1] == "animal"
    stepper = ThoughtStepper(c.runs[0].trajectory)
    links = link_steps(stepper, c.views[0])
    assert len(links) == 1 and links[0].source == (stepper, "index")
    with pytest.raises(InputError, match="two or more widgets"):
        link_steps(stepper)
    with pytest.raises(InputError, match="at least one model"):
        GraphCompare([], p)


def test_the_frontier_table_of_any_reasoner(reasoners, real):
    """graph_table: a Coconut model's table is the thoughts' own frontier table; a recurrent model's has one
    column per core iteration, whose frontier is the nodes exactly r hops from the root."""
    from explorer.graph_runs import graph_table
    from explorer.plots import frontier_figure
    from explorer.thoughts.frontier import frontier_table

    some = real[:8]
    ours, theirs = graph_table(reasoners["coconut"], some), frontier_table(reasoners["coconut"], some)
    assert ours["step"] == "thought" and ours["by_hops"].keys() == theirs["by_hops"].keys()
    for h, row in ours["by_hops"].items():
        for reading in ("prob", "inner"):
            for g in ours["groups"]:
                assert row[reading][g] == pytest.approx(theirs["by_hops"][h][reading][g], rel=1e-4, abs=1e-6)
        assert row["right_option"] == theirs["by_hops"][h]["right_option"] and row["answer"] == theirs["by_hops"][h]["answer"]
    rec = graph_table(reasoners["recurrent"], some, steps=3)
    assert rec["step"] == "iteration" and rec["start"] == 1 and rec["n"] == 8
    h = max(rec["by_hops"], key=lambda k: rec["by_hops"][k]["n"])
    mine = [p for p in some if len(p["steps"]) == h]
    runs = [run_graph(reasoners["recurrent"], p, steps=3) for p in mine]
    for r in (1, 2, 3):   # iteration r's frontier: the nodes at the end of a walk of exactly r edges
        want = np.mean([run.prob[r][sorted(hop_sets(p, r)[0][r] - {int(p["root"])})].sum() for run, p in zip(runs, mine)])
        assert rec["by_hops"][h]["prob"]["frontier"][r - 1] == pytest.approx(want, rel=1e-6)
    assert rec["by_hops"][h]["answer"] == pytest.approx(np.mean([run.correct for run in runs]))
    fig = frontier_figure(rec)
    assert fig.data[0].x[0] == "iteration.1" and "each iteration" in fig.layout.title.text
    with pytest.raises(InputError, match="non-empty"):
        graph_table(reasoners["recurrent"], [])
