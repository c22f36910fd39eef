"""The workshop's answer checker: right answers pass, wrong ones say where to look, nothing raises."""
from __future__ import annotations

import pytest

from explorer import InputError
from explorer.workshop import Feedback
from explorer.workshop.lenses import PROMPT, exercises


@pytest.fixture(scope="module")
def ex(smol):
    return exercises(smol)


def test_right_answers_pass(ex, smol):
    lens = smol.logit_lens(smol.trace(PROMPT), k=5, target=" Paris")
    first = lens.first_point(" Paris")
    assert first is not None and first != "embed"
    assert ex.check("first_paris", first).correct
    assert ex.check("first_paris", int(first.split(".")[1])).correct  # a bare layer number is accepted
    assert ex.check("which_norm", "final").correct
    rank = int(lens.target_rank[lens.points.index("layer.15"), -1])
    assert ex.check("rank_at_half", rank).correct and ex.check("rank_at_half", str(rank)).correct
    assert ex.check("analogy", '" king" - " man" + " woman"').correct


def test_wrong_answers_explain(ex):
    fb = ex.check("first_paris", "embed")
    assert isinstance(fb, Feedback) and not fb and "lens" in fb.message
    assert not ex.check("which_norm", "layer.29")
    assert "whole number" in ex.check("rank_at_half", "high").message
    fb = ex.check("analogy", "king - man + woman")  # bare words lose their leading space here
    assert not fb and "leading space" in fb.message
    assert "did not evaluate" in ex.check("analogy", "king -").message
    fb = ex.check("which_norm", None)
    assert not fb and "no answer yet" in fb.message
    assert "✗ not yet" in fb._repr_html_()


def test_unknown_exercise_names_the_choices(ex):
    with pytest.raises(InputError, match="first_paris"):
        ex.check("no_such", 1)


# -- 04 · concept space -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def concept_ex():
    from explorer.concepts import ConceptSpace, load_autoencoder, load_lcm
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.workshop.concepts import exercises as concept_exercises

    space = ConceptSpace("facts", decoder=load_autoencoder())
    return concept_exercises(space, load_lcm(), load(VALIDATION)[:20]), space


def test_concept_exercises_right_and_wrong(concept_ex):
    import numpy as np

    from explorer.workshop.concepts import PENGUINS, WHALES

    ex, space = concept_ex
    assert ex.check("arithmetic", '"Paris is the capital of France." - "France" + "Japan"').correct
    fb = ex.check("arithmetic", '"Paris is the capital of France." - "France" + "Italy"')
    assert not fb and "Rome" in fb.message
    assert "did not evaluate" in ex.check("arithmetic", '"Paris" -').message
    mid = float(np.linalg.norm((space.encode(WHALES) + space.encode(PENGUINS)) / 2))
    assert 0.5 < mid < 0.99  # the straight path cuts inside the unit sphere
    assert ex.check("lerp_norm", round(mid, 3)).correct and not ex.check("lerp_norm", 1.0)
    path = space.interpolate(WHALES, PENGUINS, n=9)
    first = next(i for i, s in enumerate(path) if s.meta["decoded"] != WHALES)
    assert 0 < first < 9
    assert ex.check("switch_step", f"concept.{first}").correct and ex.check("switch_step", first).correct
    assert not ex.check("switch_step", first - 1) and "step name" in ex.check("switch_step", "x").message


def test_concept_exercise_finds_the_lcms_mistakes(concept_ex):
    from explorer.concepts import load_lcm
    from explorer.tasks.prosqa import VALIDATION, load

    ex, _ = concept_ex
    lcm, probs = load_lcm(), load(VALIDATION)[:20]
    verdict = [lcm.reason(p).meta["answer"] == p["answer"] for p in probs]
    assert any(verdict) and not all(verdict)
    wrong, right = verdict.index(False), verdict.index(True)
    fb = ex.check("lcm_wrong", wrong)
    assert fb and "chain" in fb.message
    assert not ex.check("lcm_wrong", right) and "between 0 and 19" in ex.check("lcm_wrong", 25).message


