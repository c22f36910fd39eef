"""The frontier probe (Coconut paper, §5): do continuous thoughts hold several next concepts at once?

For a ProsQA problem and each thought ``thought.{k}``, read the model's next-token distribution
from the thought (its vector is already after the final norm) and take the probability of every
graph node as the next concept — the probability of the first token of the node's name (as it
appears mid-sentence, after a space). Nodes are grouped into

``frontier``
    nodes reachable from the root in exactly ``k + hop_offset`` hops (``hop_offset=1``: the
    first thought ``thought.0`` looks one hop ahead). ``by="path"``: some path of exactly that
    length exists; ``by="distance"``: the shortest path has that length.
``reachable``
    the other nodes reachable from the root.
``unreachable``
    nodes the root cannot reach.

The root itself is left out. When several nodes share a first token, its probability is split
evenly among them. Beside the probability, each node gets the inner product of the thought with
its input embedding (the superposition paper's second reading, Table 5), and the node of the
reasoning path at that hop (``path``) is reported on its own. Models that read graph tokens
(:mod:`explorer.tasks.prosqa.graph_tokens`) are probed the same way: every node is one token.
:func:`frontier_probe` returns the numbers (``.figure()`` draws them); :func:`frontier_share` averages
the frontier's share of the node probability over a data set, and :func:`frontier_table` every
group's probability and inner product per thought and per hop count of the problems
(:func:`explorer.plots.frontier_figure` draws it).
The graph search (:func:`~explorer.tasks.prosqa.graph.hop_sets`) and the names' token ids
(:mod:`explorer.tasks.prosqa.tokenizer`) belong to the task.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..tasks.prosqa.graph import hop_sets
from ..tasks.prosqa.graph_tokens import reasoning_path
from ..tasks.prosqa.prompts import is_correct_for, node_ids_for, prompt_for
from ..tasks.prosqa.tokenizer import node_probabilities

GROUPS = ("frontier", "reachable", "unreachable")


def node_groups(problem: dict[str, Any], hops: int, *, by: str = "path") -> dict[str, list[int]]:
    """The nodes of each group (see the module docs) for the concept ``hops`` steps from the root."""
    if by not in ("path", "distance"):
        raise InputError(f"by must be 'path' or 'distance', got {by!r}.")
    walks, dist = hop_sets(problem, max(hops, 0))
    root = int(problem["root"])
    frontier = walks[hops] if by == "path" else {v for v, d in dist.items() if d == hops}
    frontier = frontier - {root}
    n = len(problem["idx_to_symbol"])
    return {"frontier": sorted(frontier),
            "reachable": sorted(v for v in dist if v != root and v not in frontier),
            "unreachable": sorted(v for v in range(n) if v not in dist)}


def group_probabilities(probs: np.ndarray, problem: dict[str, Any], hops: int, token_ids: Sequence[int], *,
                        by: str = "path", inner: np.ndarray | None = None) -> dict[str, Any]:
    """Group sums (``frontier``, ``reachable``, ``unreachable``), per-node probabilities, and the
    groups themselves, for one distribution ``probs`` (V,). With ``inner`` (one inner product per
    node) also each group's mean inner product (``inner_means``). ``path_prob`` / ``path_inner``:
    the reasoning path's node at ``hops`` (NaN past the path's end); ``options``: the probability of
    the right option and of the other one."""
    return group_masses(node_probabilities(probs, token_ids), problem, hops, by=by, inner=inner)


def group_masses(per_node: np.ndarray, problem: dict[str, Any], hops: int, *, by: str = "path",
                 inner: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`group_probabilities` from each node's probability (``per_node``, in ``idx_to_symbol``
    order) instead of a whole next-token distribution."""
    per_node = np.asarray(per_node, dtype=np.float64)
    groups = node_groups(problem, hops, by=by)
    sums = {g: float(per_node[groups[g]].sum()) if groups[g] else 0.0 for g in GROUPS}
    total = sum(sums.values())
    path = reasoning_path(problem)
    on_path = path[hops - 1] if 1 <= hops <= len(path) else None
    out = {"hops": hops, "sums": sums, "share": (sums["frontier"] / total) if total > 0 else float("nan"),
           "node_prob": per_node.tolist(), "groups": groups,
           "path_prob": float(per_node[on_path]) if on_path is not None else float("nan"),
           "options": (float(per_node[int(problem["target"])]), float(per_node[int(problem["neg_target"])]))}
    if inner is not None:
        out["node_inner"] = [float(x) for x in inner]
        out["inner_means"] = {g: float(np.mean(inner[groups[g]])) if groups[g] else float("nan") for g in GROUPS}
        out["path_inner"] = float(inner[on_path]) if on_path is not None else float("nan")
    return out


