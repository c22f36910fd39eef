"""ProsQA as semantic decoding: the Base-LCM proposes the next statement, a fact checker vets each
step, and a search over chains of statements answers the question.

A problem becomes a :class:`~explorer.semantic.core.Context` (its statements are the facts) and a
root thought (the question). A thought is a statement; a path is a chain from the question's person.
The fact checker is asked about the statement the chain *asserts* at its last step — that the
current entity (the person, then the class the previous step reached) is a member of the new
statement's class — and answers whether that statement is among the facts; it reads the context, it
does not search it. The goal is a step that reaches one of the question's two options; the answer is
that option. A search that reaches neither answers with the option sentence nearest to its last
thought (the Base-LCM's own fallback).

:func:`solve` runs one algorithm on one problem; :func:`evaluate` on many (answer accuracy, chain
accuracy, valid-chain accuracy, processor calls); :func:`sweep` every algorithm at several widths
(the docs' table and figure); ``latent-explorer semantic eval`` and ``latent-explorer semantic sweep``
are the commands.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..tasks.prosqa.prompts import statement_tail, valid_chain
from .core import Context, SearchTree, Thought
from .processors import FactChecker, LCMProposer, RandomProposer
from .search import ALGORITHMS, run

PROPOSERS = ("lcm", "random")


_CONTEXTS: dict[str, Context] = {}


def context_of(problem: dict[str, Any]) -> Context:
    """The problem as a context (facts, question, root, options, gold steps). Kept per question text,
    so the concept vectors of its facts are encoded once however many searches run on it."""
    from ..concepts.lcm.model import parse_problem

    key = problem["question"] + "\x00" + "\x00".join(problem.get("steps", []))
    if key not in _CONTEXTS:
        if len(_CONTEXTS) > 4096:
            _CONTEXTS.clear()
        p = parse_problem(problem)
        _CONTEXTS[key] = Context(p["question"], list(p["statements"]),
                                 {"root": p["root"], "options": list(p["options"]), "steps": p["steps"],
                                  "answer": p["answer"]})
    return _CONTEXTS[key]


def _vectors(ctx: Context, key: str, texts: list[str], enc: Any) -> np.ndarray:
    if key not in ctx.extra:
        ctx.extra[key] = np.asarray(enc.encode(texts), np.float32)
    return ctx.extra[key]


def claim(path: Sequence[Thought], context: Context) -> str:
    """The statement the last step asserts: the current entity is a member of its class."""
    current = context.extra["root"] if len(path) <= 2 else statement_tail(path[-2].text)
    tail = statement_tail(path[-1].text)
    return f"{current} is a {tail}." if current[:1].isupper() else f"Every {current} is a {tail}."


def goal(path: Sequence[Thought], context: Context) -> bool:
    return len(path) >= 2 and statement_tail(path[-1].text) in context.extra["options"]


@dataclass
class Solved:
    """One problem solved: ``answer`` ("Tom is a wumpus."), ``correct``, ``chain`` (the statements
    of the chosen path), ``chain_correct`` (= the gold steps), ``valid_chain`` (a root→target path of
    the graph), ``calls`` per processor, and the ``tree``."""

    answer: str
    correct: bool
    chain: list[str]
    chain_correct: bool
    valid_chain: bool
    calls: dict[str, int]
    tree: SearchTree

    @property
    def total_calls(self) -> int:
        return int(sum(self.calls.values()))


def solve(problem: dict[str, Any], algorithm: str = "beam", width: int = 3, *, proposer: Any = None,
          tool: bool = True, judge: Any = None, k: int | None = None, max_depth: int = 8, seed: int = 0,
          encoder: Any = None) -> Solved:
    """Answer ``problem`` by ``algorithm`` (:data:`~explorer.semantic.search.ALGORITHMS`) at
    ``width`` with ``proposer`` (default: the Base-LCM), the fact checker when ``tool``, and an
    optional ``judge``."""
    if proposer is None:
        proposer = LCMProposer()
    ctx = context_of(problem)
    enc = encoder or getattr(getattr(proposer, "lcm", None), "encoder", None) or getattr(proposer, "encoder", None)
    if enc is None:
        from ..concepts.encoders import load_encoder

        enc = load_encoder("minilm")
    root = Thought(ctx.question, _vectors(ctx, "question_vector_row", [ctx.question], enc)[0], "question")
    valuers = ([FactChecker(claim)] if tool else []) + ([judge] if judge is not None else [])
    tree = run(algorithm, root, ctx, proposer, goal=goal, valuers=valuers, width=width, k=k, max_depth=max_depth,
               seed=seed)
    path = tree.path(tree.chosen[-1])
    chain = [t.text for t in path[1:]]
    opts = ctx.extra["options"]
    if path[1:] and goal(path, ctx):
        answer = f"{ctx.extra['root']} is a {statement_tail(path[-1].text)}."
    else:   # the option sentence nearest to the last concept (predicted, when the proposer made one)
        last = path[-1].meta.get("predicted", path[-1].vector) if len(path) > 1 else root.vector
        sentences = [f"{ctx.extra['root']} is a {o}." for o in opts]
        ov = _vectors(ctx, "option_vectors", sentences, enc)
        answer = sentences[int(np.argmax(ov @ np.asarray(last, np.float32)))]
    return Solved(answer, answer == problem.get("answer"), chain, chain == ctx.extra["steps"],
                  valid_chain(problem, chain), dict(tree.calls), tree)


def evaluate(problems: Sequence[dict[str, Any]], algorithm: str = "beam", width: int = 3, *, proposer: str | Any = "lcm",
             tool: bool = True, limit: int | None = None, k: int | None = None, max_depth: int = 8, seed: int = 0,
             progress: bool = False) -> dict[str, Any]:
    """Answer, chain and valid-chain accuracy and mean processor calls of one algorithm at one width."""
    items = list(problems)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list.")
    prop = _proposer(proposer, seed)
    it: Any = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc=f"{algorithm} w={width}", unit="problem")
    res = [solve(p, algorithm, width, proposer=prop, tool=tool, k=k, max_depth=max_depth, seed=seed + i)
           for i, p in enumerate(it)]
    n = len(res)
    calls: dict[str, float] = {}
    for r in res:
        for name, c in r.calls.items():
            calls[name] = calls.get(name, 0.0) + c / n
    return {"algorithm": algorithm, "width": width, "proposer": getattr(prop, "name", str(proposer)), "tool": tool,
            "n": n, "accuracy": sum(r.correct for r in res) / n, "chain_accuracy": sum(r.chain_correct for r in res) / n,
            "valid_chain_accuracy": sum(r.valid_chain for r in res) / n,
            "mean_calls": sum(r.total_calls for r in res) / n, "calls": calls}


def _proposer(proposer: str | Any, seed: int) -> Any:
    if not isinstance(proposer, str):
        return proposer
    if proposer not in PROPOSERS:
        raise InputError(f"proposer must be one of {PROPOSERS} (or a Processor), got {proposer!r}.")
    return LCMProposer() if proposer == "lcm" else RandomProposer(seed=seed)


def sweep(problems: Sequence[dict[str, Any]], widths: Sequence[int] = (1, 2, 3, 5), *,
          algorithms: Sequence[str] = ALGORITHMS, proposers: Sequence[str] = PROPOSERS, tools: Sequence[bool] = (True, False),
          limit: int | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Every (algorithm, width, proposer, tool) combination's :func:`evaluate` row."""
    rows = []
    for proposer in proposers:
        prop = _proposer(proposer, 0)
        for tool in tools:
            for algorithm in algorithms:
                for w in widths:
                    rows.append(evaluate(problems, algorithm, w, proposer=prop, tool=tool, limit=limit,
                                         progress=progress))
    return rows


