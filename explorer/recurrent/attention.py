"""What the core's lookup reads: the attention a question gives the graph's edges, per iteration.

A graph-token recurrent model answers ``… [R] root`` by gathering, one iteration a hop, the nodes
the root reaches. Its core attends from the question's last token (where the answer is read) to
the statements ``s t |``; iteration r should follow the edges that leave the nodes within r − 1 hops
of the root (the root's own edges at r = 1), whose target tokens carry the nodes to add.
:func:`edge_attention` measures, per iteration and head of the core's first block, the attention
on those edges' target tokens and on every other edge's: how precisely the lookup separates the
edges to follow from the rest, which bounds how cleanly the model can hold the reach set.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..tasks.prosqa import graph_tokens
from ..tasks.prosqa.graph import distances
from .data import reach_prompt
from .engine import initial_states


def target_positions(problem: dict[str, Any]) -> list[tuple[int, int]]:
    """(source node, position of the edge's target token) for every statement, in the order the
    question states them: graph tokens write ``<eos> s t | s t | …``, so edge k's target sits at
    position 2 + 3k."""
    return [(int(a), 2 + 3 * k) for k, (a, _) in enumerate(graph_tokens.question_edges(problem))]


@torch.inference_mode()
def edge_attention(model: Any, problems: Sequence[dict[str, Any]], iterations: int = 6, *,
                   seed: int = 0) -> dict[str, Any]:
    """For a :class:`~explorer.recurrent.engine.RecurrentModel`: per core iteration r = 1 …
    ``iterations`` and per head of the core's first block, the mean over ``problems`` of the
    attention the question's last token gives to the target tokens of the edges iteration r should
    follow (``followed``, (iterations, heads)) and to those of every other edge (``other``); the
    rest of each head's attention falls on other tokens. The initial states are the engine's
    (``seed``). Graph-token models only (``--encoding graph``)."""
    hf, tok = model.hf, model.tokenizer
    if not graph_tokens.is_graph_tokenizer(tok):
        raise InputError("edge_attention reads graph-token models (trained with --encoding graph); this model's "
                         "tokenizer speaks words.")
    if not problems or iterations < 1:
        raise InputError("pass at least one problem and iterations >= 1.")
    hf.eval()
    block = hf.transformer.core_block[0]
    followed = np.zeros((iterations, hf.config.n_heads))
    other = np.zeros_like(followed)
    dev = hf.transformer.wte.weight.device
    for p in problems:
        ids = torch.tensor([reach_prompt(tok, p)], device=dev)
        T = ids.shape[1]
        hops = distances(len(p["idx_to_symbol"]), [tuple(e) for e in p["edges"]], int(p["root"]))
        edges = target_positions(p)
        e = hf.prelude(hf.embed(ids))
        table = hf.rotary_for(T)
        x = initial_states(hf, T, seed)
        for r in range(iterations):
            w = block.attn.weights(block.norm_1(hf.core_input(x, e)), table)[0, :, -1].cpu().numpy()  # (H, T)
            go = [t for s, t in edges if hops.get(s, iterations + 1) <= r]
            rest = [t for s, t in edges if hops.get(s, iterations + 1) > r]
            followed[r] += w[:, go].sum(-1)
            other[r] += w[:, rest].sum(-1)
            x = hf.core_step(x, e)
    n = len(problems)
    return {"followed": followed / n, "other": other / n, "iterations": list(range(1, iterations + 1)), "n": n}
