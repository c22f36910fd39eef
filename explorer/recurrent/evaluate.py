"""ProsQA accuracy of a recurrent-depth model, per iteration count and with adaptive exit, and
where its answer sits after each iteration.

* :func:`evaluate_iterations` — accuracy (Coconut's answer check) at fixed iteration counts and
  with an adaptive exit; for a ``"reach"`` model the answer is the option scored higher after
  ``... Is <root>`` (:func:`option_scores`: its logit after the last iteration, or its peak
  log-probability over the iterations; :func:`reach_logits`).
* :func:`distance_mass` — the next-token probability on graph nodes summed by hop distance, per
  iteration.
* :func:`answer_accuracy` — teacher-forced accuracy of every answer in the training format.
* :func:`add_eval_arguments`, :func:`run_eval` — this engine's part of ``latent-explorer prosqa
  eval --engine recurrent`` (the command is :mod:`explorer.cli`'s: ``explorer.cli.prosqa_eval(argv)``).
"""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..tasks.prosqa.graph import distances, hop_sets
from ..tasks.prosqa.prompts import is_correct, node_ids_for, prompt_of
from ..tasks.prosqa.tokenizer import node_probabilities
from .data import encode_problem, option_ids, reach_prompt, task_of


def evaluate_iterations(model: Any, data: Sequence[dict[str, Any]], iterations: Sequence[int] = (1, 2, 4, 8, 16, 32),
                        exit: str | None = "kl", threshold: float | None = None, *, max_iters: int | None = None,
                        limit: int | None = None, max_new_tokens: int = 16, seed: int = 0,
                        readout: str = "final", progress: bool = False) -> dict[str, Any]:
    """ProsQA accuracy (Coconut's answer check) of a recurrent model at each fixed iteration
    count, and with adaptive exit (``exit``; ``None`` skips it) up to ``max_iters`` (default: the
    largest of ``iterations``). Returns ``accuracy`` ({r: acc}), ``accuracy_by_hops`` ({r: {hops:
    acc}}), ``n_by_hops`` ({hops: problems}), ``mean_generated_tokens`` ({r: tokens generated per
    problem}; 1 for a ``"reach"`` model, whose one answer token is read, not generated in a loop),
    ``adaptive`` (``accuracy``, ``mean_iterations`` per generated token, ``mean_iterations_by_hops``
    and ``accuracy_by_hops``, hops = the length of the reference reasoning path; ``answer_iterations``
    and ``answer_iterations_by_hops``: the iterations of the one token that names the answer, where
    the search happens), ``n``, and per-problem ``outputs``. ``readout`` (a ``"reach"`` model
    only): how its two options are scored, :func:`option_scores`; the result names it."""
    from .engine import generate

    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list (e.g. load(path)).")
    iters = _iteration_counts(iterations)
    cap = int(max_iters or iters[-1])
    if task_of(model) == "reach":
        return _evaluate_reach(model, items, iters, exit, threshold, cap, seed, progress, readout)
    if readout != "final":
        raise InputError(f"readout={readout!r} reads a 'reach' model's two options; this model answers in "
                         "words (task 'answer'), so leave readout at 'final'.")
    runs: list[tuple[str, int]] = [("none", r) for r in iters] + ([(exit, cap)] if exit else [])
    it: Any = [(p, run) for p in items for run in runs]
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="ProsQA recurrent", unit="run")
    correct: dict[Any, list[bool]] = {run: [] for run in runs}
    outputs: dict[Any, list[str]] = {run: [] for run in runs}
    lengths: dict[Any, list[int]] = {run: [] for run in runs}
    used: list[float] = []
    at_answer: list[int] = []
    for prob, run in it:
        crit, r = run
        res = generate(model, prompt_of(prob), max_new_tokens, exit=crit, max_iters=r, seed=seed,
                       threshold=threshold if crit != "none" else None)
        correct[run].append(is_correct(res.text, prob["answer"]))
        outputs[run].append(res.text)
        lengths[run].append(len(res.token_ids))
        if exit and run == runs[-1]:
            used.append(res.mean_iterations)
            at_answer.append(res.iterations[_answer_token(model, res.token_ids)] if res.iterations else 0)
    out: dict[str, Any] = {"n": len(items), "iterations": iters,
                           "accuracy": {r: sum(correct[("none", r)]) / len(items) for r in iters},
                           "accuracy_by_hops": {r: by_hops(items, correct[("none", r)]) for r in iters},
                           "n_by_hops": n_by_hops(items),
                           "mean_generated_tokens": {r: float(np.mean(lengths[("none", r)])) for r in iters},
                           "outputs": {str(r): outputs[("none", r)] for r in iters}}
    if exit:
        ok = correct[runs[-1]]
        out["adaptive"] = {"exit": exit, "threshold": threshold, "max_iters": cap, "accuracy": sum(ok) / len(ok),
                           "mean_iterations": float(np.mean(used)), "mean_iterations_by_hops": by_hops(items, used),
                           "answer_iterations": float(np.mean(at_answer)),
                           "answer_iterations_by_hops": by_hops(items, at_answer),
                           "accuracy_by_hops": by_hops(items, ok), "outputs": outputs[runs[-1]]}
    return out


