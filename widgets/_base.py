"""Small helpers shared by the widgets: ESM loading, binary payloads, the trajectory payload, placement on a map."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from explorer.errors import InputError
from explorer.projection import Projection, as_matrix, fit_projection
from explorer.trajectory import Trajectory

HERE = Path(__file__).parent
MAX_CANVAS_BACKGROUND = 50_000  # points drawn on the stepper's / lens' own canvas


@lru_cache(maxsize=None)
def esm(*files: str) -> str:
    """The ES module for a widget: ``common.js`` then the widget's own file (no build step)."""
    return "\n".join((HERE / f).read_text(encoding="utf-8") for f in ("common.js", *files))


def f32_bytes(a: Any) -> bytes:
    """A float32 C-order byte string (sent as one binary buffer, not a JSON list)."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32)).tobytes()


def _top(table: dict[str, Any] | None, k: int) -> dict[str, Any] | None:
    """The first ``k`` rows of a serialised :class:`~explorer.trajectory.TokenTable` (None if empty)."""
    if not table or not table["tokens"]:
        return None
    return {"tokens": [str(x) for x in table["tokens"][:k]], "scores": [float(s) for s in table["scores"][:k]]}


def trajectory_payload(trajectory: Trajectory, panels: Sequence[str], k: int) -> dict[str, Any]:
    """What the browser is sent about a trajectory (the stepper's ``_data``, less its own
    options), built from the trajectory's own serialisation (:meth:`Trajectory.to_dict`):
    title, kind, step names and labels, every scalar per step (None where not finite or
    missing), the top-``k`` of each probe space in ``panels`` per step (None where a step has
    none), and each panel's score name."""
    d = trajectory.to_dict()
    steps = d["steps"]
    scalar_names = list(dict.fromkeys(name for st in steps for name in st["scalars"]))
    score_names = {}
    for space in panels:
        t = next((st["probes"][space] for st in steps if space in st["probes"]), None)
        score_names[space] = t["score_name"] if t is not None else ("prob" if space == "output" else "cos")
    return {
        "title": d["title"] or f"{d['kind']} ({len(steps)} steps)",
        "kind": d["kind"],
        "names": [st["name"] for st in steps],
        "labels": [str(st["label"]) for st in steps],
        "scalars": {name: [st["scalars"].get(name) for st in steps] for name in scalar_names},
        "probes": {space: [_top(st["probes"].get(space), k) for st in steps] for space in panels},
        "panels": list(panels),
        "score_names": score_names,
    }


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
