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
evenly among them. :func:`frontier_probe` returns the numbers and a plotly figure;
:func:`frontier_share` averages the frontier's share of the node probability over a data set.
The graph search (:func:`~explorer.tasks.prosqa.graph.hop_sets`) and the names' token ids
(:mod:`explorer.tasks.prosqa.tokenizer`) belong to the task.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..tasks.prosqa.graph import hop_sets
from ..tasks.prosqa.tokenizer import node_probabilities, node_token_ids

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
                        by: str = "path") -> dict[str, Any]:
    """Group sums (``frontier``, ``reachable``, ``unreachable``), per-node probabilities, and the
    groups themselves, for one distribution ``probs`` (V,)."""
    per_node = node_probabilities(probs, token_ids)
    groups = node_groups(problem, hops, by=by)
    sums = {g: float(per_node[groups[g]].sum()) if groups[g] else 0.0 for g in GROUPS}
    total = sum(sums.values())
    return {"hops": hops, "sums": sums, "share": (sums["frontier"] / total) if total > 0 else float("nan"),
            "node_prob": per_node.tolist(), "groups": groups}


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
        with every node's probability in the hover text."""
        import plotly.graph_objects as go

        xs = [f"thought.{k}<br>({r['hops']} hops)" for k, r in enumerate(self.rows)]
        colors = {"frontier": "#e45756", "reachable": "#4c78a8", "unreachable": "#bab0ac"}
        fig = go.Figure()
        for g in GROUPS:
            hover = []
            for r in self.rows:
                items = sorted(((r["node_prob"][v], self.names[v]) for v in r["groups"][g]), reverse=True)[:6]
                hover.append("<br>".join(f"{n}: {p:.3f}" for p, n in items) or "(none)")
            fig.add_bar(name=g, x=xs, y=[r["sums"][g] for r in self.rows], marker_color=colors[g],
                        hovertext=hover, hovertemplate="%{x}<br>" + g + " %{y:.3f}<br>%{hovertext}<extra></extra>")
        fig.update_layout(barmode="stack", title="Next-concept probability of graph nodes per thought",
                          yaxis_title="probability", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 60})
        return fig


def frontier_probe(model: Any, problem: dict[str, Any], n_thoughts: int | None = None, *, mode: str = "coconut",
                   hop_offset: int = 1, by: str = "path", result: Any = None, **options: Any) -> FrontierResult:
    """Think on ``problem`` (or use a given :class:`~explorer.thoughts.engine.ThoughtResult`) and
    probe every thought. ``n_thoughts`` defaults to what the checkpoint was trained for."""
    from ..tasks.prosqa.prompts import prompt_of
    from .engine import think
    from .evaluate import default_thoughts

    if result is None:
        n = default_thoughts(model) if n_thoughts is None else n_thoughts
        result = think(model, prompt_of(problem), n, mode, annotate=False, **options)
    traj = result.trajectory
    names = list(problem["idx_to_symbol"])
    tids = node_token_ids(model.tokenizer, names)
    rows = []
    if len(traj):
        logits = model.probe.logits(traj.vectors(), normed=True)
        probs = logits.softmax(-1).cpu().numpy()
        for k in range(len(traj)):
            rows.append(group_probabilities(probs[k], problem, k + hop_offset, tids, by=by))
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
