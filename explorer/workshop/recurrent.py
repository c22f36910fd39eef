"""Exercises of ``notebooks/03_recurrent_depth.ipynb``, checked against the recurrent model's own iterations."""
from __future__ import annotations

from typing import Any, Sequence

from . import Exercise, ExerciseSet, Feedback, feedback

N_EVAL = 40          # problems for the accuracy question
N_MASS = 10          # problems for the probability-mass question
MAX_ITERS = 16
TWO_HOP_ITERATIONS = (1, 2, 3, 4, 8, 16)


def exercises(model: Any, problems: Sequence[dict[str, Any]]) -> ExerciseSet:
    """The four exercises for a recurrent model trained on the compact ProsQA task, on ``problems``
    (e.g. the real validation set; the last one on generated 2-hop problems); each answer is computed
    when first checked."""
    from ..recurrent.evaluate import distance_mass, evaluate_iterations
    from ..tasks.prosqa.compact import compact_prompt
    from ..tasks.prosqa.generate import fixed_hop_sets

    cache: dict[str, Any] = {}

    def exit_iteration(answer: Any) -> Feedback:
        if "exit" not in cache:
            cache["exit"] = model.iterate(compact_prompt(problems[0]), max_iters=32, exit="kl").iterations[-1]
        want = int(cache["exit"])
        try:
            got = int(answer)
        except (TypeError, ValueError):
            return Feedback("exit_iteration", False, "answer with a whole number of iterations.")
        return feedback("exit_iteration", got == want,
                        f"Yes: the last token exits after {want} iterations, when the KL divergence between two "
                        "successive answers falls below 1e-3. Every other token has its own exit iteration too "
                        "(res.iterations).",
                        f"Not {got}. Run model.iterate(prompt, max_iters=32, exit='kl') and read the last entry of "
                        ".iterations (or the last step's name in the stepper).")

    def iterations_help(answer: Any) -> Feedback:
        if "acc" not in cache:
            cache["acc"] = evaluate_iterations(model, problems, iterations=(1, MAX_ITERS), exit=None,
                                               limit=N_EVAL)["accuracy"]
        acc = cache["acc"]
        rises = acc[MAX_ITERS] > acc[1] + 0.02
        if not isinstance(answer, bool):
            return Feedback("iterations_help", False, "answer True or False.")
        what = (f"accuracy goes from {acc[1]:.2f} at 1 iteration to {acc[MAX_ITERS]:.2f} at {MAX_ITERS} on the first "
                f"{N_EVAL} problems")
        return feedback("iterations_help", answer == rises,
                        f"Right: {what}. " + ("The model uses its extra iterations." if rises else
                                              "This model answers with what one pass of its core gives; more "
                                              "iterations change little. Huginn's finding needs a model that has "
                                              "learned to search one hop per iteration."),
                        f"Look again: {what}.")

    def unreachable_mass(answer: Any) -> Feedback:
        if "mass" not in cache:
            m = distance_mass(model, problems[:N_MASS], MAX_ITERS)["mass"]
            total = sum(v[-1] for v in m.values())
            cache["mass"] = m.get("unreachable", [0.0])[-1] / total if total > 0 else 0.0
        want = float(cache["mass"])
        try:
            got = float(answer)
        except (TypeError, ValueError):
            return Feedback("unreachable_mass", False, "answer with a share between 0 and 1.")
        return feedback("unreachable_mass", abs(got - want) <= 0.05,
                        f"About {want:.2f}: that share of the probability the model puts on graph nodes goes to "
                        "nodes the person cannot reach. A model that had learned the search would put almost none "
                        "there.",
                        f"Not {got:g}. In distance_mass(model, problems[:{N_MASS}], {MAX_ITERS}), divide the last "
                        "'unreachable' value by the sum of the last values of all groups.")

    def two_hop_iterations(answer: Any) -> Feedback:
        if "two" not in cache:
            acc = evaluate_iterations(model, fixed_hop_sets(N_EVAL, hops=(2,))[2], iterations=TWO_HOP_ITERATIONS,
                                      exit=None)["accuracy"]
            cache["two"] = (acc, next((r for r in TWO_HOP_ITERATIONS if acc[r] >= 0.9), None))
        acc, want = cache["two"]
        what = ", ".join(f"{r}: {acc[r]:.2f}" for r in TWO_HOP_ITERATIONS)
        if want is None:
            return feedback("two_hop_iterations", answer is None, f"Right: it never gets there ({what}).",
                            f"This model never gets 0.9 of them right ({what}); answer None.")
        try:
            got = int(answer)
        except (TypeError, ValueError):
            return Feedback("two_hop_iterations", False, "answer with a whole number of iterations.")
        return feedback("two_hop_iterations", got == want,
                        f"Yes: {want} (accuracy per iteration count: {what}). A 2-hop answer needs a second hop of "
                        "search, and this model was taught to add one hop per iteration of its core.",
                        f"Not {got}. Read the 2-hop line of the figure: accuracy per iteration count is {what}.")

    return ExerciseSet("03 · recurrent depth", [
        Exercise("exit_iteration", "With exit='kl', after how many iterations does the last token of problem 0's "
                                   "prompt stop?", exit_iteration),
        Exercise("unreachable_mass", f"After {MAX_ITERS} iterations, what share of the node probability (problems "
                                     f"0–{N_MASS - 1}) sits on nodes the person cannot reach?", unreachable_mass),
        Exercise("iterations_help", f"Is accuracy on the first {N_EVAL} problems higher after {MAX_ITERS} iterations "
                                    "than after 1? (True or False)", iterations_help),
        Exercise("two_hop_iterations", f"On {N_EVAL} problems whose answer is 2 hops away (fixed_hop_sets), after how "
                                       "many iterations does the model first answer at least 0.9 of them right?",
                 two_hop_iterations),
    ])