@dataclass
class FrontierResult:
    """The frontier probe of one problem: ``rows`` has one dict per thought (see
    :func:`group_probabilities`), ``names`` the node names."""

    rows: list[dict[str, Any]]
    names: list[str]
    answer: str = ""

    def table(self) -> list[dict[str, Any]]:
        """Long format: one record per thought × node (thought, hops, node, name, group, prob)."""
        out = []
        for k, r in enumerate(self.rows):
            group_of = {v: g for g in GROUPS for v in r["groups"][g]}
            for v, p in enumerate(r["node_prob"]):
                if v in group_of:
                    out.append({"thought": f"thought.{k}", "hops": r["hops"], "node": v, "name": self.names[v],
                                "group": group_of[v], "prob": p})
        return out

    def sums(self) -> np.ndarray:
        """(n_thoughts, 3) group sums in :data:`GROUPS` order."""
        return np.array([[r["sums"][g] for g in GROUPS] for r in self.rows])

    def figure(self):
        """Stacked bars per thought: probability of frontier / other reachable / unreachable nodes,
        with every node's probability in the hover text (:func:`explorer.plots.frontier_probe_figure`)."""
        from ..plots import frontier_probe_figure

        return frontier_probe_figure(self, GROUPS)


def node_inner(model: Any, vecs: Any, token_ids: Sequence[int]) -> np.ndarray:
    """(steps, nodes): each vector's inner product with each node's input embedding (the
    superposition paper's second reading of a thought)."""
    emb = np.asarray(model.input_embeddings()[list(token_ids)], dtype=np.float64)
    v = np.asarray(vecs, dtype=np.float64)
    return v @ emb.T if len(v) else np.zeros((0, len(token_ids)))


def frontier_probe(model: Any, problem: dict[str, Any], n_thoughts: int | None = None, *, mode: str = "coconut",
                   hop_offset: int = 1, by: str = "path", result: Any = None, **options: Any) -> FrontierResult:
    """Think on ``problem`` (or use a given :class:`~explorer.thoughts.engine.ThoughtResult`) and
    probe every thought. ``n_thoughts`` defaults to what the checkpoint was trained for."""
    from .engine import think
    from .evaluate import default_thoughts

    if result is None:
        n = default_thoughts(model) if n_thoughts is None else n_thoughts
        result = think(model, prompt_for(model.tokenizer, problem), n, mode, annotate=False, **options)
    traj = result.trajectory
    names = list(problem["idx_to_symbol"])
    tids = node_ids_for(model.tokenizer, problem)
    rows = []
    if len(traj):
        vecs = traj.vectors()
        probs = model.probe.logits(vecs, normed=True).softmax(-1).cpu().numpy()
        inner = node_inner(model, vecs, tids)
        for k in range(len(traj)):
            rows.append(group_probabilities(probs[k], problem, k + hop_offset, tids, by=by, inner=inner[k]))
    return FrontierResult(rows, names, result.answer)