# -- 02 · continuous thoughts -------------------------------------------------------------------
def test_thought_exercises_right_and_wrong(smol):
    import numpy as np

    from explorer.workshop.thoughts import PROMPT, exercises as thought_exercises

    ex = thought_exercises(smol)
    assert ex.check("same_thought", "thought.0").correct and ex.check("same_thought", 0).correct
    fb = ex.check("same_thought", "thought.2")
    assert not fb and "np.allclose" in fb.message
    coconut = smol.think(PROMPT, n_thoughts=1, mode="coconut", max_new_tokens=1).trajectory[0]
    ratio = coconut.scalars["fed_norm"] / float(np.median(np.linalg.norm(smol.input_embeddings(), axis=1)))
    assert ratio > 5  # the last hidden state is far longer than any token embedding
    assert ex.check("norm_ratio", ratio * 1.05).correct and not ex.check("norm_ratio", 1.0)
    soft = smol.think(PROMPT, n_thoughts=2, mode="soft", max_new_tokens=1).trajectory[1]
    top = soft.probes["output"].top
    assert ex.check("soft_top", top).correct
    assert not ex.check("soft_top", soft.probes["output"].tokens[1]) and "probes['output']" in ex.check("soft_top", "zz").message


def test_the_graph_exercise_reads_the_trained_coconut_models_thoughts():
    """Exercise 4 of workshop 02 on the shipped prosqa-coconut (the facilitator's answer: thought 4) and on an
    untrained graph-token model, whose thoughts never reach the right option."""
    from explorer.model import Model
    from explorer.tasks.prosqa import graph_tokens as G
    from explorer.thoughts.train import add_thought_tokens, build_base_model
    from explorer.workshop.thoughts import exercises as thought_exercises

    ex = thought_exercises(None)   # the SmolLM2 exercises are not asked here
    fb = ex.check("right_option_thought", 4)
    assert fb and "4 hops" in fb.message and ex.check("right_option_thought", "thought 4")
    assert ex.check("right_option_thought", 4.0) and "thought's number" in ex.check("right_option_thought", 4.5).message
    assert not ex.check("right_option_thought", 3) and not ex.check("right_option_thought", "never")
    assert "run.prob[:," in ex.check("right_option_thought", 2).message
    assert "thought's number" in ex.check("right_option_thought", "soon").message
    tok = G.build_graph_tokenizer()
    hf = build_base_model(tok, n_layer=1, n_embd=16, n_head=2, arch="llama", seed=1).eval()
    add_thought_tokens(hf, tok)
    hf.config.coconut = {"method": "coconut", "n_thoughts": 3, "encoding": "graph", "markers": False}
    untrained = thought_exercises(None, reasoner=Model(hf, tok, name="untrained"))
    assert untrained.check("right_option_thought", "never") and not untrained.check("right_option_thought", 4)


# -- 03 · recurrent depth ------------------------------------------------------------------------
def test_recurrent_exercises_right_and_wrong():
    """Checked against what the model does: a tiny random recurrent model of the reach task, on real problems."""
    from explorer.recurrent import RecurrentModel, build_model, tiny_config
    from explorer.recurrent.evaluate import distance_mass, evaluate_iterations
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.tasks.prosqa.compact import compact_prompt
    from explorer.tasks.prosqa.tokenizer import build_tokenizer
    from explorer.workshop.recurrent import MAX_ITERS, N_EVAL, N_MASS, exercises as recurrent_exercises

    tok = build_tokenizer()
    model = RecurrentModel(build_model(tiny_config(vocab_size=len(tok), prosqa_task="reach"), seed=3).eval(), tok)
    problems = load(VALIDATION)[:N_EVAL]
    ex = recurrent_exercises(model, problems)
    stops = model.iterate(compact_prompt(problems[0]), max_iters=32, exit="kl").iterations[-1]
    assert ex.check("exit_iteration", stops) and ex.check("exit_iteration", str(stops))
    assert not ex.check("exit_iteration", stops + 1) and "whole number" in ex.check("exit_iteration", "soon").message
    acc = evaluate_iterations(model, problems, iterations=(1, MAX_ITERS), exit=None)["accuracy"]
    rises = acc[MAX_ITERS] > acc[1] + 0.02
    fb = ex.check("iterations_help", rises)
    assert fb and f"{acc[1]:.2f}" in fb.message
    assert not ex.check("iterations_help", not rises) and "True or False" in ex.check("iterations_help", "yes").message
    m = distance_mass(model, problems[:N_MASS], MAX_ITERS)["mass"]
    share = m["unreachable"][-1] / sum(v[-1] for v in m.values())
    assert ex.check("unreachable_mass", share) and ex.check("unreachable_mass", round(share + 0.04, 3))
    assert not ex.check("unreachable_mass", share + 0.2) and not ex.check("unreachable_mass", "half")


