"""Synthetic data for trying the widgets without a model (docs, tests, browser tests).

Nothing here is a model: vectors are hand-made or drawn from numpy with a fixed seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from explorer.errors import InputError
from explorer.trajectory import Step, TokenTable, Trajectory

if TYPE_CHECKING:
    from explorer.graph_runs import GraphRun

# axes: royalty, male(+)/female(-), person, young, fruit, colour
_WORDS = {
    "king": [1, 1, 1, 0, 0, 0], "queen": [1, -1, 1, 0, 0, 0], "man": [0, 1, 1, 0, 0, 0],
    "woman": [0, -1, 1, 0, 0, 0], "prince": [1, 1, 1, 1, 0, 0], "princess": [1, -1, 1, 1, 0, 0],
    "boy": [0, 1, 1, 1, 0, 0], "girl": [0, -1, 1, 1, 0, 0], "apple": [0, 0, 0, 0, 1, 0.3],
    "banana": [0, 0, 0, 0, 1, 0.5], "red": [0, 0, 0, 0, 0.2, 1], "yellow": [0, 0, 0, 0, 0.3, 1],
    "throne": [0.9, 0, 0, 0, 0, 0.1], "child": [0, 0, 1, 1, 0, 0],
}
_VOCAB = [" the", " of", " is", " Paris", " France", " capital", " city", " London", " and", " a",
          " Lyon", " French", " country", " Europe", " in", " to", "\n", " it", " was", " Berlin"]


@dataclass
class DemoSpace:
    """A tiny :class:`explorer.arithmetic.TokenSpace`: a handful of words with hand-made 6-d vectors."""

    name: str = "demo-words"
    words: dict[str, np.ndarray] = field(default_factory=lambda: {w: np.asarray(v, np.float32) for w, v in _WORDS.items()})

    def encode(self, text: str) -> np.ndarray:
        parts = text.strip().split()
        if not parts:
            raise InputError("empty text; type a word.")
        unknown = [p for p in parts if p.lower() not in self.words]
        if unknown:
            raise InputError(f"unknown word(s) {unknown}; the demo space knows {sorted(self.words)}.")
        return np.mean([self.words[p.lower()] for p in parts], axis=0).astype(np.float32)

    def nearest(self, vec: np.ndarray, k: int = 10, exclude: Sequence[str] = ()) -> TokenTable:
        ex = {e.strip().lower() for e in exclude}
        names = [w for w in self.words if w not in ex]
        m = np.stack([self.words[w] for w in names])
        v = np.asarray(vec, np.float32).reshape(-1)
        cos = m @ v / (np.linalg.norm(m, axis=1) * max(float(np.linalg.norm(v)), 1e-12))
        order = np.argsort(-cos, kind="stable")[:k]
        ids = [list(self.words).index(names[i]) for i in order]
        return TokenTable(tuple(names[i] for i in order), tuple(ids), tuple(float(cos[i]) for i in order),
                          space="input", score_name="cos")

    def matrix(self) -> tuple[list[str], np.ndarray]:
        return list(self.words), np.stack(list(self.words.values()))


def _table(rng: np.random.Generator, k: int, space: str, peak: float) -> TokenTable:
    ids = rng.choice(len(_VOCAB), k, replace=False)
    if space == "output":
        raw = np.sort(rng.dirichlet(np.full(k, 1.0 / max(peak, 1e-3))))[::-1]
        scores, name = raw * (0.5 + 0.5 * peak), "prob"
    else:
        scores, name = np.sort(rng.uniform(0.05, 0.3 + 0.6 * peak, k))[::-1], "cos"
    return TokenTable(tuple(_VOCAB[i] for i in ids), tuple(int(i) for i in ids),
                      tuple(float(s) for s in scores), space=space, score_name=name)


def demo_trajectory(n: int = 24, d: int = 64, k: int = 8, seed: int = 0, kind: str = "layers") -> Trajectory:
    """A smooth random walk of ``n`` steps named ``layer.{i}`` with output/input probes and scalars."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(0, 1, d)
    x = np.cumsum(rng.normal(0, 0.6, (n, d)) + drift * 0.4, axis=0).astype(np.float32)
    steps = []
    for i in range(n):
        peak = (i + 1) / n
        out, inp = _table(rng, k, "output", peak), _table(rng, k, "input", peak)
        p = np.asarray(out.scores)
        ent = float(-(p * np.log(np.clip(p, 1e-12, 1))).sum() + (1 - p.sum()) * 3.0)
        name = f"layer.{i}"
        steps.append(Step(name, out.top, {name: x[i]}, scalars={"entropy": ent},
                          probes={"output": out, "input": inp}))
    tr = Trajectory(steps, kind=kind, space="demo", title=f"demo trajectory ({n} steps)")
    tr.with_dynamics()
    for i, s in enumerate(tr.steps):
        s.scalars["kl_prev"] = float("nan") if i == 0 else abs(s.scalars["entropy"] - tr.steps[i - 1].scalars["entropy"])
    return tr


