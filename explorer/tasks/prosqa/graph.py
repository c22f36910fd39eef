"""The graph search of ProsQA, written once: a problem is a directed graph (``edges`` [a, b] from a
node to the concept it is), and every question about it is answered by one breadth-first search.

* :func:`distances` — shortest hop counts from one node to every node it reaches (itself: 0).
* :func:`hop_sets` — per hop h, the nodes at the end of some path of exactly h edges from the
  root (the frontier the Coconut paper's probe reads), and the root's distances.
* :func:`reach_sets` — for every node with a statement, the nodes it reaches and how far.

The generator (:mod:`.generate`), the compact format (:mod:`.compact`), the shortcut audit
(:mod:`.audit`) and the methods' probes and evaluators all use these.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Sequence


def adjacency(n: int, edges: Sequence[Sequence[int]]) -> list[list[int]]:
    """Successor lists of the ``n`` nodes, in the order ``edges`` names them."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
    return adj


def distances(n: int, edges: Sequence[Sequence[int]], source: int,
              adj: Sequence[Sequence[int]] | None = None) -> dict[int, int]:
    """Breadth-first shortest hop counts from ``source`` to every node it reaches (itself: 0);
    ``adj``: the graph's :func:`adjacency`, where the caller searches from many sources."""
    adj = adjacency(n, edges) if adj is None else adj
    dist = {source: 0}
    queue = deque([source])
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def cycle(n: int, edges: Sequence[Sequence[int]]) -> list[int] | None:
    """The nodes of one directed cycle (first node repeated at the end), or None for a DAG."""
    adj = adjacency(n, edges)
    state = [0] * n                    # 0 unseen, 1 on the current path, 2 done
    for s in range(n):
        if state[s]:
            continue
        path, iters = [s], [iter(adj[s])]
        state[s] = 1
        while path:
            v = next(iters[-1], None)
            if v is None:
                state[path.pop()] = 2
                iters.pop()
            elif state[v] == 1:
                return path[path.index(v):] + [v]
            elif state[v] == 0:
                state[v] = 1
                path.append(v)
                iters.append(iter(adj[v]))
    return None


def hop_sets(problem: dict[str, Any], max_hops: int) -> tuple[list[set[int]], dict[int, int]]:
    """(walks, dist): ``walks[h]`` = nodes at the end of some path of exactly h edges from the root
    (h = 0..max_hops); ``dist`` = shortest hop counts of the nodes the root reaches."""
    n = len(problem["idx_to_symbol"])
    adj = adjacency(n, problem["edges"])
    root = int(problem["root"])
    walks = [{root}]
    for _ in range(max_hops):
        walks.append({v for u in walks[-1] for v in adj[u]})
    return walks, distances(n, problem["edges"], root, adj)


def reach_sets(problem: dict[str, Any], max_hops: int | None = None) -> dict[int, dict[int, int]]:
    """For every node with a statement: {node it reaches in 1..max_hops hops: shortest hop count}."""
    n = len(problem["idx_to_symbol"])
    edges = [tuple(e) for e in problem["edges"]]
    subjects = sorted({a for a, _ in edges})
    adj = adjacency(n, edges)
    out = {}
    for s in subjects:
        d = distances(n, edges, s, adj)
        out[s] = {v: h for v, h in d.items() if h >= 1 and (not max_hops or h <= max_hops)}
    return out
