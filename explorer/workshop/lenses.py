"""Exercises of ``notebooks/01_hidden_states_and_lenses.ipynb``, checked against the model."""
from __future__ import annotations

from typing import Any

from ..errors import ExplorerError
from . import Exercise, ExerciseSet, Feedback, feedback

PROMPT = "The capital of France is"


def exercises(model: Any) -> ExerciseSet:
    """The four exercises for ``model`` (the answers are computed from it when checked)."""
    cache: dict[str, Any] = {}

    def lens():
        if "lens" not in cache:
            cache["lens"] = model.logit_lens(model.trace(PROMPT), k=5, target=" Paris")
        return cache["lens"]

    def first_paris(answer: Any) -> Feedback:
        expected = lens().first_point(" Paris")
        got = str(answer).strip()
        if got.isdigit():
            got = f"layer.{got}"
        return feedback("first_paris", got == expected,
                        f"{expected} is the first capture point whose top-1 token at ' is' is ' Paris'.",
                        f"{got!r} is not it. Look at the last column of lens.figure(), from the bottom: the first "
                        "row whose top-1 token is ' Paris' (lens.first_point(' Paris') computes it).")

    def which_norm(answer: Any) -> Feedback:
        return feedback("which_norm", str(answer).strip() == "final",
                        "Right: 'final' is after the final norm — the only point the unembedding reads directly. "
                        "layer.i are before it, which is why the lens applies the norm first.",
                        "Not that one. Read trace.points and the docstring of model.trace: which point is the "
                        "output of the final norm?")

    def rank_at_half(answer: Any) -> Feedback:
        lv = lens()
        mid = f"layer.{model.n_layers // 2}"
        expected = int(lv.target_rank[lv.points.index(mid), -1])
        try:
            got = int(answer)
        except (TypeError, ValueError):
            return Feedback("rank_at_half", False, f"answer with a whole number (the rank of ' Paris' at {mid}).")
        return feedback("rank_at_half", got == expected,
                        f"Yes: at {mid}, ' Paris' is at rank {expected} (0 = top): "
                        + ("far from the answer halfway through; it climbs in the last layers." if expected > 10
                           else "already near the top halfway through."),
                        f"Not {got}. Use lens.target_rank and lens.points: the row of {mid}, the last column.")

    def analogy(answer: Any) -> Feedback:
        from ..arithmetic import evaluate

        expr = str(answer)
        try:
            res = evaluate(model.token_space, expr, k=5)
        except ExplorerError as e:
            return Feedback("analogy", False, f"the expression did not evaluate: {e}")
        ok = res.table.top.strip().lower() == "queen"
        return feedback("analogy", ok, f"{expr} → {res.table.top!r}: the arithmetic lands on queen.",
                        f"{expr} → {res.table.top!r}. Try the other token forms: with and without a leading "
                        "space, e.g. '\" king\" - \" man\" + \" woman\"'.")

    return ExerciseSet("01 · hidden states and lenses", [
        Exercise("first_paris", "At which capture point does ' Paris' first become the top-1 token at the last position?",
                 first_paris),
        Exercise("which_norm", "Which capture point is after the final norm?", which_norm),
        Exercise("rank_at_half", "What is the rank of ' Paris' halfway through the model (0 = top)?", rank_at_half),
        Exercise("analogy", "Write a token expression whose nearest token is queen.", analogy),
    ])
