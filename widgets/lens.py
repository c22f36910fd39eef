"""LensView: the logit lens as a layers × positions heatmap you can click."""
from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import traitlets

from explorer.errors import InputError, UnknownPointError
from explorer.trajectory import TokenTable

from ._base import esm, f32_bytes, resolve_placement

_REQUIRED = ("points", "tokens", "k", "top_probs", "top_tokens")


class LensView(anywidget.AnyWidget):
    """Show an ``explorer.LogitLens``: one row per capture point, one column per position; each
    cell holds the top-1 token, coloured by its probability. Clicking a cell (or ←↑→↓ once one is
    selected) shows that place's top-k and, when ``trace`` is given, its point on a map together
    with the path of that position through the points. All of it runs in the browser; the
    selection is synced back (:meth:`selection`).

    ``map`` places the points like :class:`ThoughtStepper` does (a LatentMap, a Projection, or
    ``None`` for a PCA of the lens' own vectors).
    """

    _esm = esm("lens.js")

    selected = traitlets.List([-1, -1]).tag(sync=True)  # [point index, position]
    _probs = traitlets.Bytes(b"").tag(sync=True)
    _coords = traitlets.Bytes(b"").tag(sync=True)
    _data = traitlets.Dict().tag(sync=True)

    def __init__(self, lens: Any, trace: Any = None, map: Any = None, *, title: str | None = None,
                 **kwargs: Any) -> None:
        missing = [a for a in _REQUIRED if not hasattr(lens, a)]
        if missing:
            raise InputError(f"LensView needs a LogitLens (from model.logit_lens(trace)); "
                             f"{type(lens).__name__} lacks {missing}.")
        super().__init__(**kwargs)
        self.lens = lens
        points, tokens = list(lens.points), [str(t) for t in lens.tokens]
        probs = np.asarray(lens.top_probs, dtype=np.float32)
        P, T, K = len(points), len(tokens), int(lens.k)
        if probs.shape != (P, T, K):
            raise InputError(f"lens.top_probs has shape {probs.shape}, expected (points, positions, k) = {(P, T, K)}.")
        self.projection = None
        self._xy: np.ndarray | None = None
        if trace is not None:
            vecs = np.stack([_rows(trace[p], T, p) for p in points]).reshape(P * T, -1)
            self.projection, _ = resolve_placement(map, vecs, normalize=True)
            self._xy = self.projection.place(vecs).reshape(P, T, 2)
        ent = getattr(lens, "entropy", None)
        rank = getattr(lens, "target_rank", None)
        data = {
            "title": title or f"logit lens · {P} points × {T} positions",
            "points": points, "tokens": tokens, "k": K,
            "top_tokens": [[[str(s) for s in cell[:K]] for cell in row] for row in lens.top_tokens],
            "entropy": None if ent is None else np.round(np.asarray(ent, np.float64), 4).tolist(),
            "target_rank": None if rank is None else np.asarray(rank).astype(int).tolist(),
        }
        with self.hold_sync():
            self._probs = f32_bytes(probs)
            self._coords = f32_bytes(self._xy) if self._xy is not None else b""
            self._data = data

    @traitlets.validate("selected")
    def _check_sel(self, proposal: Any) -> list[int]:
        v = list(proposal["value"])
        if len(v) != 2:
            raise InputError("selected is [point index, position].")
        return [int(v[0]), int(v[1])]

    # -- public API ---------------------------------------------------------------------------
    def select(self, point: str | int, position: int) -> "LensView":
        """Select a cell: ``point`` is a name (``"layer.12"``) or row index; negative positions count from the end."""
        pts = list(self.lens.points)
        if isinstance(point, str):
            if point not in pts:
                raise UnknownPointError(f"no point {point!r} in this lens; points are {pts[:6]}….")
            p = pts.index(point)
        else:
            p = point + len(pts) if point < 0 else point
        T = len(self.lens.tokens)
        t = position + T if position < 0 else position
        if not (0 <= p < len(pts) and 0 <= t < T):
            raise InputError(f"cell ({point!r}, {position}) is outside {len(pts)} points × {T} positions.")
        self.selected = [p, t]
        return self

    def selection(self) -> tuple[str, int] | None:
        """The selected cell as ``(point name, position)``, or None."""
        p, t = self.selected
        return None if p < 0 else (self.lens.points[p], t)

    def top(self) -> TokenTable | None:
        """The selected cell's top-k tokens (``lens.top(point, position)``)."""
        s = self.selection()
        return None if s is None else self.lens.top(*s)

    def point(self) -> np.ndarray | None:
        """2-D map coordinates of the selected cell (None without a trace or a selection)."""
        if self._xy is None or self.selected[0] < 0:
            return None
        return self._xy[self.selected[0], self.selected[1]].copy()


def _rows(x: Any, T: int, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or a.shape[0] != T:
        raise InputError(f"trace[{name!r}] has shape {a.shape}; expected ({T}, d) to match the lens' positions.")
    return a
