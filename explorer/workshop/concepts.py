"""Exercises of ``notebooks/04_concept_space.ipynb``, checked against the concept space and the Base-LCM."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ExplorerError
from . import Exercise, ExerciseSet, Feedback, feedback

PARIS = "Paris is the capital of France."
TOKYO = "Tokyo is the capital of Japan."
WHALES = "Whales are mammals that live in the sea."
PENGUINS = "Penguins are birds that cannot fly."
PATH_STEPS = 9
LCM_PROBLEMS = 20


def _step_index(answer: Any) -> int | None:
    text = str(answer).strip()
    text = text.split(".", 1)[1] if text.startswith("concept.") else text
    return int(text) if text.lstrip("-").isdigit() else None


def exercises(space: Any, lcm: Any = None, problems: Sequence[dict[str, Any]] | None = None) -> ExerciseSet:
    """The four exercises: ``space`` is a :class:`~explorer.concepts.ConceptSpace` over the
    ``facts`` bank with the shipped decoder; ``lcm`` the Base-LCM and ``problems`` the ProsQA
    validation problems (both loaded when first needed if not given)."""
    cache: dict[str, Any] = {}

    def arithmetic(answer: Any) -> Feedback:
        expr = str(answer)
        try:
            res = space.evaluate(expr, k=3)
        except ExplorerError as e:
            return Feedback("arithmetic", False, f"the expression did not evaluate: {e}")
        ok = res.table.top == TOKYO
        return feedback("arithmetic", ok,
                        f"{expr} → {res.table.top!r} (cosine {res.table.scores[0]:.2f}): you moved a whole sentence "
                        "by the difference of two words.",
                        f"{expr} → {res.table.top!r}. Start from the Paris sentence, take away what should go "
                        "and add what should come: '\"Paris is the capital of France.\" - \"France\" + ...'.")

    def lerp_norm(answer: Any) -> Feedback:
        a, b = space.encode(WHALES), space.encode(PENGUINS)
        expected = float(np.linalg.norm((a + b) / 2))
        try:
            got = float(answer)
        except (TypeError, ValueError):
            return Feedback("lerp_norm", False, "answer with a number (the norm of the lerp midpoint).")
        return feedback("lerp_norm", abs(got - expected) < 0.01,
                        f"Yes, {expected:.3f}: the straight line between two unit vectors cuts inside the sphere, "
                        "so its midpoint is shorter than any sentence vector (all have norm 1). slerp stays on it.",
                        f"Not {got:g}. Build the path with method='lerp' and read the 'norm' scalar of its middle "
                        "step (path.scalar('norm')), or compute it: np.linalg.norm((a + b) / 2).")

    def switch_step(answer: Any) -> Feedback:
        path = space.interpolate(WHALES, PENGUINS, n=PATH_STEPS)
        first = next((i for i, st in enumerate(path) if st.meta.get("decoded") != WHALES), None)
        got = _step_index(answer)
        if got is None:
            return Feedback("switch_step", False, "answer with a step name like 'concept.3' or its number.")
        expected = f"concept.{first}"
        decoded = path[first].meta.get("decoded") if first is not None else None
        return feedback("switch_step", got == first,
                        f"Right: at {expected} the decoder already says {decoded!r}. It jumps from one "
                        "sentence it knows to the other instead of blending them: the space between two "
                        "concepts is not filled with meaningful sentences.",
                        f"Not step {got}. List [(s.name, s.meta['decoded']) for s in path] and find the first "
                        "step whose decoded text is no longer the whale sentence.")

    def lcm_wrong(answer: Any) -> Feedback:
        try:
            i = int(answer)
        except (TypeError, ValueError):
            return Feedback("lcm_wrong", False, f"answer with a problem index between 0 and {LCM_PROBLEMS - 1}.")
        if not 0 <= i < LCM_PROBLEMS:
            return Feedback("lcm_wrong", False, f"pick an index between 0 and {LCM_PROBLEMS - 1}.")
        if "lcm" not in cache:
            from ..concepts import load_lcm
            from ..tasks.prosqa import VALIDATION, load

            cache["lcm"] = lcm if lcm is not None else load_lcm()
            cache["problems"] = list(problems) if problems is not None else load(VALIDATION)
        prob = cache["problems"][i]
        run = cache["lcm"].reason(prob)
        wrong = run.meta["answer"] != prob["answer"]
        gold = set(prob["steps"])
        off = next((s for s in run.meta["chain"] if s not in gold), None)
        where = (f"its chain leaves the reference path at {off!r}" if off else "its chain never reaches an option")
        return feedback("lcm_wrong", wrong,
                        f"Yes: on problem {i} the LCM answers {run.meta['answer']!r} (right: {prob['answer']!r}); "
                        f"{where}. One wrong next concept and the rest of the chain follows it.",
                        f"On problem {i} the LCM is right ({prob['answer']!r}). Run lcm.reason(problems[i]) for "
                        "other indices and compare run.meta['answer'] with problems[i]['answer'].")

    return ExerciseSet("04 · concept space", [
        Exercise("arithmetic", f"Write a sentence expression whose nearest bank sentence is {TOKYO!r}.", arithmetic),
        Exercise("lerp_norm", "What is the norm of the midpoint of the straight (lerp) path from the whale sentence "
                              "to the penguin sentence?", lerp_norm),
        Exercise("switch_step", f"On the {PATH_STEPS}-step slerp path from whales to penguins, at which step does the "
                                "decoded text first stop being the whale sentence?", switch_step),
        Exercise("lcm_wrong", f"Find a problem among the first {LCM_PROBLEMS} of the validation set that the Base-LCM "
                              "gets wrong.", lcm_wrong),
    ])
