"""ProsQA accuracy of a continuous-thought model: Coconut, Soft Thinking, and the chain-of-thought
(CoT) and no-CoT baselines, all thinking with :func:`explorer.thoughts.think`.

The prompt and the answer check are the task's: Coconut's rules (:mod:`explorer.tasks.prosqa.prompts`)
for models that read ProsQA's sentences, :mod:`explorer.tasks.prosqa.graph_tokens` for models that
read graph tokens (told apart by the tokenizer). :func:`evaluate` is the Python entry point; :func:`add_eval_arguments` and
:func:`run_eval` are this engine's part of ``latent-explorer prosqa eval --engine thoughts --mode
MODE`` (the command itself, and its older spelling ``--method MODE``, is :mod:`explorer.cli`'s).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import InputError, ModelNotFoundError
from ..tasks.prosqa import graph_tokens
from ..tasks.prosqa.prompts import is_correct, is_correct_for, node_ids_for, prompt_for, prompt_of
from ..validate import whole

METHODS = ("coconut", "soft", "cot", "no_cot")
"""The thinking modes :func:`evaluate` takes (``--mode``; ``nocot`` is read as ``no_cot``)."""

READOUTS = ("answer", "peak")
"""How :func:`evaluate` reads a Coconut or soft answer (``readout=``, ``--readout``): ``"answer"``, the
words the model writes after its thoughts; ``"peak"`` (graph-token models), straight off the thoughts:
each option's highest next-token probability over them, the option that peaked higher. A thought holds
the nodes a fixed number of hops out, so the target is read where the search reached it, even when the
learned stop or a later thought would lose it; the thoughts then run to their full count, no learned
stop (the recurrent engine's ``--readout peak`` reads its iterations the same way)."""


def default_thoughts(model: Any) -> int:
    """The thought count a checkpoint was trained for (``config.coconut["n_thoughts"]``), else 6."""
    from .engine import trained_for

    return int(trained_for(model).get("n_thoughts", 6))


def evaluate(model_or_engine: Any, data: Sequence[dict[str, Any]], method: str = "coconut", *,
             n_thoughts: int | str | None = None, max_new_tokens: int | None = None, limit: int | None = None,
             progress: bool = False, num_beams: int = 1, readout: str = "answer", **options: Any) -> dict[str, Any]:
    """Accuracy on ProsQA problems.

    ``model_or_engine``: an :class:`explorer.Model` (thinking with :func:`explorer.thoughts.think`)
    or a callable ``engine(prompt) -> str | ThoughtResult``. ``method``: ``"coconut"``, ``"soft"``
    (``n_thoughts`` continuous thoughts, default: what the checkpoint was trained for, stopping
    earlier where the checkpoint learned when to stop; ``"hops"``: exactly one thought per hop of
    each problem's reference path, the papers' protocol, with no learned stop), ``"cot"``
    (greedy chain of thought), ``"no_cot"`` (greedy answer straight away). Returns ``accuracy``,
    ``n``, ``mean_generated_tokens`` (thoughts + language tokens), both also per hop count of the
    reference path (``accuracy_by_hops``, ``mean_generated_tokens_by_hops``), ``correct`` (per
    problem) and ``outputs`` (the generated texts). ``num_beams`` > 1 (``"cot"``/``"no_cot"`` only):
    token-level beam search (transformers' ``generate``) instead of greedy decoding; then
    ``mean_forward_tokens`` counts the tokens the model ran (beams × steps), the search's compute.
    A graph-token model's chain of thought is also read as a walk from the root (``walk``: the share
    of its hops that follow an edge, ``edge_share``, and of its walks that end at the answer,
    ``reaches_answer``; :func:`explorer.tasks.prosqa.graph_tokens.read_walk`). ``readout="peak"``
    (:data:`READOUTS`) reads a graph-token Coconut or soft answer off its thoughts instead of its
    words; ``outputs`` then name the option read and the generated tokens are the thoughts."""
    from .engine import ThoughtResult, think

    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}.")
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list (e.g. load(path)).")
    tok = getattr(model_or_engine, "tokenizer", None)
    graph = tok is not None and graph_tokens.is_graph_tokenizer(tok)
    if max_new_tokens is None:  # a graph-token answer is at most 6 path nodes, [A], the node and <eos>
        max_new_tokens = 16 if graph else 64
    if n_thoughts == "hops" and (method not in ("coconut", "soft") or not hasattr(model_or_engine, "hf")):
        raise InputError("n_thoughts='hops' needs an explorer.Model and method='coconut' or 'soft'; "
                         f"got method={method!r} and a {type(model_or_engine).__name__}.")
    if n_thoughts is not None and n_thoughts != "hops":
        whole(n_thoughts, "n_thoughts (a count, or 'hops')", lo=0)
    if readout not in READOUTS:
        raise InputError(f"readout must be one of {', '.join(READOUTS)}; got {readout!r}.")
    peak = readout == "peak"
    if peak and (method not in ("coconut", "soft") or not graph or not hasattr(model_or_engine, "hf")
                 or n_thoughts == 0):
        raise InputError("readout='peak' reads the options off continuous thoughts: it needs an explorer.Model "
                         "that reads graph tokens, method='coconut' or 'soft' and at least one thought; got "
                         f"method={method!r}, a {type(model_or_engine).__name__}"
                         + ("" if graph else " that reads words") + f" and n_thoughts={n_thoughts!r}. "
                         "Leave readout at 'answer' otherwise.")
    if peak:   # every thought, no learned stop; the answer is read off them, not written
        options, max_new_tokens = {**options, "stop_on": None}, 0
    engine: Callable[..., Any]   # engine(prompt) or, with one thought per hop, engine(prompt, hops)
    if callable(model_or_engine) and not hasattr(model_or_engine, "hf"):
        engine = model_or_engine
    elif hasattr(model_or_engine, "hf"):
        model = model_or_engine
        if method in ("coconut", "soft") and n_thoughts == "hops":
            stop = {**options, "stop_on": None}
            def engine(p: str, hops: int) -> Any:
                return think(model, p, hops, method, max_new_tokens=max_new_tokens, annotate=False, **stop)
        elif method in ("coconut", "soft"):
            n = default_thoughts(model) if n_thoughts is None else int(n_thoughts)
            def engine(p: str) -> Any:
                return think(model, p, n, method, max_new_tokens=max_new_tokens, annotate=False, **options)
        elif whole(num_beams, "num_beams", lo=1) > 1:
            def engine(p: str) -> Any:
                return _beam(model, p, num_beams, max_new_tokens)
        else:
            # cot / no_cot: plain greedy language; no markers, no thoughts
            def engine(p: str) -> Any:
                return think(model, p, 0, "cot", max_new_tokens=max_new_tokens, annotate=False, markers=False)
    else:
        raise InputError("evaluate needs an explorer.Model or a callable prompt -> text; got "
                         f"{type(model_or_engine).__name__}.")
    it: Any = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc=f"ProsQA {method}", unit="problem")
    if num_beams > 1 and method in ("coconut", "soft"):
        raise InputError("num_beams is for method='cot' or 'no_cot' (token-level beam search); continuous "
                         "thoughts are decoded greedily.")
    correct: list[bool] = []
    outputs: list[str] = []
    tokens: list[int] = []
    forward: list[int] = []
    for prob in it:
        prompt = prompt_for(tok, prob) if tok is not None else prompt_of(prob)
        out = engine(prompt, len(prob.get("steps", []))) if n_thoughts == "hops" else engine(prompt)
        if isinstance(out, _Beamed):
            text, n_tok = out.text, out.generated_tokens
            forward.append(out.forward_tokens)
        elif isinstance(out, ThoughtResult):
            text, n_tok = (_peak_option(model_or_engine, out, prob) if peak else out.text), out.generated_tokens
            forward.append(len(out.prompt_ids) + n_tok)
        else:
            text = str(out)
            n_tok = len(text.split())
        outputs.append(text)
        tokens.append(n_tok)
        if peak:
            correct.append(text == prob["idx_to_symbol"][int(prob["target"])])
        else:
            correct.append(is_correct_for(tok, text, prob) if tok is not None else is_correct(text, prob["answer"]))
    walk: dict[str, Any] = {}
    if graph and method == "cot":   # the chain read as a walk: along real edges? to the answer?
        walks = [graph_tokens.read_walk(t, p) for t, p in zip(outputs, items)]
        hops = sum(w["hops"] for w in walks)
        walk = {"walk": {"edge_share": sum(w["edges"] for w in walks) / hops if hops else None,
                         "reaches_answer": sum(w["reaches"] for w in walks) / len(walks)}}
    by: dict[int, list[int]] = {}
    for i, prob in enumerate(items):   # hops: the length of the reference reasoning path
        by.setdefault(len(prob.get("steps", [])), []).append(i)
    return {"accuracy": sum(correct) / len(correct), "n": len(correct),
            "mean_generated_tokens": sum(tokens) / len(tokens), "method": method,
            "accuracy_by_hops": {h: sum(correct[i] for i in ix) / len(ix) for h, ix in sorted(by.items())},
            "mean_generated_tokens_by_hops": {h: sum(tokens[i] for i in ix) / len(ix) for h, ix in sorted(by.items())},
            "correct": correct, "outputs": outputs,
            **walk, **({"readout": readout} if peak else {}),
            **({"num_beams": num_beams, "mean_forward_tokens": sum(forward) / len(forward)} if forward else {})}


