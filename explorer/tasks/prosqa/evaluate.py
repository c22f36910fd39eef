"""ProsQA evaluation as in the Coconut repository: the answer is the text after the last ``#``
(commas removed, stripped), and it must equal the reference answer string exactly.

The prompt is ``question + "\\n"`` (Coconut's format); a trained model continues with its chain of
thought (CoT), or with ``<bot>`` thoughts ``<eot>`` (Coconut), and then ``### <answer>``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ...errors import ExplorerError, InputError, ModelNotFoundError

METHODS = ("coconut", "soft", "cot", "no_cot")


def parse_answer(text: str) -> str:
    """Coconut's answer extraction: the text after the last '#', without commas, stripped."""
    return text.split("#")[-1].replace(",", "").strip()


def parse_cot(text: str) -> str:
    """Coconut's chain-of-thought extraction: the text before the first '#', stripped."""
    return text.split("#")[0].strip()


def is_correct(text: str, answer: str) -> bool:
    return parse_answer(text) == answer.replace(",", "").strip()


def prompt_of(problem: dict[str, Any]) -> str:
    return problem["question"] + "\n"


def default_thoughts(model: Any) -> int:
    """The thought count a checkpoint was trained for (``config.coconut["n_thoughts"]``), else 6."""
    info = getattr(getattr(model, "hf", None), "config", None)
    info = getattr(info, "coconut", None) or {}
    return int(info.get("n_thoughts", 6)) if isinstance(info, dict) else 6


def evaluate(model_or_engine: Any, data: Sequence[dict[str, Any]], method: str = "coconut", *,
             n_thoughts: int | None = None, max_new_tokens: int = 64, limit: int | None = None,
             progress: bool = False, **options: Any) -> dict[str, Any]:
    """Accuracy on ProsQA problems.

    ``model_or_engine``: an :class:`explorer.Model` (thinking with :func:`explorer.thoughts.think`)
    or a callable ``engine(prompt) -> str | ThoughtResult``. ``method``: ``"coconut"``, ``"soft"``
    (``n_thoughts`` continuous thoughts, default: what the checkpoint was trained for), ``"cot"``
    (greedy chain of thought), ``"no_cot"`` (greedy answer straight away). Returns ``accuracy``,
    ``n``, ``mean_generated_tokens`` (thoughts + language tokens), ``correct`` (per problem) and
    ``outputs`` (the generated texts)."""
    from ...thoughts.engine import ThoughtResult, think

    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}.")
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list (e.g. load(path)).")
    engine: Callable[[str], Any]
    if callable(model_or_engine) and not hasattr(model_or_engine, "hf"):
        engine = model_or_engine
    elif hasattr(model_or_engine, "hf"):
        model = model_or_engine
        if method in ("coconut", "soft"):
            n = default_thoughts(model) if n_thoughts is None else n_thoughts
            def engine(p: str) -> Any:
                return think(model, p, n, method, max_new_tokens=max_new_tokens, annotate=False, **options)
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
    correct: list[bool] = []
    outputs: list[str] = []
    tokens: list[int] = []
    for prob in it:
        out = engine(prompt_of(prob))
        if isinstance(out, ThoughtResult):
            text, n_tok = out.text, out.generated_tokens
        else:
            text = str(out)
            n_tok = len(text.split())
        outputs.append(text)
        tokens.append(n_tok)
        correct.append(is_correct(text, prob["answer"]))
    return {"accuracy": sum(correct) / len(correct), "n": len(correct),
            "mean_generated_tokens": sum(tokens) / len(tokens), "method": method,
            "correct": correct, "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer prosqa eval --method coconut --data DATA.json [--model NAME_OR_FOLDER] --json``.

    The model defaults to the shipped ``prosqa-<method>`` (``nocot`` and ``no_cot`` are the same)."""
    from ...model import load_model
    from . import VALIDATION
    from .generate import load

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method")
    method = pre.parse_known_args(argv)[0].method
    if method == "recurrent":  # accuracy per iteration count: its own options
        from ...recurrent.train import eval_main

        return eval_main(argv)
    if method == "lcm":  # the Base-LCM reasons in sentence-vector space
        from ...concepts.lcm import main as lcm_main

        return lcm_main(["eval", *argv])
    ap = argparse.ArgumentParser(prog="latent-explorer prosqa eval", description="ProsQA accuracy of a model.")
    ap.add_argument("--method", default="coconut", type=lambda m: m.replace("nocot", "no_cot"),
                    choices=[*METHODS, "recurrent", "lcm"],
                    help="recurrent and lcm have options of their own: see --method recurrent --help")
    ap.add_argument("--data", default=None, help="Coconut-format JSON file (default: the shipped real validation set)")
    ap.add_argument("--model", help="registered name or checkpoint folder (default: prosqa-<method>)")
    ap.add_argument("--n-thoughts", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="evaluate the first N problems only")
    ap.add_argument("--json", action="store_true", help="print only the JSON summary (no progress bar)")
    ap.add_argument("--out", help="also write the full result (per-problem outputs) as JSON here")
    args = ap.parse_args(argv)
    model_name = args.model or "prosqa-" + ("coconut" if args.method == "soft" else args.method.replace("_", ""))
    try:
        from ...models.registry import lookup

        if args.model is None and lookup(model_name) is None:
            raise ModelNotFoundError(f"{model_name} is not shipped yet; train it with `latent-explorer train coconut "
                                     f"RUN_DIR --method {'coconut' if args.method == 'soft' else args.method} ...` "
                                     "(docs/thoughts.md) and pass --model RUN_DIR/latest.")
        res = evaluate(load_model(model_name), load(args.data or VALIDATION), args.method, n_thoughts=args.n_thoughts,
                       limit=args.limit, progress=not args.json)
    except ExplorerError as e:
        print(f"latent-explorer prosqa eval: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    summary = {k: res[k] for k in ("accuracy", "n", "mean_generated_tokens", "method")}
    summary["model"] = model_name
    print(json.dumps(summary))
    if args.out:
        from ...io import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
