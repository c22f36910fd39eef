"""Trace: the residual stream of one forward pass at named capture points.

Capture points (the same names for every architecture):

``embed``
    the input to the first decoder block: token embeddings (times the model's embedding scale,
    plus position embeddings where the model adds them).
``layer.{i}``
    the residual stream *after* decoder block ``i``, *before* the final norm — for every
    ``i`` including the last. (Hugging Face's ``hidden_states[i + 1]``, except the last, which HF
    returns after the final norm.)
``final``
    the output of the final norm at the last block: exactly what the unembedding reads
    (HF's ``hidden_states[-1]``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .errors import SaveFileError, UnknownPointError
from .io import atomic_write_safetensors, read_safetensors
from .trajectory import Step, Trajectory

FORMAT = "latent-explorer.trace/1"


def point_names(n_layers: int) -> list[str]:
    return ["embed", *[f"layer.{i}" for i in range(n_layers)], "final"]


def check_points(points: Sequence[str] | str | None, available: Sequence[str], model: str = "the model") -> list[str]:
    """``points`` checked against a model's ``available`` capture points, in model order (``None``: all)."""
    if points is None:
        return list(available)
    points = [points] if isinstance(points, str) else list(points)
    if not points:
        raise UnknownPointError(f"points is empty; pass None for every capture point, or names such as "
                                f"'{available[len(available) // 2]}'.")
    bad = [p for p in points if p not in available]
    if bad:
        raise UnknownPointError(f"unknown capture point(s) {bad}; {model} has {available[0]}, {available[1]} … "
                                f"{available[-2]}, {available[-1]}.")
    return [p for p in available if p in set(points)]


class Trace:
    """Captured states of one forward pass. ``trace["layer.12"]`` is a (tokens, d) tensor."""

    def __init__(self, *, tokens: Sequence[str], token_ids: Sequence[int], states: dict[str, torch.Tensor],
                 model: str = "", text: Any = "", meta: dict[str, Any] | None = None) -> None:
        self.tokens = list(tokens)
        self.token_ids = [int(i) for i in token_ids]
        self._states = dict(states)
        self.model = model
        self.text = text
        self.meta = dict(meta or {})

    @property
    def points(self) -> list[str]:
        return list(self._states)

    def __getitem__(self, point: str) -> torch.Tensor:
        try:
            return self._states[point]
        except KeyError:
            raise UnknownPointError(f"this trace has no point {point!r}; it has {self._summary()}. "
                                    "Trace again with points=[...] naming it.") from None

    def __contains__(self, point: object) -> bool:
        return point in self._states

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self.tokens)

    def _summary(self) -> str:
        p = self.points
        return ", ".join(p) if len(p) <= 6 else f"{', '.join(p[:3])}, …, {', '.join(p[-2:])}"

    def __repr__(self) -> str:
        d = next(iter(self._states.values())).shape[-1] if self._states else 0
        return f"Trace(model={self.model!r}, tokens={len(self)}, d={d}, points=[{self._summary()}])"

    # -- trajectories -------------------------------------------------------------------------
    def trajectory(self, position: int | None = -1, *, point: str | None = None,
                   points: Sequence[str] | None = None) -> Trajectory:
        """The states at one ``position`` across points (kind ``layers``), or, with ``point=``,
        one point across every position (kind ``positions``, steps named ``pos.{t}``)."""
        if point is not None:
            x = self[point]
            steps = [Step(f"pos.{t}", tok, {f"pos.{t}": x[t]}, meta={"point": point, "position": t})
                     for t, tok in enumerate(self.tokens)]
            return Trajectory(steps, kind="positions", space=self.model, title=f"{point} across positions")
        pos = range(len(self))[position if position is not None else -1]
        names = list(points) if points is not None else self.points
        steps = [Step(p, f"{p} · {self.tokens[pos]!r}", {p: self[p][pos]}, meta={"position": pos}) for p in names]
        return Trajectory(steps, kind="layers", space=self.model,
                          title=f"layers at position {pos} ({self.tokens[pos]!r})")

    # -- saving -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a safetensors file (states + token ids; the rest as JSON metadata), atomically."""
        meta = {"format": FORMAT, "tokens": self.tokens, "points": self.points, "model": self.model,
                "text": self.text, "meta": self.meta}
        tensors: dict[str, Any] = {f"state/{p}": t.contiguous() for p, t in self._states.items()}
        tensors["token_ids"] = np.asarray(self.token_ids, dtype=np.int64)
        return atomic_write_safetensors(path, tensors, {"latent_explorer": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        arrays, raw = read_safetensors(path)
        try:
            meta = json.loads(raw["latent_explorer"])
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            ids = arrays["token_ids"].tolist()
            states = {p: torch.from_numpy(arrays[f"state/{p}"].copy()) for p in meta["points"]}
            if len(ids) != len(meta["tokens"]) or any(s.shape[0] != len(ids) for s in states.values()):
                raise ValueError("lengths disagree")
            return cls(tokens=meta["tokens"], token_ids=ids, states=states, model=meta["model"], text=meta["text"],
                       meta=meta["meta"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SaveFileError(f"{path} is not a latent-explorer trace ({e!r}); save one with Trace.save().") from e