def _peak_option(model: Any, result: Any, problem: dict[str, Any]) -> str:
    """The option whose next-token probability peaked higher over ``result``'s thoughts, by name
    (``readout="peak"``)."""
    import torch

    ids = node_ids_for(model.tokenizer, problem, strict=True)
    pair = [int(problem["target"]), int(problem["neg_target"])]
    with torch.inference_mode():
        probs = model.probe.logits(result.trajectory.vectors(), normed=True).float().softmax(-1)
    best = probs[:, [ids[v] for v in pair]].amax(0)
    return problem["idx_to_symbol"][pair[int(best.argmax())]]


@dataclass
class _Beamed:
    text: str
    generated_tokens: int
    forward_tokens: int


def _beam(model: Any, prompt: str, width: int, max_new_tokens: int) -> _Beamed:
    """Token-level beam search of a language model (transformers' ``generate``); the best beam's text,
    its length, and how many tokens the model ran for it (the prompt once per beam, then every
    beam at every step)."""
    import torch

    ids = model.encode(prompt)
    with torch.inference_mode():
        out = model.hf.generate(ids, num_beams=width, num_return_sequences=1, do_sample=False,
                                max_new_tokens=max_new_tokens, early_stopping=True,
                                pad_token_id=model.tokenizer.pad_token_id or model.tokenizer.eos_token_id)
    new = out[0, ids.shape[1]:].tolist()
    eos = model.tokenizer.eos_token_id
    steps = len(new)
    if eos is not None and eos in new:
        new = new[: new.index(eos)]
    return _Beamed(model.tokenizer.decode(new, skip_special_tokens=True), len(new),
                   width * (ids.shape[1] + steps))


