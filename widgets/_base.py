"""Small helpers shared by the widgets: ESM loading, binary payloads, placement on a map."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from explorer.errors import InputError
from explorer.projection import Projection, as_matrix, fit_projection
from explorer.trajectory import TokenTable

HERE = Path(__file__).parent
MAX_CANVAS_BACKGROUND = 50_000  # points drawn on the stepper's / lens' own canvas


@lru_cache(maxsize=None)
def esm(*files: str) -> str:
    """The ES module for a widget: ``common.js`` then the widget's own file (no build step)."""
    return "\n".join((HERE / f).read_text(encoding="utf-8") for f in ("common.js", *files))


def f32_bytes(a: Any) -> bytes:
    """A float32 C-order byte string (sent as one binary buffer, not a JSON list)."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32)).tobytes()


def finite_list(a: Any) -> list[float | None]:
    return [None if (v is None or not math.isfinite(float(v))) else float(v) for v in np.asarray(a, np.float64)]


def table_json(t: TokenTable | None, k: int) -> dict[str, Any] | None:
    if t is None or len(t) == 0:
        return None
    return {"tokens": [str(x) for x in t.tokens[:k]], "scores": [float(s) for s in t.scores[:k]]}


def sample_rows(a: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """At most ``cap`` rows of ``a`` (a fixed random subset, original order kept)."""
    if len(a) <= cap:
        return a
    idx = np.sort(np.random.default_rng(seed).choice(len(a), cap, replace=False))
    return a[idx]


def resolve_placement(where: Any, vectors: np.ndarray, background: Any = None, *, normalize: bool = False
                      ) -> tuple[Projection, np.ndarray | None]:
    """(projection, background 2-D coordinates or None) for a LatentMap, a Projection or None.

    ``normalize`` makes that PCA project directions (unit rows; hidden states with a few
    huge-norm positions would otherwise squash everything else). With ``None`` a PCA is fitted on ``vectors`` (plus ``background`` vectors if given): instant,
    and stable for everything placed afterwards.
    """
    if where is None:
        if background is not None:
            bg = as_matrix(background, "background")
            proj = fit_projection(np.concatenate([bg, vectors]) if len(vectors) else bg, "pca", cache=False, normalize=normalize)
            return proj, proj.embedding[: len(bg)]
        if len(vectors) < 3:
            pad = np.concatenate([vectors, vectors + 1e-3, vectors - 1e-3]) if len(vectors) else np.eye(3, dtype=np.float32)
            return fit_projection(pad, "pca", cache=False, normalize=normalize), None
        return fit_projection(vectors, "pca", cache=False, normalize=normalize), None
    if isinstance(where, Projection):
        return where, (where.embedding if background is None else where.place(background))
    if hasattr(where, "projection") and hasattr(where, "background_coords"):  # a LatentMap
        return where.projection, where.background_coords()
    raise InputError(f"cannot place points on a {type(where).__name__}; pass a LatentMap, a Projection or None.")
