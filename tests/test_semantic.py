"""Semantic decoding: thoughts, processors, the search tree, the algorithms, ProsQA with the Base-LCM
and the fact checker, the open-ended mode's processors on SmolLM2, and the ThoughtTree widget's state."""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pytest

from explorer.errors import InputError
from explorer.semantic import Context, Processor, SearchTree, Thought
from explorer.semantic.processors import FactChecker, LCMProposer, Person, RandomProposer
from explorer.semantic.search import best_of_n, beam, greedy, run, tot_bfs
from explorer.tasks.prosqa import VALIDATION, load
from explorer.tasks.prosqa.graph_tokens import from_sentences

SMALL = ("Tom is a cat. Tom is a bird. Every cat is a mammal. Every bird is a fish. Every mammal is an animal. "
         "Every reptile is a plant. Is Tom an animal or plant?")


class Scripted:
    """Proposes facts in a fixed preference order (prior falling with rank), skipping those on the path."""

    name = "scripted"

    def __init__(self, order: Sequence[str]) -> None:
        self.order = list(order)

    def process(self, path, context, n=1):
        used = {t.text for t in path}
        out = [s for s in self.order if s not in used][:n]
        return [Thought(s, np.ones(4, np.float32) * i, self.name, cost=1.0, meta={"prior": 1.0 - 0.1 * i})
                for i, s in enumerate(out)]


@pytest.fixture(scope="module")
def small():
    from explorer.semantic.prosqa import context_of

    p = from_sentences(SMALL.replace(" an ", " a "))
    return p, context_of(p)


@pytest.fixture(scope="module")
def real():
    return load(VALIDATION)


@pytest.fixture(scope="module")
def lcm_proposer():
    return LCMProposer()


def test_the_tree_logs_calls_events_and_paths():
    t = SearchTree(Thought("q"))
    a = t.add(Thought("a", np.zeros(3, np.float32)), 0)
    b = t.add(Thought("b", np.ones(3, np.float32)), a)
    t.set_value(b, 0.5)
    t.prune(a)
    t.choose(b)
    assert [x.text for x in t.path(b)] == ["q", "a", "b"] and t.depth(b) == 2 and t.chosen == [0, a, b]
    assert [e[0] for e in t.events] == ["root", "propose", "propose", "value", "prune", "choose"]
    d = t.to_dict()
    assert json.loads(json.dumps(d))["nodes"][2]["value"] == 0.5 and d["pruned"] == [a]
    tr = t.trajectory()
    assert len(tr) == 2 and tr.labels == ["a", "b"]          # the root has no vector
    with pytest.raises(InputError, match="no node 9"):
        t.add(Thought("x"), 9)
    assert isinstance(Scripted([]), Processor) and isinstance(FactChecker(), Processor)


def test_the_fact_checker_vets_the_link_each_step_asserts(small):
    from explorer.semantic.prosqa import claim

    p, ctx = small
    fc = FactChecker(claim)
    root = Thought(ctx.question)
    ok = fc.process([root, Thought("Tom is a cat.")], ctx)[0]
    assert ok.value == 1.0 and ok.meta["claim"] == "Tom is a cat."
    # "Every bird is a fish." is a fact, but it does not follow "Tom is a cat.": the chain would assert
    # "Every cat is a fish.", which is not among the facts
    no = fc.process([root, Thought("Tom is a cat."), Thought("Every bird is a fish.")], ctx)[0]
    assert no.value == 0.0 and no.meta["claim"] == "Every cat is a fish."
    with pytest.raises(InputError, match="last thought"):
        fc.process([root], ctx)


def test_algorithms_on_a_scripted_proposer(small):
    from explorer.semantic.prosqa import claim, goal

    p, ctx = small
    fc = [FactChecker(claim)]
    # the proposer prefers a dead end (the bird branch) first
    prop = Scripted(["Tom is a bird.", "Every bird is a fish.", "Tom is a cat.", "Every cat is a mammal.",
                     "Every mammal is a animal.", "Every reptile is a plant."])
    root = Thought(ctx.question)
    g = greedy(root, ctx, prop, goal=goal, valuers=fc, k=1)
    assert [t.text for t in g.path(g.chosen[-1])][1:] == ["Tom is a bird.", "Every bird is a fish."]   # stuck
    g3 = greedy(root, ctx, prop, goal=goal, valuers=fc, k=6)
    assert g3.path(g3.chosen[-1])[-1].text == "Every bird is a fish."    # greedy never backs up
    b = beam(root, ctx, prop, goal=goal, valuers=fc, width=2, k=6)
    chain = [t.text for t in b.path(b.chosen[-1])][1:]
    assert chain == ["Tom is a cat.", "Every cat is a mammal.", "Every mammal is a animal."]
    assert b.calls["scripted"] == 5 and b.calls["fact-checker"] == sum(1 for e in b.events if e[0] == "value")
    tb = tot_bfs(root, ctx, prop, goal=goal, valuers=fc, breadth=1, k=6)
    assert len(tb.chosen) == 3 and tb.pruned       # breadth 1 keeps the bird branch and dies with it
    bn = best_of_n(root, ctx, prop, goal=goal, valuers=fc, n=6, k=2, seed=3)
    assert bn.calls["scripted"] <= 6 * 8 and len(bn.chosen) >= 2
    assert run("best_of_n", root, ctx, prop, goal=goal, valuers=fc, width=6, k=2, seed=3).to_dict() == bn.to_dict()
    with pytest.raises(InputError, match="algorithm must be"):
        run("dfs", root, ctx, prop, goal=goal)
    with pytest.raises(InputError, match="width"):
        beam(root, ctx, prop, goal=goal, width=0)


