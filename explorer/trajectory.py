"""The explorer's centre: a trajectory of vectors with probes on each step.

Every engine produces a :class:`Trajectory` (layers of a forward pass, continuous thoughts,
recurrent iterations, interpolation paths); probes fill each :class:`Step`'s ``probes`` and
``scalars``; projections place the vectors; widgets show the result. Trajectories hold numpy
arrays (float32) so they can be projected, serialised and sent to a browser without torch.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .errors import InputError, SaveFileError, UnknownPointError
from .io import atomic_write_safetensors, read_safetensors

FORMAT = "latent-explorer.trajectory/1"


@dataclass(frozen=True)
class TokenTable:
    """A ranked list of tokens with one score each (a probe's answer for one vector).

    ``space`` says where the ranking was made (``"output"``: probabilities through the final
    norm and unembedding; ``"input"``: cosine to the input-embedding rows; ``"bank"``: cosine to
    a user-supplied set).
    """

    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    scores: tuple[float, ...]
    space: str = "output"
    score_name: str = "prob"

    def __post_init__(self) -> None:
        if not (len(self.tokens) == len(self.ids) == len(self.scores)):
            raise InputError("TokenTable needs tokens, ids and scores of the same length.")

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self) -> Iterator[tuple[str, int, float]]:
        return iter(zip(self.tokens, self.ids, self.scores))

    def __getitem__(self, i: int) -> tuple[str, int, float]:
        return (self.tokens[i], self.ids[i], self.scores[i])

    @property
    def top(self) -> str:
        """The best-ranked token ("" for an empty table)."""
        return self.tokens[0] if self.tokens else ""

    def to_records(self) -> list[dict[str, Any]]:
        return [{"token": t, "id": i, "score": s} for t, i, s in self]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens), "ids": list(self.ids), "scores": list(self.scores),
                "space": self.space, "score_name": self.score_name}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TokenTable":
        return cls(tuple(d["tokens"]), tuple(int(i) for i in d["ids"]), tuple(float(s) for s in d["scores"]),
                   d.get("space", "output"), d.get("score_name", "prob"))

    def __repr__(self) -> str:
        w = max([5] + [len(repr(t)) for t in self.tokens])
        lines = [f"{'token':<{w}}  {'id':>6}  {self.score_name:>8}   ({self.space} space)"]
        lines += [f"{t!r:<{w}}  {i:>6}  {s:>8.4f}" for t, i, s in self]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td><code>{escape(repr(t))}</code></td><td>{i}</td><td>{s:.4f}</td>"
            f"<td><div style='background:#4c78a8;height:0.8em;width:{max(0.0, min(1.0, abs(s))) * 120:.0f}px'></div></td></tr>"
            for t, i, s in self
        )
        return (f"<table><caption>{escape(self.space)} space</caption><thead><tr><th>token</th><th>id</th>"
                f"<th>{escape(self.score_name)}</th><th></th></tr></thead><tbody>{rows}</tbody></table>")


@dataclass
class Step:
    """One step of a trajectory.

    ``name`` is the stable capture-point name of the step's main vector (``layer.12``,
    ``thought.3``, ``iter.7``, ``concept.2`` …); ``label`` is what a person reads (the token, the
    sentence, "thought 3"). ``vectors`` maps names to 1-D float32 arrays and always holds ``name``.
    """

    name: str
    label: str
    vectors: dict[str, np.ndarray]
    scalars: dict[str, float] = field(default_factory=dict)
    probes: dict[str, TokenTable] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in self.vectors:
            raise InputError(f"Step {self.name!r} has no vector of its own name; pass vectors={{{self.name!r}: ...}}.")
        self.vectors = {k: _as_vector(v, k) for k, v in self.vectors.items()}

    @property
    def vector(self) -> np.ndarray:
        return self.vectors[self.name]


def _as_vector(v: Any, name: str) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().float().cpu().numpy()
    a = np.asarray(v, dtype=np.float32)
    if a.ndim != 1:
        raise InputError(f"vector {name!r} must be 1-D, got shape {a.shape}; pass one vector per step.")
    return a


class Trajectory:
    """An ordered list of :class:`Step` s in one vector space.

    ``kind`` says what the steps are (``layers``, ``positions``, ``thoughts``, ``iterations``,
    ``concepts``, ``points``); ``space`` names the vector space (usually the model name) so that
    views know which trajectories may share a map.
    """

    def __init__(self, steps: Iterable[Step], *, kind: str = "points", space: str = "",
                 title: str = "", meta: dict[str, Any] | None = None) -> None:
        self.steps: list[Step] = list(steps)
        self.kind = kind
        self.space = space
        self.title = title
        self.meta: dict[str, Any] = dict(meta or {})
        dims = {s.vector.shape[0] for s in self.steps}
        if len(dims) > 1:
            raise InputError(f"all steps of a trajectory must share one dimension, got {sorted(dims)}.")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_vectors(cls, vectors: Any, *, names: Sequence[str] | None = None,
                     labels: Sequence[str] | None = None, prefix: str = "step", **kw: Any) -> "Trajectory":
        """Build a trajectory from an (n, d) array; names default to ``{prefix}.{i}``."""
        arr = vectors.detach().float().cpu().numpy() if hasattr(vectors, "detach") else np.asarray(vectors, np.float32)
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise InputError(f"from_vectors needs a non-empty (n, d) array, got shape {arr.shape}.")
        n = arr.shape[0]
        names = list(names) if names is not None else [f"{prefix}.{i}" for i in range(n)]
        labels = list(labels) if labels is not None else list(names)
        if not (len(names) == len(labels) == n):
            raise InputError(f"names ({len(names)}) and labels ({len(labels)}) must match the {n} vectors.")
        return cls([Step(nm, lb, {nm: arr[i]}) for i, (nm, lb) in enumerate(zip(names, labels))], **kw)

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, key: int | str) -> Step:
        if isinstance(key, str):
            for s in self.steps:
                if s.name == key:
                    return s
            raise UnknownPointError(f"no step named {key!r}; names are {self.names[:8]}{'…' if len(self) > 8 else ''}.")
        return self.steps[key]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.steps]

    @property
    def dim(self) -> int:
        return int(self.steps[0].vector.shape[0]) if self.steps else 0

    def vectors(self) -> np.ndarray:
        """(n, d) float32 array of each step's main vector."""
        if not self.steps:
            return np.zeros((0, 0), np.float32)
        return np.stack([s.vector for s in self.steps])

    @property
    def scalar_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.steps:
            seen.update(dict.fromkeys(s.scalars))
        return list(seen)

    def scalar(self, name: str) -> np.ndarray:
        """Per-step values of one scalar; NaN where a step lacks it."""
        if name not in self.scalar_names:
            raise UnknownPointError(f"no scalar {name!r}; available: {self.scalar_names}.")
        return np.array([s.scalars.get(name, math.nan) for s in self.steps], dtype=np.float64)

    def with_dynamics(self) -> "Trajectory":
        """Add ``norm``, ``delta_norm`` (‖v_k − v_{k−1}‖), ``rel_delta`` (‖Δ‖/‖v_k‖) and
        ``cos_prev`` to every step's scalars (the first step has no predecessor: NaN)."""
        v = self.vectors().astype(np.float64)
        norms = np.linalg.norm(v, axis=1)
        for k, s in enumerate(self.steps):
            s.scalars["norm"] = float(norms[k])
            if k == 0:
                s.scalars.update(delta_norm=math.nan, rel_delta=math.nan, cos_prev=math.nan)
                continue
            d = float(np.linalg.norm(v[k] - v[k - 1]))
            s.scalars["delta_norm"] = d
            s.scalars["rel_delta"] = d / norms[k] if norms[k] > 0 else math.nan
            den = norms[k] * norms[k - 1]
            s.scalars["cos_prev"] = float(v[k] @ v[k - 1] / den) if den > 0 else math.nan
        return self

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self, *, with_vectors: bool = False) -> dict[str, Any]:
        """A JSON-able description (vectors as lists only when asked)."""
        steps = []
        for s in self.steps:
            d: dict[str, Any] = {"name": s.name, "label": s.label, "scalars": _finite(s.scalars),
                                 "probes": {k: t.to_dict() for k, t in s.probes.items()},
                                 "vector_names": list(s.vectors), "meta": s.meta}
            if with_vectors:
                d["vectors"] = {k: v.tolist() for k, v in s.vectors.items()}
            steps.append(d)
        return {"format": FORMAT, "kind": self.kind, "space": self.space, "title": self.title,
                "meta": self.meta, "steps": steps}

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (safetensors; the description as JSON in its metadata) atomically."""
        tensors = {f"{i}/{k}": v for i, s in enumerate(self.steps) for k, v in s.vectors.items()}
        return atomic_write_safetensors(path, tensors, {"latent_explorer": json.dumps(self.to_dict())})

    @classmethod
    def load(cls, path: str | Path) -> "Trajectory":
        tensors, meta = read_safetensors(path)
        try:
            d = json.loads(meta["latent_explorer"])
            if d.get("format") != FORMAT:
                raise KeyError("format")
            steps = [Step(sd["name"], sd["label"],
                          {k: tensors[f"{i}/{k}"] for k in sd["vector_names"]},
                          {k: (math.nan if v is None else float(v)) for k, v in sd["scalars"].items()},
                          {k: TokenTable.from_dict(t) for k, t in sd["probes"].items()}, sd.get("meta", {}))
                     for i, sd in enumerate(d["steps"])]
            return cls(steps, kind=d["kind"], space=d["space"], title=d["title"], meta=d["meta"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SaveFileError(f"{path} is not a latent-explorer trajectory file ({e!r}); "
                                "save one with Trajectory.save().") from e

    def __repr__(self) -> str:
        return (f"Trajectory(kind={self.kind!r}, steps={len(self)}, dim={self.dim}, space={self.space!r}"
                f"{', title=' + repr(self.title) if self.title else ''})")


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in d.items()}