@dataclass
class DemoLens:
    """Same attributes as ``explorer.LogitLens`` with synthetic numbers (sharper with depth)."""

    points: list[str]
    tokens: list[str]
    k: int
    top_ids: np.ndarray
    top_probs: np.ndarray
    top_tokens: list[list[list[str]]]
    entropy: np.ndarray
    target_rank: np.ndarray | None = None

    def top(self, point: str, pos: int) -> TokenTable:
        p = self.points.index(point)
        return TokenTable(tuple(self.top_tokens[p][pos]), tuple(int(i) for i in self.top_ids[p, pos]),
                          tuple(float(x) for x in self.top_probs[p, pos]), space="output", score_name="prob")


def demo_lens(n_layers: int = 8, tokens: Sequence[str] = ("The", " capital", " of", " France", " is"),
              k: int = 5, d: int = 32, seed: int = 0) -> tuple[DemoLens, dict[str, np.ndarray]]:
    """A synthetic lens plus a trace-like dict ``{point: (T, d) array}`` for its map."""
    rng = np.random.default_rng(seed)
    points = ["embed"] + [f"layer.{i}" for i in range(n_layers)] + ["final"]
    P, T = len(points), len(tokens)
    ids = np.stack([[rng.choice(len(_VOCAB), k, replace=False) for _ in range(T)] for _ in range(P)]).astype(np.int64)
    ids[-3:, -1, 0] = _VOCAB.index(" Paris")  # the last positions learn the answer late
    ids[-3:, -1, 1:] = [i for i in range(len(_VOCAB)) if i != _VOCAB.index(" Paris")][: k - 1]
    depth = np.linspace(0.05, 0.95, P)[:, None, None]
    raw = rng.dirichlet(np.ones(k), size=(P, T)) * (1 - depth) + depth * np.eye(k)[0]
    probs = np.sort(raw * rng.uniform(0.6, 1.0, (P, T, 1)), axis=-1)[..., ::-1].astype(np.float32)
    top_tokens = [[[_VOCAB[i] for i in ids[p, t]] for t in range(T)] for p in range(P)]
    ent = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(-1).astype(np.float32)
    rank = np.where(ids[..., 0] == _VOCAB.index(" Paris"), 0, rng.integers(1, 50, (P, T)))
    lens = DemoLens(points, list(tokens), k, ids, probs, top_tokens, ent, rank)
    base = rng.normal(0, 1, (T, d))
    trace = {p: (base + np.cumsum(rng.normal(0, 0.5, (1, d)), 0) * (j + 1) * 0.4).astype(np.float32)
             for j, p in enumerate(points)}
    return lens, trace


__all__ = ["DemoSpace", "DemoLens", "demo_trajectory", "demo_lens"]


def demo_graph_run(problem: dict, engine: str = "coconut", steps: int = 6, seed: int = 0, d: int = 32) -> "GraphRun":
    """A made-up :class:`~explorer.graph_runs.GraphRun` on a real ``problem``: step k's probability is
    spread over the BFS frontier (coconut: the nodes k+1 hops out; recurrent: iteration r, r hops;
    cot: the reasoning path's node), plus noise; the answer is the target. For the browser tests and
    the UI benchmark; no model involved."""
    from explorer.graph_runs import GraphRun
    from explorer.tasks.prosqa.graph import hop_sets
    from explorer.tasks.prosqa.graph_tokens import reasoning_path

    rng = np.random.default_rng(seed)
    n = len(problem["idx_to_symbol"])
    S = steps + 1 if engine == "recurrent" else steps
    hops = [None, *range(1, steps + 1)] if engine == "recurrent" else [k + 1 for k in range(steps)]
    walks, _ = hop_sets(problem, steps + 1)
    path = reasoning_path(problem)
    prob = np.zeros((S, n))
    for i, h in enumerate(hops):
        if engine == "cot":
            nodes = [path[min(i, len(path) - 1)]]
        else:
            nodes = sorted(walks[h]) if h is not None and walks[h] else list(range(n))
        prob[i, nodes] = 0.8 / len(nodes)
        prob[i] += 0.2 * rng.dirichlet(np.ones(n))
    inner = 4 * prob + rng.normal(0, 0.3, (S, n))
    traj = Trajectory.from_vectors(rng.normal(0, 1, (S, d)).astype(np.float32), prefix="thought" if engine != "recurrent" else "iter",
                                   kind="thoughts", title=f"demo {engine}")
    return GraphRun(problem, engine, f"demo-{engine}", traj, prob, inner, hops,
                    problem["idx_to_symbol"][int(problem["target"])], True)