def test_the_facilitators_answers_for_03_hold_on_the_shipped_model():
    """docs/workshop.md's answers to workshop 03, checked by the helper on the shipped prosqa-recurrent."""
    import explorer
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.workshop.recurrent import exercises as recurrent_exercises

    ex = recurrent_exercises(explorer.load_model("prosqa-recurrent"), load(VALIDATION))
    assert ex.check("exit_iteration", 5)
    assert ex.check("unreachable_mass", 0.11)
    assert ex.check("iterations_help", False)
    assert ex.check("two_hop_iterations", 2)
    assert not ex.check("two_hop_iterations", 1) and not ex.check("two_hop_iterations", "two")


def test_patch_exercises_right_and_wrong():
    """Workshop 05's checker on a tiny random byte model: the answers it computes pass, others explain."""
    import numpy as np

    from explorer.model import Model
    from explorer.models.build import build_base_model
    from explorer.patches.entropy import byte_entropies
    from explorer.patches.patching import calibrate, starts
    from explorer.patches.tokenizer import build_byte_tokenizer
    from explorer.workshop.patches import REPEATED, TEXT, exercises, word_starts

    class Words:
        def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
            import re
            return {"offset_mapping": [m.span() for m in re.finditer(r"\S+\s*", text)]}

    tok = build_byte_tokenizer()
    m = Model(build_base_model(tok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=2, arch="llama"), tok)
    ex = exercises(m, tokenizer=Words())
    r = byte_entropies(m, TEXT)
    th = calibrate(r.entropy, 4.5, "global")
    assert ex.check("threshold_for_target", th).correct and ex.check("threshold_for_target", str(th)).correct
    fb = ex.check("threshold_for_target", float(r.entropy.max()) + 1)
    assert not fb and "Lower θ" in fb.message
    assert "nats" in ex.check("threshold_for_target", "high").message
    ws = word_starts(r.data)
    inside = np.array([b not in b" \n" for b in r.data]) & ~ws
    truth = bool(r.entropy[ws].mean() > r.entropy[inside].mean())
    assert ex.check("word_start_entropy", truth).correct and not ex.check("word_start_entropy", not truth)
    rep = byte_entropies(m, REPEATED)
    last = len(REPEATED) // 6 * 5
    c = {rule: int(starts(rep.entropy, calibrate(r.entropy, 4.5, rule), rule)[last:].sum())
         for rule in ("global", "monotonic")}
    if c["global"] != c["monotonic"]:
        want = min(c, key=c.get)
        assert ex.check("fewer_in_repeats", want).correct
        assert not ex.check("fewer_in_repeats", "monotonic" if want == "global" else "global")
    n_p = int(starts(r.entropy, th, "global").sum())
    want = "patches" if n_p > len(TEXT.split()) else "tokens"
    assert ex.check("patches_or_tokens", want).correct and not ex.check("patches_or_tokens", "neither")


def test_semantic_exercises_right_and_wrong():
    from explorer.semantic.prosqa import evaluate, solve
    from explorer.semantic.processors import LCMProposer, RandomProposer
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.workshop.semantic import N_TOOL, WIDTHS, exercises

    problems, prop = load(VALIDATION)[:N_TOOL], LCMProposer()
    ex = exercises(problems, prop)
    want = next((w for w in WIDTHS if (lambda s: s.correct and s.valid_chain)(solve(problems[1], "beam", w, proposer=prop))),
                WIDTHS[-1])
    assert ex.check("width_solves", want).correct and not ex.check("width_solves", 99)
    gain = round(evaluate(problems, "beam", 3, proposer=prop)["accuracy"] * N_TOOL) - \
        round(evaluate(problems, "beam", 3, proposer=prop, tool=False)["accuracy"] * N_TOOL)
    assert ex.check("tool_gain", gain).correct and "subtract" in ex.check("tool_gain", gain + 1).message
    lv = evaluate(problems, "beam", 3, proposer=prop)["valid_chain_accuracy"]
    rv = evaluate(problems, "beam", 3, proposer=RandomProposer(seed=0))["valid_chain_accuracy"]
    assert ex.check("guidance_matters", lv > rv).correct and not ex.check("guidance_matters", not (lv > rv))
    assert "True or False" in ex.check("guidance_matters", "yes").message