# -- the command line ------------------------------------------------------------------------------------
def eval_main(argv: list[str] | None = None) -> int:
    """``latent-explorer semantic eval [--algorithm beam] [--width 3] [--proposer lcm|random] [--no-tool]
    [--limit N] [--data FILE] [--out FILE]``: one JSON line of accuracies and calls."""
    from ..commands import report
    from ..tasks.prosqa import VALIDATION
    from ..tasks.prosqa.generate import load

    ap = argparse.ArgumentParser(prog="latent-explorer semantic eval", description=eval_main.__doc__)
    ap.add_argument("--algorithm", default="beam", choices=ALGORITHMS)
    ap.add_argument("--width", type=int, default=3)
    ap.add_argument("--k", type=int, default=None, help="proposals per expansion (default: the width)")
    ap.add_argument("--proposer", default="lcm", choices=PROPOSERS)
    ap.add_argument("--no-tool", action="store_true", help="search without the fact checker")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data", default=None, help="Coconut-format JSON (default: the real validation set)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    def go() -> tuple[dict[str, Any], dict[str, Any]]:
        r = evaluate(load(args.data or VALIDATION), args.algorithm, args.width, proposer=args.proposer,
                     tool=not args.no_tool, limit=args.limit, k=args.k, progress=False)
        return r, r

    return report(go, prog="latent-explorer semantic eval", out=args.out)


def sweep_main(argv: list[str] | None = None) -> int:
    """``latent-explorer semantic sweep [--widths 1,2,3,5] [--limit N] [--out FILE.json] [--figure FILE.png]``:
    every algorithm at every width, with the LCM and with random proposals, with and without the tool."""
    from ..tasks.prosqa import VALIDATION
    from ..tasks.prosqa.generate import load

    ap = argparse.ArgumentParser(prog="latent-explorer semantic sweep", description=sweep_main.__doc__)
    ap.add_argument("--widths", default="1,2,3,5")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--proposers", default=",".join(PROPOSERS), help="comma-separated: lcm,random")
    ap.add_argument("--tools", default="on,off", help="comma-separated: on (with the fact checker), off")
    ap.add_argument("--out", default=None, help="write the rows as JSON")
    args = ap.parse_args(argv)
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        print("latent-explorer semantic sweep: --widths is a comma-separated list of whole numbers", flush=True)
        return 2
    tools = [t.strip() == "on" for t in args.tools.split(",") if t.strip()]
    rows = sweep(load(args.data or VALIDATION), widths, proposers=[p.strip() for p in args.proposers.split(",")],
                 tools=tools, limit=args.limit, progress=True)
    if args.out:
        from pathlib import Path

        from ..io import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(rows, indent=1))
    for r in rows:
        print(json.dumps({k: r[k] for k in ("algorithm", "width", "proposer", "tool", "accuracy", "chain_accuracy",
                                             "valid_chain_accuracy", "mean_calls")}))
    return 0
