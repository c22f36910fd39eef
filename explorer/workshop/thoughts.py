"""Exercises of ``notebooks/02_continuous_thoughts.ipynb``, checked against the model's own thoughts."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import Exercise, ExerciseSet, Feedback, feedback

PROMPT = "Q: Tom has 3 apples and buys 2 more. How many apples does he have?\nA:"
N_THOUGHTS = 4
MODES = ("coconut", "soft", "cot")
#: the real ProsQA validation problem of the notebook's graph section (4 hops; prosqa-coconut answers it right,
#: prosqa-cot does not)
PROSQA_PROBLEM = 27
REACHED = 0.1   # "reaches" a node: gives it at least this much of the next-token probability


def exercises(model: Any, reasoner: Any = "prosqa-coconut") -> ExerciseSet:
    """The four exercises: three for ``model`` (its thoughts on :data:`PROMPT` are computed when
    first checked) and one for ``reasoner``, a graph-token Coconut model (a name or a loaded model),
    on real ProsQA problem :data:`PROSQA_PROBLEM`."""
    cache: dict[str, Any] = {}

    def runs() -> dict[str, Any]:
        if not cache:
            cache.update({m: model.think(PROMPT, n_thoughts=N_THOUGHTS, mode=m, max_new_tokens=1) for m in MODES})
        return cache

    def same_thought(answer: Any) -> Feedback:
        r = runs()
        same = [s.name for i, s in enumerate(r["coconut"].trajectory)
                if all(np.allclose(r[m].trajectory[i].vector, s.vector, atol=1e-4) for m in MODES)]
        got = str(answer).strip()
        got = f"thought.{got}" if got.isdigit() else got
        return feedback("same_thought", [got] == same,
                        f"Right: {', '.join(same)} is computed from the prompt alone, before anything is fed back; "
                        "the modes differ only in what they feed back, so they part from the next thought on.",
                        f"Not {got!r}. Compare the vectors of the three runs step by step, e.g. "
                        "np.allclose(runs['soft'].trajectory[i].vector, runs['coconut'].trajectory[i].vector).")

    def norm_ratio(answer: Any) -> Feedback:
        fed = float(runs()["coconut"].trajectory[0].scalars["fed_norm"])
        typical = float(np.median(np.linalg.norm(model.input_embeddings(), axis=1)))
        expected = fed / typical
        try:
            got = float(answer)
        except (TypeError, ValueError):
            return Feedback("norm_ratio", False, "answer with a number (how many times longer).")
        return feedback("norm_ratio", abs(got - expected) <= 0.15 * expected,
                        f"Yes, about {expected:.0f}×: the last hidden state ({fed:.1f}) is far longer than any token's "
                        f"input embedding (median {typical:.2f}). Fed back as an input it is unlike anything the model "
                        "saw in training — one reason an untrained model's Coconut thoughts wander. Coconut training "
                        "teaches the model to use such inputs; Soft Thinking avoids them by feeding a mixture of "
                        "real embeddings.",
                        f"Not {got:g}. Divide the first coconut thought's scalars['fed_norm'] by the median row norm of "
                        "model.input_embeddings().")

    def soft_top(answer: Any) -> Feedback:
        step = runs()["soft"].trajectory[1]
        top = step.probes["output"].top
        return feedback("soft_top", str(answer) == top or str(answer).strip() == top.strip() != "",
                        f"{top!r} carries the most weight ({step.probes['output'].scores[0]:.2f}) in the mixture fed "
                        "back after thought.1: the soft input is the next-token distribution, top-k/top-p filtered, "
                        "times the embedding rows.",
                        f"Not {answer!r}. The mixture's weights are the step's next-token probabilities: read "
                        "soft.trajectory[1].probes['output'].")

    def right_option_thought(answer: Any) -> Feedback:
        if "graph" not in cache:
            from ..graph_runs import run_graph
            from ..loading import load_model
            from ..tasks.prosqa import VALIDATION, load

            trained = load_model(reasoner) if isinstance(reasoner, str) else reasoner
            cache["graph"] = run_graph(trained, load(VALIDATION)[PROSQA_PROBLEM])
        run = cache["graph"]
        target = int(run.problem["target"])
        k = run.first_reach(target, threshold=REACHED)
        expected = None if k is None else k + 1   # the views number thoughts from 1
        text = str(answer).strip().lower().removeprefix("thought").strip()
        got: Any = None if text in ("none", "never") else text
        try:   # 4, "4", "thought 4" and 4.0 all name thought 4
            got = int(float(text)) if float(text).is_integer() else text
        except ValueError:
            pass
        name, hops = run.names[target], len(run.problem.get("steps", []))
        if got is not None and not isinstance(got, int):
            return Feedback("right_option_thought", False, f"answer with a thought's number (e.g. 2), or 'never'; "
                                                           f"got {answer!r}.")
        where = (f"thought {expected} gives it {run.prob[k, target]:.2f}" if k is not None
                 else f"no thought gives it {REACHED:.0%}")
        return feedback("right_option_thought", got == expected,
                        f"Right: {where}. The path from the person to {name} is {hops} hops long, and thought k holds "
                        f"the nodes k hops out (ringed): the answer is read off once the mass reaches an option.",
                        f"Not {answer!r}. Step through the Coconut graph and hover the boxed right option ({name}); or "
                        f"print run.prob[:, {target}] — the probability each thought gives it.")

    return ExerciseSet("02 · continuous thoughts", [
        Exercise("same_thought", "Which thought is the same in all three modes?", same_thought),
        Exercise("norm_ratio", "How many times longer than a typical input embedding is the first vector Coconut "
                               "feeds back?", norm_ratio),
        Exercise("soft_top", "In soft mode, which token carries the most weight in the mixture fed back after thought.1?",
                 soft_top),
        Exercise("right_option_thought", f"On the ProsQA problem, at which thought does the trained Coconut model first "
                                         f"give the right option at least {REACHED:.0%} of its next-token probability?",
                 right_option_thought),
    ])