def frontier_share(model: Any, data: Sequence[dict[str, Any]], n_thoughts: int | None = None, *,
                   limit: int | None = None, **kw: Any) -> dict[str, Any]:
    """Averages over problems, per thought: the frontier's share of the node probability
    (``share``, NaN-skipping) and each group's probability (``sums``: (n_thoughts, 3))."""
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems; pass a non-empty list.")
    shares, sums = [], []
    for prob in items:
        r = frontier_probe(model, prob, n_thoughts, **kw)
        shares.append([row["share"] for row in r.rows])
        sums.append(r.sums())
    width = max(len(s) for s in shares)
    S = np.full((len(items), width), np.nan)
    G = np.full((len(items), width, len(GROUPS)), np.nan)
    for i, (s, g) in enumerate(zip(shares, sums)):
        S[i, : len(s)] = s
        if len(s):
            G[i, : len(s)] = g
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"share": np.nanmean(S, 0), "sums": np.nanmean(G, 0), "n": len(items), "groups": GROUPS}


def frontier_table(model: Any, data: Sequence[dict[str, Any]], n_thoughts: int | None = None, *,
                   limit: int | None = None, **kw: Any) -> dict[str, Any]:
    """The frontier measured as in Coconut's Fig. 5 and the superposition paper's Table 5: for each
    hop count of the problems (their reasoning path's length) and each thought k, the mean over
    problems of every group's summed next-token probability (``prob``), of its mean inner product
    with the node embeddings (``inner``), and of the path node's (``path``); beside them, per
    thought, the share of problems where the right option is more probable than the other
    (``right_option``: where the answer could be read off the thought) and the share the model
    answers right (``answer``). Returns ``{"by_hops": {h: {"n": problems, "prob": {group: [per
    thought]}, "inner": {...}, "right_option": [...], "answer": float}}, "groups": ...}`` with groups
    ``frontier``, ``reachable``, ``unreachable`` and ``path``."""
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems; pass a non-empty list.")
    results = [frontier_probe(model, prob, n_thoughts, **kw) for prob in items]
    return tabulate(results, items, [is_correct_for(model.tokenizer, r.answer, p) for r, p in zip(results, items)])


def tabulate(results: Sequence[FrontierResult], problems: Sequence[dict[str, Any]], correct: Sequence[bool], *,
             step: str = "thought", start: int = 0) -> dict[str, Any]:
    """The table of :func:`frontier_table` from one :class:`FrontierResult` per problem (and whether
    the model answered it right), whatever made them: ``step`` names a row of the results
    (``"thought"``; ``"iteration"`` for a recurrent core) and ``start`` the first one's number."""
    if not (len(results) == len(problems) == len(correct)) or not results:
        raise InputError("pass one result and one verdict per problem, for at least one problem.")
    acc: dict[int, list[int]] = {}
    for i, prob in enumerate(problems):
        acc.setdefault(len(prob.get("steps", [])), []).append(i)
    keys = (*GROUPS, "path")

    def mean(rows: list[list[float]]) -> list[float | None]:
        width = max((len(r) for r in rows), default=0)
        m = np.full((len(rows), width), np.nan)
        for i, r in enumerate(rows):
            m[i, : len(r)] = r
        with np.errstate(all="ignore"):
            col = [m[:, j][~np.isnan(m[:, j])] for j in range(width)]
        return [float(c.mean()) if len(c) else None for c in col]

    out: dict[int, Any] = {}
    for h, ix in sorted(acc.items()):
        rows = [results[i].rows for i in ix]
        prob = {g: mean([[r["sums"][g] if g != "path" else r["path_prob"] for r in rs] for rs in rows]) for g in keys}
        inner = {g: mean([[r["inner_means"][g] if g != "path" else r["path_inner"] for r in rs] for rs in rows])
                 for g in keys}
        right = mean([[float(r["options"][0] > r["options"][1]) for r in rs] for rs in rows])
        out[h] = {"n": len(ix), "prob": prob, "inner": inner, "right_option": right,
                  "answer": float(np.mean([bool(correct[i]) for i in ix]))}
    return {"by_hops": out, "groups": keys, "n": len(problems), "step": step, "start": start}
