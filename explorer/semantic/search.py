"""Decoding algorithms over thoughts. Each grows a :class:`~explorer.semantic.core.SearchTree` from a
root thought with a proposer, judges candidates with ``valuers`` (tools and judges), and stops at a
``goal``; the tree logs every call, the pruned branches and the chosen path.

A candidate's value is its proposer's prior (``meta["prior"]``, e.g. a cosine) times the value of
every valuer; a value of 0 (a tool's "no") prunes it. A path's score is the sum of the log values
along it.

* :func:`greedy` — one path: at each step the first of ``k`` proposals that no valuer rejects.
* :func:`best_of_n` — ``n`` paths, each step drawn from ``k`` proposals in proportion to
  exp(prior / temperature); the best path that reaches the goal wins.
* :func:`beam` — keep the ``width`` best-scoring paths; expand each by ``k`` proposals per step.
* :func:`tot_bfs` — Tree-of-Thoughts breadth-first search: expand every kept node by ``k``
  proposals, judge each new thought, keep the ``breadth`` best thoughts of the level.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Sequence

from ..errors import InputError
from .core import Context, Processor, SearchTree, Thought

Goal = Callable[[Sequence[Thought], Context], bool]
ALGORITHMS = ("greedy", "best_of_n", "beam", "tot_bfs")


def _judge(tree: SearchTree, node: int, valuers: Sequence[Processor], context: Context) -> float:
    v = float(tree.nodes[node].meta.get("prior", 1.0))
    for proc in valuers:
        verdict = tree.call(proc, [node], context, 1)
        v *= float(verdict[0].value) if verdict and verdict[0].value is not None else 1.0
        if v <= 0:
            break
    tree.set_value(node, v)
    if v <= 0:
        tree.prune(node)
    return v


def _score(tree: SearchTree, node: int) -> float:
    return sum(math.log(max(t.value if t.value is not None else 1.0, 1e-6)) for t in tree.path(node)[1:])


def _finish(tree: SearchTree, goals: list[int], fallback: int) -> SearchTree:
    tree.choose(max(goals, key=lambda g: _score(tree, g)) if goals else fallback)
    return tree


def _expand(tree: SearchTree, nodes: Sequence[int], proposer: Processor, k: int, valuers: Sequence[Processor],
            context: Context) -> list[int]:
    """Ask for ``k`` proposals after each of ``nodes``; the new thoughts no valuer rejected."""
    kept = []
    for node in nodes:
        for c in tree.call(proposer, [node], context, k):
            i = tree.add(c, node)
            if _judge(tree, i, valuers, context) > 0:
                kept.append(i)
    return kept


def _check(k: int, max_depth: int, **more: int) -> None:
    bad = {n: v for n, v in {"k": k, "max_depth": max_depth, **more}.items() if v < 1}
    if bad:
        raise InputError(f"{', '.join(bad)} must be >= 1, got {bad}.")


def greedy(root: Thought, context: Context, proposer: Processor, *, goal: Goal, valuers: Sequence[Processor] = (),
           k: int = 1, max_depth: int = 8) -> SearchTree:
    _check(k, max_depth)
    tree, cur = SearchTree(root), 0
    for _ in range(max_depth):
        ids = [tree.add(c, cur) for c in tree.call(proposer, [cur], context, k)]
        nxt = next((i for i in ids if _judge(tree, i, valuers, context) > 0), None)
        if nxt is None:
            break
        cur = nxt
        if goal(tree.path(cur), context):
            return _finish(tree, [cur], cur)
    return _finish(tree, [], cur)


def best_of_n(root: Thought, context: Context, proposer: Processor, *, goal: Goal, valuers: Sequence[Processor] = (),
              n: int = 4, k: int = 3, max_depth: int = 8, temperature: float = 0.1, seed: int = 0) -> SearchTree:
    _check(k, max_depth, n=n)
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}.")
    rng = random.Random(seed)
    tree, goals, last = SearchTree(root), [], 0
    for _ in range(n):
        cur = 0
        for _ in range(max_depth):
            cands = tree.call(proposer, [cur], context, k)
            if not cands:
                break
            w = [math.exp(float(c.meta.get("prior", 1.0)) / temperature) for c in cands]
            pick = tree.add(rng.choices(cands, weights=w)[0], cur)
            if _judge(tree, pick, valuers, context) <= 0:
                break
            cur = pick
            if goal(tree.path(cur), context):
                goals.append(cur)
                break
        last = cur if tree.depth(cur) >= tree.depth(last) else last
    return _finish(tree, goals, last)


def beam(root: Thought, context: Context, proposer: Processor, *, goal: Goal, valuers: Sequence[Processor] = (),
         width: int = 3, k: int = 3, max_depth: int = 8) -> SearchTree:
    _check(k, max_depth, width=width)
    tree, beams = SearchTree(root), [0]
    for _ in range(max_depth):
        new = _expand(tree, beams, proposer, k, valuers, context)
        if not new:
            break
        new.sort(key=lambda i: _score(tree, i), reverse=True)
        for i in new[width:]:
            tree.prune(i)
        beams = new[:width]
        goals = [i for i in beams if goal(tree.path(i), context)]
        if goals:
            return _finish(tree, goals, beams[0])
    return _finish(tree, [], beams[0])


def tot_bfs(root: Thought, context: Context, proposer: Processor, *, goal: Goal, valuers: Sequence[Processor] = (),
            breadth: int = 3, k: int = 3, max_depth: int = 8) -> SearchTree:
    _check(k, max_depth, breadth=breadth)
    tree, level = SearchTree(root), [0]
    for _ in range(max_depth):
        new = _expand(tree, level, proposer, k, valuers, context)
        if not new:
            break
        goals = [i for i in new if goal(tree.path(i), context)]
        if goals:
            return _finish(tree, goals, goals[0])
        new.sort(key=lambda i: tree.nodes[i].value or 0.0, reverse=True)   # the state's own value
        for i in new[breadth:]:
            tree.prune(i)
        level = new[:breadth]
    return _finish(tree, [], level[0])


def run(algorithm: str, root: Thought, context: Context, proposer: Processor, *, goal: Goal,
        valuers: Sequence[Processor] = (), width: int = 3, k: int | None = None, max_depth: int = 8,
        seed: int = 0) -> SearchTree:
    """Run ``algorithm`` by name with one width parameter: greedy's ``k`` proposals a step, best-of-n's
    ``n``, beam's ``width``, ToT-BFS's ``breadth`` (``k``: proposals per expansion, default = width)."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
    k = k or width
    if algorithm == "greedy":
        return greedy(root, context, proposer, goal=goal, valuers=valuers, k=k, max_depth=max_depth)
    if algorithm == "best_of_n":
        return best_of_n(root, context, proposer, goal=goal, valuers=valuers, n=width, k=k, max_depth=max_depth,
                         seed=seed)
    if algorithm == "beam":
        return beam(root, context, proposer, goal=goal, valuers=valuers, width=width, k=k, max_depth=max_depth)
    return tot_bfs(root, context, proposer, goal=goal, valuers=valuers, breadth=width, k=k, max_depth=max_depth)
