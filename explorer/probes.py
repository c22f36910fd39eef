"""Probes: read any vector (or batch of vectors) as tokens.

One signature for every capture point: ``probe.nearest(vec, k=10, space="output"|"input",
exclude=(), point=None)``. ``space="output"`` reads through the final norm and the unembedding
(the logit lens; vectors already after the final norm — point ``final`` and continuous thoughts
``thought.*`` — skip the norm); ``space="input"`` ranks by cosine to the input-embedding rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .errors import InputError, UnknownPointError, VectorError
from .trajectory import TokenTable, Trajectory
from .validate import whole

#: capture points whose vectors are already after the final norm: ``final`` and names with these prefixes
NORMED_PREFIXES = ("thought.",)


def is_normed(point: str | None) -> bool:
    """Whether vectors at this capture point are already after the final norm."""
    return bool(point) and (point == "final" or point.startswith(NORMED_PREFIXES))


class TokenProbe:
    """Reads vectors in a model's space. Built by :class:`explorer.Model`; holds no state."""

    def __init__(self, *, final_norm: torch.nn.Module, unembed: torch.Tensor, embed: torch.Tensor,
                 decode: Callable[[int], str], softcap: float | None = None) -> None:
        self.final_norm = final_norm
        self.unembed = unembed  # (V, d)
        self.embed = embed      # (V, d)
        self.decode = decode
        self.softcap = softcap
        self._embed_unit: torch.Tensor | None = None
        self.d = int(embed.shape[1])
        self.vocab = int(unembed.shape[0])

    # -- checks -------------------------------------------------------------------------------
    def as_batch(self, vec: Any) -> tuple[torch.Tensor, bool]:
        """(n, d) float tensor on the model's device, and whether the input was one vector."""
        try:   # a copy: numpy views with negative strides (np.flip) are fine too; a value too large for
            # float32 becomes inf here, which the finiteness check below refuses with a typed error
            with np.errstate(over="ignore"):
                x = vec if isinstance(vec, torch.Tensor) else torch.as_tensor(np.array(vec, dtype=np.float32))
        except (TypeError, ValueError) as e:
            raise VectorError(f"expected a vector of {self.d} numbers, got {type(vec).__name__} ({e}).") from None
        single = x.ndim == 1
        if x.ndim not in (1, 2) or x.shape[-1] != self.d:
            raise VectorError(f"expected a vector of size {self.d} (or a batch (n, {self.d})), got shape "
                              f"{tuple(x.shape)}; take vectors from this model's trace or token_vector().")
        x = x.reshape(-1, self.d).to(device=self.unembed.device, dtype=self.unembed.dtype)
        if not torch.isfinite(x).all():
            raise VectorError("the vector holds NaN or infinite values; check the arithmetic that made it "
                              "(e.g. a division by a zero norm).")
        return x, single

    # -- reading ------------------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, vec: Any, *, point: str | None = None, normed: bool | None = None) -> torch.Tensor:
        """(n, V) logits of vectors read through the final norm (unless normed) and unembedding."""
        x, _ = self.as_batch(vec)
        return self._logits(x, is_normed(point) if normed is None else normed)

    def _logits(self, x: torch.Tensor, normed: bool) -> torch.Tensor:
        h = x if normed else self.final_norm(x)
        z = (h @ self.unembed.T).float()
        if self.softcap:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z

    def _table(self, ids: torch.Tensor, scores: torch.Tensor, space: str, score_name: str) -> TokenTable:
        ids_l = ids.tolist()
        return TokenTable(tuple(self.decode(i) for i in ids_l), tuple(ids_l),
                          tuple(float(s) for s in scores.tolist()), space, score_name)

    def _exclude_mask(self, exclude: Sequence[str | int], encode: Callable[[str], list[int]] | None) -> list[int]:
        ids: list[int] = []
        for e in exclude:
            if isinstance(e, int):
                ids.append(e)
            elif encode is None:
                raise InputError("exclude= needs token ids here; pass ints, or call through Model.nearest_tokens.")
            else:
                ids.extend(encode(e))
        return ids

    @torch.inference_mode()
    def nearest(self, vec: Any, k: int = 10, space: str = "output", *, exclude: Sequence[str | int] = (),
                point: str | None = None, normed: bool | None = None,
                encode: Callable[[str], list[int]] | None = None) -> TokenTable | list[TokenTable]:
        """Top-``k`` tokens of one vector (a :class:`TokenTable`) or of each in a batch (a list)."""
        k = whole(k, "k", 1)
        x, single = self.as_batch(vec)
        drop = self._exclude_mask(exclude, encode)
        k = min(k, self.vocab - len(set(drop)))
        if space == "output":
            scores = self._logits(x, is_normed(point) if normed is None else normed).softmax(-1)
            name = "prob"
        elif space == "input":
            if self._embed_unit is None:
                self._embed_unit = torch.nn.functional.normalize(self.embed.float(), dim=-1)
            scores = torch.nn.functional.normalize(x.float(), dim=-1) @ self._embed_unit.T
            name = "cosine"
        else:
            raise InputError(f"space must be 'output' or 'input', got {space!r}.")
        if drop:
            scores[:, drop] = -math.inf
        top = scores.topk(k, dim=-1)
        tables = [self._table(i, s, space, name) for i, s in zip(top.indices, top.values)]
        return tables[0] if single else tables

    # -- trajectories -------------------------------------------------------------------------
    @torch.inference_mode()
    def annotate(self, traj: Trajectory, k: int = 10) -> Trajectory:
        """Fill each step's probes (``output``, ``input``) and scalars (``entropy`` in nats of the
        output distribution, ``kl_prev`` = KL(p_k ‖ p_{k−1}), ``norm``, ``delta_norm`` …)."""
        if len(traj) == 0:
            return traj
        traj.with_dynamics()
        x, _ = self.as_batch(traj.vectors())
        normed = torch.tensor([is_normed(s.name) for s in traj.steps])
        h = torch.where(normed[:, None].to(x.device), x, self.final_norm(x))
        logits = self._logits(h, normed=True)
        logp = logits.log_softmax(-1)
        p = logp.exp()
        entropy = -(p * logp).sum(-1)
        ins = self.nearest(x, k, "input")
        top = p.topk(min(k, self.vocab), dim=-1)
        for j, step in enumerate(traj.steps):
            step.probes["output"] = self._table(top.indices[j], top.values[j], "output", "prob")
            step.probes["input"] = ins[j]
            step.scalars["entropy"] = float(entropy[j])
            step.scalars["kl_prev"] = (float((p[j] * (logp[j] - logp[j - 1])).sum()) if j else math.nan)
        return traj