def test_prosqa_search_with_the_lcm_and_the_tool(real, lcm_proposer):
    """The Base-LCM's own greedy chain is today's baseline; beam search with the fact checker finds
    valid chains (paths of the graph from the root to the target) and the right answers."""
    from explorer.concepts.lcm import load_lcm
    from explorer.semantic.prosqa import evaluate, solve
    from explorer.tasks.prosqa.prompts import valid_chain

    lcm = load_lcm()
    items = real[:12]
    for p in items[:6]:     # greedy with one proposal and no tool is the LCM's reason()
        s = solve(p, "greedy", 1, proposer=lcm_proposer, tool=False)
        traj = lcm.reason(p)
        assert s.chain == traj.meta["chain"] and s.answer == traj.meta["answer"]
    wide = evaluate(items, "beam", 12, proposer=lcm_proposer)
    base = evaluate(items, "greedy", 1, proposer=lcm_proposer, tool=False)
    assert wide["accuracy"] >= 0.9 and wide["valid_chain_accuracy"] > base["valid_chain_accuracy"]
    assert wide["mean_calls"] > base["mean_calls"] and set(wide["calls"]) == {"lcm", "fact-checker"}
    s = solve(items[0], "beam", 12, proposer=lcm_proposer)
    if s.chain and s.valid_chain:
        assert valid_chain(items[0], s.chain) and s.correct
    rnd = evaluate(items, "beam", 3, proposer=RandomProposer(seed=1))
    assert rnd["proposer"] == "random" and rnd["valid_chain_accuracy"] <= wide["valid_chain_accuracy"]


def test_the_semantic_eval_command(capsys):
    from explorer.cli import main

    assert main(["semantic", "eval", "--algorithm", "tot_bfs", "--width", "2", "--limit", "3"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["n"] == 3 and row["algorithm"] == "tot_bfs" and 0 <= row["accuracy"] <= 1 and row["mean_calls"] > 0
    with pytest.raises(SystemExit):
        main(["semantic", "eval", "--algorithm", "dfs"])


def test_the_default_lm_proposes_and_judges(smol):
    from explorer.semantic.open import explore
    from explorer.semantic.processors import LMJudge, LMProposer

    ctx = Context("Why is the sky blue?")
    prop = LMProposer(smol, max_new_tokens=12)
    out = prop.process([Thought(ctx.question)], ctx, 3)
    assert 1 <= len(out) <= 3 and all(t.vector.shape == (384,) and t.text for t in out)
    assert len({t.text for t in out}) == len(out)
    v = LMJudge(smol).process([Thought(ctx.question), out[0]], ctx)[0].value
    assert 0.0 <= v <= 1.0
    tree = explore("Why is the sky blue?", "beam", 1, k=2, depth=2, model=smol, proposer=prop)
    assert tree.calls["lm"] == 2 and tree.calls["lm-judge"] >= 2 and len(tree.chosen) == 3


def test_a_person_is_a_processor():
    from explorer.semantic.prosqa import claim

    person = Person()
    person.say("Tom is a cat.")
    ctx = Context("Is Tom a mammal or fish?", ["Tom is a cat."], {"root": "Tom"})
    (t,) = person.process([Thought(ctx.question)], ctx)
    assert t.text == "Tom is a cat." and t.source == "person" and t.vector.shape == (384,)
    person.judge(0.0)
    assert person.process([Thought(ctx.question), t], ctx)[0].value == 0.0
    with pytest.raises(InputError, match="non-empty"):
        person.say("  ")
    assert FactChecker(claim).process([Thought(ctx.question), t], ctx)[0].value == 1.0


def test_thought_tree_widget_steers_the_search(small, real, lcm_proposer):
    from explorer.semantic.prosqa import claim, context_of, solve
    from widgets import LatentMap, ThoughtTree

    p = real[0]
    s = solve(p, "beam", 3, proposer=lcm_proposer)
    m = LatentMap(np.random.default_rng(0).normal(size=(200, 384)).astype(np.float32), method="pca")
    t = ThoughtTree(s.tree, context=context_of(p), proposer=lcm_proposer, valuers=[FactChecker(claim)], map=m)
    n0, ev0 = len(t._tree["nodes"]), len(t._tree["events"])
    assert t._tree["chosen"] == s.tree.chosen and t._tree["can_expand"]
    new = t.expand(s.tree.chosen[1])
    assert len(t._tree["nodes"]) == n0 + len(new) and len(t._tree["events"]) > ev0
    t.prune(new[0])
    assert new[0] in t._tree["pruned"]
    w = t.write(0, "Tom is a fish.")                 # not a fact: the checker says no and prunes it
    assert w in t._tree["pruned"] and t._tree["nodes"][w]["source"] == "person"
    t.accept(new[1])
    assert t._tree["chosen"][-1] == new[1]
    t._on_msg(None, {"action": "prune", "node": 0}, [])   # the root: a typed error goes back to the browser
    with pytest.raises(InputError, match="no thought 999"):
        t.expand(999)
    with pytest.raises(InputError, match="draws a SearchTree"):
        ThoughtTree(s)
    assert "thoughts" in [tr.name for tr in m.figure.data]