def _iteration_counts(iterations: Sequence[int]) -> list[int]:
    """The distinct iteration counts, sorted; a typed error unless there is one and all are >= 1."""
    its = sorted({int(r) for r in iterations})
    if not its or its[0] < 1:
        raise InputError(f"iterations must be whole numbers >= 1, got {list(iterations)}.")
    return its


def by_hops(problems: Sequence[dict[str, Any]], values: Sequence[float]) -> dict[int, float]:
    """The mean of ``values`` (one per problem) for each hop count (the length of a problem's
    reference reasoning path)."""
    by: dict[int, list[float]] = {}
    for p, v in zip(problems, values, strict=True):
        by.setdefault(len(p.get("steps", [])), []).append(float(v))
    return {h: float(np.mean(v)) for h, v in sorted(by.items())}


def n_by_hops(problems: Sequence[dict[str, Any]]) -> dict[int, int]:
    """How many problems have each hop count."""
    return {h: int(n) for h, n in sorted(Counter(len(p.get("steps", [])) for p in problems).items())}


def _reach_passes(model: Any, problems: Sequence[dict[str, Any]], iterations: Sequence[int], seed: int,
                  batch_size: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(first problem of the batch, r, (batch, vocab) logits after its last prompt token after r
    iterations) for every wanted r, one pass of max(iterations) core iterations per batch."""
    from .engine import initial_states

    hf, tok = model.hf, model.tokenizer
    hf.eval()
    seqs = [reach_prompt(tok, p) for p in problems]
    if not seqs:
        raise InputError("no problems to read; pass a non-empty list (e.g. load(path)).")
    dev = hf.transformer.wte.weight.device
    init = initial_states(hf, max(len(s) for s in seqs), seed)
    wanted = _iteration_counts(iterations)
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i:i + batch_size]
        T = max(len(s) for s in chunk)
        x = torch.full((len(chunk), T), int(tok.pad_token_id), dtype=torch.long, device=dev)
        for b, s in enumerate(chunk):
            x[b, :len(s)] = torch.tensor(s)
        at = torch.tensor([[b, len(s) - 1] for b, s in enumerate(chunk)], device=dev)
        e = hf.prelude(hf.embed(x))
        state = init[:, :T].expand(len(chunk), -1, -1)
        for r in range(1, wanted[-1] + 1):
            state = hf.core_step(state, e)
            if r in wanted:
                yield i, r, hf.coda(state, at).float().cpu()


@torch.inference_mode()
def reach_logits(model: Any, problems: Sequence[dict[str, Any]], iterations: Sequence[int], *, seed: int = 0,
                 batch_size: int = 32) -> dict[int, torch.Tensor]:
    """{r: (n, vocab) next-token logits after each problem's compact prompt ``... Is <root>``,
    after r core iterations}; the initial states are the engine's (:func:`~explorer.recurrent.engine.initial_states`),
    so these are the logits :func:`~explorer.recurrent.engine.iterate` shows at ``iter.r``. One
    run of max(iterations) iterations per batch gives every r."""
    out: dict[int, list[torch.Tensor]] = {int(r): [] for r in iterations}
    for _, r, lg in _reach_passes(model, problems, iterations, seed, batch_size):
        out[r].append(lg)
    return {r: torch.cat(v) for r, v in out.items()}


#: how a ``"reach"`` model's two options are scored after r iterations (``readout=``)
READOUTS = ("final", "peak")


@torch.inference_mode()
def option_scores(model: Any, problems: Sequence[dict[str, Any]], iterations: Sequence[int], readout: str = "final",
                  *, seed: int = 0, batch_size: int = 32) -> dict[int, torch.Tensor]:
    """{r: (n, 2) scores of each problem's (right, wrong) options after r iterations} for a
    ``"reach"`` model; the answer is the option scored higher. ``readout="final"``: their logits
    after iteration r (:func:`reach_logits`); ``"peak"``: each option's highest log-probability over
    iterations 1..r, i.e. whether the search reached it by iteration r, whatever it held later
    (reachability only grows with hops, so a node once reached stays reached)."""
    if readout not in READOUTS:
        raise InputError(f"readout must be one of {', '.join(READOUTS)}; got {readout!r}.")
    items = list(problems)
    pairs = torch.tensor([option_ids(model.tokenizer, p) for p in items])
    wanted = _iteration_counts(iterations)
    run = wanted if readout == "final" else range(1, wanted[-1] + 1)
    out: dict[int, torch.Tensor] = {r: torch.empty(len(items), 2) for r in wanted}
    best: dict[int, torch.Tensor] = {}
    for i, r, lg in _reach_passes(model, items, run, seed, batch_size):
        idx = pairs[i:i + len(lg)]
        if readout == "final":
            score = lg.gather(1, idx)
        else:
            now = lg.log_softmax(-1).gather(1, idx)
            score = best[i] = now if r == 1 else torch.maximum(best[i], now)
        if r in out:
            out[r][i:i + len(lg)] = score
    return out


def distance_mass(model: Any, problems: Sequence[dict[str, Any]], max_iters: int = 16, *,
                  seed: int = 0) -> dict[str, Any]:
    """Where a ``"reach"`` model's answer sits after each core iteration: at the question's last
    token, the next-token probability of every graph node summed by the node's shortest hop
    distance from the root (``"1"``, ``"2"``, … and ``"unreachable"``; the root itself is left
    out), averaged over ``problems``. Returns ``iterations`` (1..max_iters), ``mass`` ({group:
    [mean per iteration]}) and ``n``. A model that searches one hop per iteration moves its
    mass outwards as the iterations go on."""
    items = list(problems)
    if not items or max_iters < 1:
        raise InputError("pass at least one problem and max_iters >= 1.")
    its = list(range(1, int(max_iters) + 1))
    logits = reach_logits(model, items, its, seed=seed)
    sums: dict[str, np.ndarray] = {}
    for i, p in enumerate(items):
        _, dist = hop_sets(p, 0)
        ids = node_ids_for(model.tokenizer, p, strict=True)
        keys = [str(dist[v]) if v in dist else "unreachable" for v in range(len(ids))]
        for j, r in enumerate(its):
            per = node_probabilities(logits[r][i].softmax(-1).numpy(), ids)
            for v, k in enumerate(keys):
                if k != "0":
                    sums.setdefault(k, np.zeros(len(its)))[j] += per[v]
    order = sorted((k for k in sums if k != "unreachable"), key=int) + (["unreachable"] if "unreachable" in sums else [])
    return {"iterations": its, "mass": {k: (sums[k] / len(items)).tolist() for k in order}, "n": len(items)}


def _evaluate_reach(model: Any, items: list[dict[str, Any]], iters: list[int], exit: str | None,
                    threshold: float | None, cap: int, seed: int, progress: bool, readout: str) -> dict[str, Any]:
    """:func:`evaluate_iterations` for a model of the ``"reach"`` task: the answer is the option
    scored higher after ``... Is <root>`` (:func:`option_scores`); iterations are those of that one
    position. The adaptive exit picks each problem's iteration count; the answer is read there."""
    from ..tasks.prosqa.compact import options
    from .engine import initial_states, next_token_adaptive
    from .exits import check_criterion

    names = [options(p) for p in items]
    scores = option_scores(model, items, iters + (list(range(1, cap + 1)) if exit else []), readout, seed=seed)
    pick = lambda r, i: names[i][0] if scores[r][i, 0] > scores[r][i, 1] else names[i][1]  # noqa: E731
    picks = {r: [pick(r, i) for i in range(len(items))] for r in iters}
    right = {r: [c == n[0] for c, n in zip(picks[r], names)] for r in iters}
    out: dict[str, Any] = {"n": len(items), "iterations": iters, "task": "reach", "readout": readout,
                           "accuracy": {r: float(np.mean(right[r])) for r in iters},
                           "accuracy_by_hops": {r: by_hops(items, right[r]) for r in iters},
                           "n_by_hops": n_by_hops(items),
                           "mean_generated_tokens": {r: 1.0 for r in iters},
                           "outputs": {str(r): picks[r] for r in iters}}
    if not exit:
        return out
    thr = check_criterion(exit, threshold)
    hf, tok = model.hf, model.tokenizer
    it: Any = enumerate(items)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(items), desc=f"ProsQA recurrent, exit={exit}", unit="problem")
    used = []
    for i, p in it:
        ids = torch.tensor([reach_prompt(tok, p)], device=hf.transformer.wte.weight.device)
        used.append(next_token_adaptive(hf, ids, initial_states(hf, ids.shape[1], seed), exit, thr, cap)[1])
    chosen = [pick(r, i) for i, r in enumerate(used)]
    ok = [c == n[0] for c, n in zip(chosen, names)]
    per_hops = by_hops(items, used)
    out["adaptive"] = {"exit": exit, "threshold": thr, "max_iters": cap, "accuracy": float(np.mean(ok)),
                       "mean_iterations": float(np.mean(used)), "mean_iterations_by_hops": per_hops,
                       "answer_iterations": float(np.mean(used)), "answer_iterations_by_hops": per_hops,
                       "accuracy_by_hops": by_hops(items, ok),
                       "outputs": chosen}
    return out


@torch.inference_mode()
def answer_accuracy(model: Any, data: Sequence[dict[str, Any]], iterations: Sequence[int] = (1, 4, 8, 16), *,
                    limit: int | None = None, seed: int = 0) -> dict[int, dict[str, Any]]:
    """Teacher-forced accuracy of every answer in the training format (the ProsQA question and a
    problem's extra ``queries``), per iteration count: one forward per problem, read at the token
    that names each answer's concept. Two-way questions ("Is P a A or B?") count as right when the
    right option scores higher than the other (``two_way``, and ``two_way_by_hops`` by the answer's
    distance from P); lookups ("What is X?") when the top token is any of X's direct successors
    (``lookup``). A quick gauge of a run long before free-running answers leave chance.
    ``lookup_blind`` is what a guess that ignores the subject scores on the same lookups (the
    concept most often named after a person, or after a concept, by the question's kind;
    :func:`~explorer.tasks.prosqa.audit.lookup_guesses`): a run finds statements by their subject
    only where ``lookup`` is clearly above it."""
    from ..tasks.prosqa.audit import lookup_guesses

    hf, tok = model.hf, model.tokenizer
    hf.eval()
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list.")
    blind = [g for p in items for g in lookup_guesses(p)]
    out: dict[int, dict[str, Any]] = {}
    for r in sorted({int(x) for x in iterations}):
        two: dict[int, list[bool]] = {}
        look: list[bool] = []
        for p in items:
            ids, _ = encode_problem(tok, p)
            x = torch.tensor([ids], device=hf.transformer.wte.weight.device)
            logits = hf(x, num_steps=(r, 0), generator=torch.Generator().manual_seed(seed)).logits[0].float().cpu()
            sym, edges = p["idx_to_symbol"], p["edges"]
            ends = [i for i, t in enumerate(ids) if t == tok.eos_token_id]
            qas = [("Is " + p["question"].rsplit(" Is ", 1)[-1], p["answer"])]
            qas += [(q["question"], q["answer"]) for q in p.get("queries", ())]
            for (question, _answer), end in zip(qas, ends):
                at = end - 3  # ... " a" <concept> "." EOS: the logits at " a" name the concept
                if question.startswith("What is "):
                    subject = question[len("What is "):-1].removeprefix("every ")
                    ok = {sym[b] for a, b in edges if sym[a] == subject}
                    look.append(tok.decode([int(logits[at].argmax())]).strip() in ok)
                    continue
                person, options = question[len("Is "):-1].split(" a ", 1)
                a, b = options.split(" or ")
                right = tok.decode([ids[at + 1]]).strip()
                wrong = b if right == a else a
                ia, ib = (tok.convert_tokens_to_ids(" " + w) for w in (right, wrong))
                hops = distances(len(sym), edges, sym.index(person)).get(sym.index(right), 0)
                two.setdefault(hops, []).append(bool(logits[at, ia] > logits[at, ib]))
        flat = [v for vs in two.values() for v in vs]
        out[r] = {"two_way": float(np.mean(flat)) if flat else None,
                  "two_way_by_hops": {h: float(np.mean(v)) for h, v in sorted(two.items())},
                  "lookup": float(np.mean(look)) if look else None,
                  "lookup_blind": float(np.mean(blind)) if blind else None,
                  "n_two_way": len(flat), "n_lookup": len(look)}
    return out


def _answer_token(model: Any, ids: Sequence[int]) -> int:
    """Index of the generated token that names the answer's concept (the one after " a"; the last if none)."""
    tok = model.tokenizer
    for i in range(1, len(ids)):
        if tok.decode([int(ids[i - 1])]).strip() == "a":
            return i
    return len(ids) - 1


# -- the command line (latent-explorer prosqa eval --engine recurrent) ------------------------------------
#: the default of ``prosqa eval --method recurrent``: the graph-token model once it ships, till then the words model
DEFAULT_MODELS = ("prosqa-recurrent-graph", "prosqa-recurrent")


def default_model() -> str:
    """The first of :data:`DEFAULT_MODELS` that is shipped (the last one when none is)."""
    from ..models.registry import lookup

    return next((m for m in DEFAULT_MODELS if lookup(m) is not None), DEFAULT_MODELS[-1])


def add_eval_arguments(ap: argparse.ArgumentParser) -> None:
    """This engine's options of ``latent-explorer prosqa eval``."""
    from .exits import CRITERIA

    ap.add_argument("--iterations", default="1,2,4,8,16,32", help="comma-separated iteration counts")
    ap.add_argument("--exit", default="kl", choices=[*CRITERIA, "off"], help="adaptive exit criterion ('off': skip)")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--readout", default="final", choices=READOUTS,
                    help="a reach model's option scores: 'final' (logits after the last iteration) or 'peak' (each "
                         "option's highest log-probability over iterations 1..r)")
    ap.add_argument("--teacher-forced", action="store_true",
                    help="instead: teacher-forced accuracy of every answer in the training format (two-way by hops, "
                         "lookups); pass --data with problems generated with --queries/--lookups")


