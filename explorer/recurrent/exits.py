"""Adaptive-exit criteria of the Huginn release (``raven_modeling_minimal.py``), as pure functions.

A recurrent-depth model may stop iterating a token once successive iterations stop changing.
Iteration ``r`` (1-based) has a value ``v_r``; the token exits at the first ``r`` where

* ``kl``: ``KL(p_{r−1} ‖ p_r) < threshold`` (next-token distributions read through the coda;
  ``p_0`` is uniform, as in the release; default 1e-3);
* ``latent-diff``: ``‖s_r − s_{r−1}‖ / ‖s_r‖ < threshold`` (raw states; ``s_0`` is the random
  initial state; default 0.03);
* ``entropy-diff``: ``|H(p_r) − H(p_{r−1})| < threshold`` (``H_0 = 100`` as in the release;
  default 1e-3);
* ``argmax-stability``: the top token has been the same for ``threshold`` consecutive steps,
  i.e. ``v_r >= threshold`` where ``v_r`` counts the repeats (default 5);
* ``peak-rise`` (this project's, not the release's): ``max_t (p_r(t) − max_{j<r} p_j(t))``, the most
  any token's probability rises above its highest at earlier iterations (0 before iteration 1). It
  falls once the iterations stop reaching tokens they had not reached: for a model that searches a
  graph one hop an iteration, once the search has found everything it will, so deeper searches
  iterate longer, where ``kl`` also waits for the mass to stop moving among the tokens already
  reached (docs/thoughts.md, "The adaptive exit"; default 0.02);
* ``none``: never (always ``max_iters``).

Every function takes torch tensors whose last axis is the vector (state or logits) and works on
any leading batch shape, so the engine checks all positions at once and tests check constructed
sequences.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..errors import InputError

CRITERIA = ("kl", "latent-diff", "entropy-diff", "argmax-stability", "peak-rise", "none")
DEFAULT_THRESHOLDS: dict[str, float] = {"kl": 1e-3, "latent-diff": 0.03, "entropy-diff": 1e-3,
                                        "argmax-stability": 5, "peak-rise": 0.02, "none": math.inf}
NEEDS_LOGITS = {"kl", "entropy-diff", "argmax-stability", "peak-rise"}
_H0 = 100.0


def check_criterion(criterion: str, threshold: float | None = None) -> float:
    """The threshold to use (the release's default when ``None``); raises for unknown names."""
    if criterion not in CRITERIA:
        raise InputError(f"unknown exit criterion {criterion!r}; use one of {CRITERIA}.")
    t = DEFAULT_THRESHOLDS[criterion] if threshold is None else float(threshold)
    if criterion == "argmax-stability" and (t < 1 or t != int(t)):
        raise InputError(f"argmax-stability needs a whole number of steps >= 1 as threshold, got {threshold!r}.")
    if criterion != "none" and not t > 0:
        raise InputError(f"the {criterion} threshold must be > 0, got {threshold!r}.")
    return t


# -- one step ----------------------------------------------------------------------------------------
def latent_diff(prev_state: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """‖s_r − s_{r−1}‖ / ‖s_r‖ over the last axis."""
    s, p = state.float(), prev_state.float()
    return (s - p).norm(dim=-1) / s.norm(dim=-1).clamp_min(1e-30)


def kl_step(prev_logits: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """KL(p_{r−1} ‖ p_r) (the release's ``kl_div(log p_r, log p_{r−1}, log_target=True)``);
    ``prev_logits=None`` stands for the uniform distribution."""
    logp = logits.float().log_softmax(-1)
    if prev_logits is None:
        prev = torch.full_like(logp, -math.log(logp.shape[-1]))
    else:
        prev = prev_logits.float().log_softmax(-1)
    return (prev.exp() * (prev - logp)).sum(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits), the release's ``−Σ p log(p + 1e-10)``."""
    p = logits.float().softmax(-1)
    return -(p * (p + 1e-10).log()).sum(-1)


def entropy_diff(prev_logits: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """|H(p_r) − H(p_{r−1})|; ``prev_logits=None`` stands for H = 100 (the release's start)."""
    h = entropy(logits)
    h0 = torch.full_like(h, _H0) if prev_logits is None else entropy(prev_logits)
    return (h - h0).abs()


def argmax_run(prev_run: torch.Tensor | None, prev_logits: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """How many consecutive steps the argmax has repeated (0 when it just changed; 0 at r = 1)."""
    cur = logits.argmax(-1)
    if prev_logits is None or prev_run is None:
        return torch.zeros_like(cur)
    same = cur == prev_logits.argmax(-1)
    return torch.where(same, prev_run + 1, torch.zeros_like(prev_run))


def peak_rise(prev_peak: torch.Tensor | None, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the most any token's probability rose above its earlier peak, the running peak of every
    token's probability); ``prev_peak=None`` (before iteration 1) stands for zeros."""
    p = logits.float().softmax(-1)
    if prev_peak is None:
        return p.amax(-1), p
    return (p - prev_peak).amax(-1), torch.maximum(prev_peak, p)


def step_value(criterion: str, *, prev_state: torch.Tensor | None = None, state: torch.Tensor | None = None,
               prev_logits: torch.Tensor | None = None, logits: torch.Tensor | None = None,
               run: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One iteration's exit value and the updated carry ``run`` (argmax-stability: the repeat count;
    peak-rise: each token's peak probability so far) — the one place the criteria are dispatched.
    ``latent-diff`` reads the states, the others the logits; ``none`` gives zeros."""
    if criterion == "latent-diff":
        return latent_diff(prev_state, state), run
    if criterion == "kl":
        return kl_step(prev_logits, logits), run
    if criterion == "entropy-diff":
        return entropy_diff(prev_logits, logits), run
    if criterion == "argmax-stability":
        run = argmax_run(run, prev_logits, logits)
        return run.float(), run
    if criterion == "peak-rise":
        return peak_rise(run, logits)
    like = logits.argmax(-1) if logits is not None else state[..., 0] if state is not None else torch.zeros(())
    return torch.zeros(like.shape), run


def exits(criterion: str, value: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean: does this value end the iteration?"""
    if criterion == "none":
        return torch.zeros(value.shape, dtype=torch.bool, device=value.device)
    if criterion == "argmax-stability":
        return value >= threshold
    return value < threshold


# -- whole sequences ----------------------------------------------------------------------------------
def exit_values(criterion: str, *, states: Sequence[torch.Tensor] | torch.Tensor | None = None,
                logits: Sequence[torch.Tensor] | torch.Tensor | None = None) -> torch.Tensor:
    """Values ``v_1 … v_R`` (stacked on a new first axis) of a whole sequence.

    ``states``: ``s_0 … s_R`` (R+1 of them, the first the initial state) for ``latent-diff``;
    ``logits``: ``ℓ_1 … ℓ_R`` (the read-out after each iteration) for the others."""
    check_criterion(criterion)
    if criterion == "latent-diff":
        if states is None or len(states) < 2:
            raise InputError("latent-diff needs the states s_0 … s_R (at least two).")
        return torch.stack([latent_diff(states[r - 1], states[r]) for r in range(1, len(states))])
    if criterion == "none":
        n = len(logits) if logits is not None else (len(states) - 1 if states is not None else 0)
        like = logits[0].argmax(-1) if logits is not None and n else torch.zeros(())
        return torch.zeros((n, *like.shape))
    if logits is None or len(logits) < 1:
        raise InputError(f"{criterion} needs the logits ℓ_1 … ℓ_R (at least one).")
    out, prev, run = [], None, None
    for cur in logits:
        v, run = step_value(criterion, prev_logits=prev, logits=cur, run=run)
        out.append(v.float())
        prev = cur
    return torch.stack(out)


def exit_iteration(criterion: str, threshold: float | None = None, *,
                   states: Sequence[torch.Tensor] | torch.Tensor | None = None,
                   logits: Sequence[torch.Tensor] | torch.Tensor | None = None) -> torch.Tensor:
    """The iteration (1-based) at which each sequence exits: the first ``r`` whose value meets
    the criterion, else ``R`` (the last one computed). Returns a long tensor of the batch shape."""
    t = check_criterion(criterion, threshold)
    v = exit_values(criterion, states=states, logits=logits)
    hit = exits(criterion, v, t)
    R = v.shape[0]
    r = torch.arange(1, R + 1).reshape(R, *([1] * (v.dim() - 1))).expand_as(v)
    big = torch.full_like(r, R + 1)
    first = torch.where(hit, r, big).min(0).values
    return torch.where(first > R, torch.full_like(first, R), first)


__all__ = ["CRITERIA", "DEFAULT_THRESHOLDS", "NEEDS_LOGITS", "check_criterion", "latent_diff", "kl_step", "entropy",
           "entropy_diff", "argmax_run", "peak_rise", "exits", "exit_values", "exit_iteration"]
