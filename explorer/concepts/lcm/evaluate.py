"""ProsQA accuracy of the Base-LCM (:mod:`.model`): answers, steps and chains.

:func:`evaluate` runs the model on each problem twice: teacher-forced (is each predicted next step
the gold one?) and free-running (:meth:`~explorer.concepts.lcm.BaseLCM.reason`: is the answer
right, is the chain the gold one, is it any root→target path of the graph?).
:func:`add_eval_arguments` and :func:`run_eval` are this engine's part of ``latent-explorer prosqa
eval --engine lcm`` (the command is :mod:`explorer.cli`'s).
"""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from ...errors import InputError
from ...tasks.prosqa.prompts import valid_chain
from .model import DEFAULT_PATH, BaseLCM, load_lcm, parse_problem


def evaluate(model: BaseLCM, data: Sequence[dict[str, Any]], *, limit: int | None = None,
             progress: bool = False) -> dict[str, Any]:
    """``accuracy`` (answer), ``step_accuracy`` (teacher-forced next step = gold step),
    ``chain_accuracy`` (free-running chain = gold steps), ``valid_chain_accuracy`` (free-running
    chain is any root→target path of the graph), ``mean_generated_tokens`` (concepts generated)."""
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list.")
    # encode every sentence once, in batches
    texts = sorted({t for p in items for q in [parse_problem(p)] for t in (*q["statements"], q["question"], *q["steps"])})
    model.encoder.encode(texts, batch_size=64, progress=progress)
    it: Any = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc="ProsQA lcm", unit="problem")
    step_ok = step_n = 0
    correct, chains, valid, outputs, n_gen = [], [], [], [], []
    for prob in it:
        p = parse_problem(prob)
        preds = model.step_predictions(prob)
        step_ok += sum(p["statements"][i] == g for i, g in zip(preds, p["steps"]))
        step_n += len(p["steps"])
        traj = model.reason(prob)
        chain, ans = traj.meta["chain"], traj.meta["answer"]
        correct.append(ans == prob["answer"])
        chains.append(chain == p["steps"])
        valid.append(valid_chain(prob, chain))
        outputs.append(" ".join(chain) + f" ### {ans}")
        n_gen.append(len(chain))
    n = len(items)
    return {"accuracy": sum(correct) / n, "step_accuracy": step_ok / max(1, step_n), "chain_accuracy": sum(chains) / n,
            "valid_chain_accuracy": sum(valid) / n, "n": n, "mean_generated_tokens": sum(n_gen) / n, "method": "lcm",
            "correct": correct, "outputs": outputs}


# -- the command line (latent-explorer prosqa eval --engine lcm) -------------------------------------------
def add_eval_arguments(ap: argparse.ArgumentParser) -> None:
    """This engine's options of ``latent-explorer prosqa eval`` (none beyond the shared ones)."""


def run_eval(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, full result) of ``latent-explorer prosqa eval --engine lcm``: ``args`` has ``model``
    (``None``, ``prosqa-lcm`` or ``lcm``: the shipped weights; else a .safetensors path with its
    config beside it as .json), ``data``, ``limit`` and ``json``."""
    from ...tasks.prosqa import VALIDATION
    from ...tasks.prosqa.generate import load

    model = str(DEFAULT_PATH) if args.model in (None, "prosqa-lcm", "lcm") else str(args.model)
    res = evaluate(load_lcm(model), load(args.data or VALIDATION), limit=args.limit, progress=not args.json)
    summary = {k: res[k] for k in ("accuracy", "step_accuracy", "chain_accuracy", "valid_chain_accuracy", "n",
                                   "mean_generated_tokens", "method")}
    summary["model"] = model
    return summary, res