def _keys(d: dict[Any, Any]) -> dict[str, Any]:
    """JSON summary form: nested per-hop dicts keyed by strings."""
    return {k: ({str(h): x for h, x in v.items()} if isinstance(v, dict) else v) for k, v in d.items()}


def run_eval(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(summary, full result) of ``latent-explorer prosqa eval --engine recurrent``: ``args`` has
    ``model`` (``None``: :func:`default_model`), ``data``, ``limit``, ``json`` and the options of
    :func:`add_eval_arguments`. ``--teacher-forced`` has no full result to write."""
    from ..tasks.prosqa import VALIDATION
    from ..tasks.prosqa.generate import load
    from .engine import load_recurrent

    model = args.model or default_model()
    try:
        its = [int(x) for x in args.iterations.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--iterations must be like 1,2,4 (got {args.iterations!r}).") from None
    if args.teacher_forced:
        tf = answer_accuracy(load_recurrent(model), load(args.data or VALIDATION), its, limit=args.limit, seed=args.seed)
        return {"method": "recurrent", "model": str(model),
                "teacher_forced": {str(r): _keys(d) for r, d in tf.items()}}, None
    res = evaluate_iterations(load_recurrent(model), load(args.data or VALIDATION), its,
                              None if args.exit == "off" else args.exit, args.threshold, max_iters=args.max_iters,
                              limit=args.limit, seed=args.seed, readout=args.readout, progress=not args.json)
    summary = {"method": "recurrent", "model": str(model), "n": res["n"], "readout": args.readout,
               "accuracy": {str(k): v for k, v in res["accuracy"].items()},
               "accuracy_by_hops": _keys({str(k): v for k, v in res["accuracy_by_hops"].items()}),
               "n_by_hops": {str(h): n for h, n in res["n_by_hops"].items()},
               "mean_generated_tokens": {str(k): v for k, v in res["mean_generated_tokens"].items()}}
    if "adaptive" in res:
        summary["adaptive"] = _keys({k: v for k, v in res["adaptive"].items() if k != "outputs"})
    return summary, res
