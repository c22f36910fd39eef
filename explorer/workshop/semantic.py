"""Exercises of ``notebooks/06_semantic_decoding.ipynb``, checked against the searches themselves."""
from __future__ import annotations

from typing import Any, Sequence

from . import Exercise, ExerciseSet, Feedback, feedback

WIDTHS = (1, 2, 3, 5, 8, 12)
N_TOOL = 20


def exercises(problems: Sequence[dict[str, Any]], proposer: Any, problem_index: int = 1) -> ExerciseSet:
    """Three exercises on ``problems`` (e.g. the real validation set) with ``proposer`` (the Base-LCM's)."""
    from ..semantic.prosqa import evaluate, solve
    from ..semantic.processors import RandomProposer

    cache: dict[str, Any] = {}
    target = problems[problem_index]

    def width_solves(answer: Any) -> Feedback:
        if "w" not in cache:
            cache["w"] = next((w for w in WIDTHS if (lambda s: s.correct and s.valid_chain)(
                solve(target, "beam", w, proposer=proposer))), None)
        want = cache["w"]
        try:
            got = int(answer)
        except (TypeError, ValueError):
            return Feedback("width_solves", False, f"answer with one of the widths {WIDTHS}.")
        if want is None:
            return Feedback("width_solves", got == WIDTHS[-1], f"No width up to {WIDTHS[-1]} finds a valid chain for "
                            f"problem {problem_index}; answer {WIDTHS[-1]} to move on.")
        return feedback("width_solves", got == want,
                        f"Yes: width {want} is the first that reaches the right option along the graph's edges.",
                        f"Not {got}. Run solve(problem, 'beam', w, proposer=proposer) for w in {WIDTHS} and look at "
                        ".correct and .valid_chain.")

    def tool_gain(answer: Any) -> Feedback:
        if "tool" not in cache:
            with_tool = evaluate(problems, "beam", 3, proposer=proposer, tool=True, limit=N_TOOL)["accuracy"]
            without = evaluate(problems, "beam", 3, proposer=proposer, tool=False, limit=N_TOOL)["accuracy"]
            cache["tool"] = (round(with_tool * N_TOOL), round(without * N_TOOL))
        w, wo = cache["tool"]
        try:
            got = int(answer)
        except (TypeError, ValueError):
            return Feedback("tool_gain", False, "answer with a whole number of problems (it may be negative).")
        return feedback("tool_gain", got == w - wo,
                        f"Right: {w} of {N_TOOL} with the fact checker, {wo} without. The tool never proposes; it "
                        "only says no to a step the chain cannot take, so the search spends its width on chains "
                        "that hold.",
                        f"Not {got}: count the right answers of beam width 3 on the first {N_TOOL} problems with "
                        "tool=True and tool=False and subtract.")

    def guidance_matters(answer: Any) -> Feedback:
        if not isinstance(answer, bool):
            return Feedback("guidance_matters", False, "answer True or False.")
        if "guide" not in cache:
            lcm = evaluate(problems, "beam", 3, proposer=proposer, limit=N_TOOL)
            rnd = evaluate(problems, "beam", 3, proposer=RandomProposer(seed=0), limit=N_TOOL)
            cache["guide"] = (lcm["valid_chain_accuracy"], rnd["valid_chain_accuracy"], lcm["mean_calls"],
                              rnd["mean_calls"])
        lv, rv, lc, rc = cache["guide"]
        matters = lv > rv
        what = (f"valid chains: LCM {lv:.2f} ({lc:.0f} calls a problem), random {rv:.2f} ({rc:.0f} calls); beam "
                f"width 3 with the tool, first {N_TOOL} problems")
        return feedback("guidance_matters", answer == matters, f"Right: {what}.", f"Look again: {what}.")

    return ExerciseSet("06 · semantic decoding", [
        Exercise("width_solves", f"what is the smallest beam width in {WIDTHS} that answers problem {problem_index} "
                 "right along a valid chain?", width_solves),
        Exercise("tool_gain", f"how many more of the first {N_TOOL} problems does beam width 3 answer right with the "
                 "fact checker than without it?", tool_gain),
        Exercise("guidance_matters", "with the same search, do the LCM's proposals find more valid chains than "
                 "random ones? (True or False)", guidance_matters),
    ])