# -- the command line (latent-explorer prosqa eval --engine thoughts) -------------------------------------
def default_model(mode: str) -> str:
    """The shipped model of a mode: ``prosqa-<mode>`` (``soft`` thinks with ``prosqa-coconut``;
    ``no_cot`` is ``prosqa-nocot``)."""
    return "prosqa-" + ("coconut" if mode == "soft" else mode.replace("_", ""))


def add_eval_arguments(ap: argparse.ArgumentParser) -> None:
    """This engine's options of ``latent-explorer prosqa eval``."""
    ap.add_argument("--n-thoughts", type=_thought_count, default=None,
                    help="continuous thoughts per problem (coconut, soft; default: what the checkpoint was trained "
                         "for, with its learned stop); 'hops': one per hop of each problem's path, no learned stop")
    ap.add_argument("--readout", choices=READOUTS, default="answer",
                    help="coconut, soft with a graph-token model: 'answer' (default) checks the words the model writes; "
                         "'peak' reads the option whose probability peaked higher over the thoughts (all of them, "
                         "no learned stop)")


def _thought_count(text: str) -> int | str:
    if text == "hops":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of thoughts or 'hops', got {text!r}") from None


def run_eval(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, full result) of ``latent-explorer prosqa eval --engine thoughts``: ``args`` has
    ``mode``, ``model`` (``None``: :func:`default_model`), ``data``, ``limit``, ``json`` and
    ``n_thoughts``."""
    from .. import load_model
    from ..models.registry import lookup
    from ..tasks.prosqa import VALIDATION
    from ..tasks.prosqa.generate import load

    model_name = args.model or default_model(args.mode)
    if args.model is None and lookup(model_name) is None:
        raise ModelNotFoundError(f"{model_name} is not shipped yet; train it with `latent-explorer train coconut "
                                 f"RUN_DIR --method {'coconut' if args.mode == 'soft' else args.mode} ...` "
                                 "(docs/thoughts.md) and pass --model RUN_DIR/latest.")
    readout = getattr(args, "readout", "answer")
    res = evaluate(load_model(model_name), load(args.data or VALIDATION), args.mode, n_thoughts=args.n_thoughts,
                   limit=args.limit, progress=not args.json, readout=readout)
    summary = {k: res[k] for k in ("accuracy", "n", "mean_generated_tokens", "method")}
    summary.update({k: {str(h): v for h, v in res[k].items()} for k in ("accuracy_by_hops", "mean_generated_tokens_by_hops")})
    if "walk" in res:
        summary["walk"] = res["walk"]
    summary["model"] = model_name
    if args.n_thoughts is not None:
        summary["n_thoughts"] = args.n_thoughts
    if readout != "answer":
        summary["readout"] = readout
    return summary, res
