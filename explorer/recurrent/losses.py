"""The recurrent-depth training losses and the per-step recurrence draw (Huginn's recipe).

:func:`reach_loss`: cross-entropy against the uniform distribution over the concepts a question
reaches (the ``"reach"`` task), with two optional terms aimed at the answer, which is read by
comparing two options' scores: the mass outside the reach set (``unreached_weight``) and the soft
margin between the lowest-scored reached concept and the highest-scored other one
(``separation_weight``); :func:`iteration_loss`: the same after every iteration with
gradient, iteration j taught the concepts within j hops (``supervise="iterations"``);
:func:`recurrence_draw`: how many iterations a training step runs without and with gradient.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..training.losses import soft_margin
from .data import within_hops
from .model import sample_recurrence

if TYPE_CHECKING:
    from .train import TrainConfig


def recurrence_draw(cfg: TrainConfig, generator: torch.Generator | None = None) -> tuple[int, int]:
    """``(n, k)``: iterations without and with gradient for one training step."""
    if cfg.recurrence == "fixed":
        return max(cfg.mean_recurrence - cfg.backprop_depth, 0), min(cfg.mean_recurrence, cfg.backprop_depth)
    return sample_recurrence(cfg.mean_recurrence, cfg.backprop_depth, generator)


def reach_loss(logits: torch.Tensor, positions: torch.Tensor, target: torch.Tensor,
               unreached_weight: float = 0.0, separation_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy between the next-token distributions at ``positions`` and ``target``
    (``logits`` (B, T, V), or (n_questions, V) already read at the positions when ``positions`` is None).
    The cross-entropy against a uniform target is −log of the mass on the target's nodes plus the
    cross-entropy within them; ``unreached_weight`` w adds w times the first term, so that mass on a
    node the question does not reach (what makes a wrong option win) costs 1 + w times as much.

    ``separation_weight`` s adds s × softplus(LSE over the unreached nodes of the scores − softmin
    over the reached ones): ≈ 0 only when every reached node scores several nats above every other
    node. The uniform cross-entropy spreads 1/|reach set| over a large set, so a leak of that size
    onto one unreached node (ProsQA's wrong option sits next to the graph by construction) flips an
    answer; this term charges the worst pair however large the set. Rows with no unreached (or no
    reached) node add nothing."""
    lp = (logits if positions is None else logits[positions[:, 0], positions[:, 1]]).float().log_softmax(-1)
    target = target.to(lp.device)
    lp = lp[:, : target.shape[1]]
    loss = -(target * lp).sum(-1).mean()
    if unreached_weight:
        inside = lp.masked_fill(target <= 0, float("-inf")).logsumexp(-1)
        loss = loss - unreached_weight * inside.mean()
    if separation_weight:
        reached = target > 0
        loss = loss + separation_weight * soft_margin(lp, reached, ~reached)
    return loss


def iteration_loss(hf: Any, batch: dict[str, torch.Tensor], n: int, k: int, generator: torch.Generator,
                   **weights: float) -> torch.Tensor:
    """``supervise="iterations"``: ``n`` iterations without gradient, then ``k`` with; after
    iteration j (counted from the first) the answer is taught as the concepts within j hops
    (:func:`reach_loss`, with its ``weights``). The mean of the ``k`` losses. The same draws
    as the model's forward (initial state from ``generator``)."""
    e = hf.prelude(hf.embed(batch["input_ids"]))
    x = hf.initial_state(e, generator=generator)
    with torch.no_grad():
        for _ in range(n):
            x = hf.core_step(x, e)
    losses = []
    for j in range(n + 1, n + k + 1):
        x = hf.core_step(x, e)
        losses.append(reach_loss(hf.coda(x, batch["positions"]), None, within_hops(batch["hops"], j), **weights))
    return torch.stack(losses).mean()