@dataclass
class LogitLens:
    """The logit lens over a trace: for every point × position, the top-k next tokens with their
    probabilities, the entropy (nats), and (if a target was given) the target token's rank
    (0 = top-1) and probability."""

    points: list[str]
    tokens: list[str]
    k: int
    top_ids: np.ndarray        # (P, T, k) int64
    top_probs: np.ndarray      # (P, T, k) float32
    top_tokens: list[list[list[str]]]
    entropy: np.ndarray        # (P, T)
    target: str | None = None
    target_id: int | None = None
    target_rank: np.ndarray | None = None   # (P, T) int64
    target_prob: np.ndarray | None = None   # (P, T) float32

    def _index(self, point: str) -> int:
        try:
            return self.points.index(point)
        except ValueError:
            raise UnknownPointError(f"the lens has no point {point!r}; it has {self.points[0]} … {self.points[-1]}.") from None

    def top(self, point: str, position: int = -1) -> TokenTable:
        """The top-k tokens at one place."""
        p = self._index(point)
        t = range(len(self.tokens))[position]
        return TokenTable(tuple(self.top_tokens[p][t]), tuple(int(i) for i in self.top_ids[p, t]),
                          tuple(float(x) for x in self.top_probs[p, t]), "output", "prob")

    def top1(self, position: int = -1) -> list[str]:
        """The top-1 token at ``position`` for every point, in order."""
        t = range(len(self.tokens))[position]
        return [self.top_tokens[p][t][0] for p in range(len(self.points))]

    def first_point(self, token: str, position: int = -1) -> str | None:
        """The earliest point where ``token`` is top-1 and stays top-1 through the last point."""
        ranks = self.top1(position)
        first = None
        for name, tok in zip(self.points, ranks):
            if tok == token:
                first = first or name
            else:
                first = None
        return first

    def figure(self, value: str = "prob", max_positions: int = 40):
        """A plotly heatmap: points × positions, the top-1 token written in each cell, colour =
        its probability (``value="prob"``), the entropy, or the target's probability
        (:func:`explorer.plots.logit_lens_figure`)."""
        from .plots import logit_lens_figure

        return logit_lens_figure(self, value, max_positions)

    def __repr__(self) -> str:
        return (f"LogitLens(points={len(self.points)}, positions={len(self.tokens)}, k={self.k}"
                f"{', target=' + repr(self.target) if self.target else ''})")
