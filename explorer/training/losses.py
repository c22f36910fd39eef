"""Loss pieces more than one method's recipe uses."""
from __future__ import annotations

import torch


def soft_margin(lp: torch.Tensor, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """The mean over rows of softplus(LSE of ``lp`` over the ``low`` entries − softmin over the ``high``
    ones): ≈ 0 only when every ``high`` entry of a row scores several nats above every ``low`` one, so
    it charges the worst pair however many entries each side holds. ``lp`` (N, K) log-probabilities,
    ``high`` and ``low`` (N, K) boolean masks; a row without both adds nothing (a zero gradient, not a NaN:
    the fills are finite)."""
    both = high.any(-1) & low.any(-1)
    top_low = lp.masked_fill(~low, -1e4).logsumexp(-1)
    bottom_high = -(-lp).masked_fill(~high, -1e4).logsumexp(-1)
    gap = torch.nn.functional.softplus(top_low - bottom_high) * both
    return gap.sum() / both.sum().clamp_min(1)
