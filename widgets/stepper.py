"""ThoughtStepper: play / pause / step through any trajectory, entirely in the browser."""
from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import traitlets

from explorer.errors import InputError
from explorer.trajectory import Step, TokenTable, Trajectory

from ._base import MAX_CANVAS_BACKGROUND, esm, f32_bytes, resolve_placement, sample_rows, trajectory_payload

PREFERRED_SCALARS = ("entropy", "delta_norm", "kl_prev", "rel_delta", "norm", "cos_prev")


def probe_panels(trajectory: Trajectory) -> tuple[str, ...]:
    """The probe spaces the stepper shows as bars (at most two): ``output`` and ``input`` for model
    trajectories; a trajectory with other probes shows its own (e.g. ``bank`` for concept paths,
    one wide panel of sentences); one without probes keeps the two empty model panels."""
    own = list(dict.fromkeys(sp for st in trajectory for sp in st.probes))
    if not own:
        return ("output", "input")
    return tuple([sp for sp in ("output", "input") if sp in own] + [sp for sp in own if sp not in ("output", "input")])[:2]


class ThoughtStepper(anywidget.AnyWidget):
    """Step through a :class:`~explorer.Trajectory`: the current point on a 2-D map, its top-k
    readings in two probe spaces as bars (output and input space for model states; a concept
    path's ``bank`` of nearest sentences), and a per-step scalar as a line chart.

    The whole trajectory (2-D coordinates of every step, probe tables, scalars) is sent to the
    browser once; stepping (buttons, slider, ←/→ keys when focused, play) happens there, and the
    current index is synced back to :attr:`index`.
    Given a :class:`widgets.LatentMap` that is still fitting UMAP, the stepper starts on its PCA
    layout and follows the swap.

    ``map`` decides where points go: a :class:`widgets.LatentMap` (its projection and background),
    a fitted :class:`explorer.projection.Projection`, or ``None`` (a PCA of the trajectory, plus
    ``background`` vectors if given).
    """

    _esm = esm("stepper.js")

    index = traitlets.Int(0).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    interval = traitlets.Int(400).tag(sync=True)  # ms per step while playing
    scalar = traitlets.Unicode("").tag(sync=True)
    _coords = traitlets.Bytes(b"").tag(sync=True)
    _bg = traitlets.Bytes(b"").tag(sync=True)
    _data = traitlets.Dict().tag(sync=True)
    _size = traitlets.List([380, 300]).tag(sync=True)

    def __init__(self, trajectory: Trajectory, map: Any = None, *, background: Any = None,
                 scalar: str | None = None, k: int = 8, interval_ms: int = 400,
                 size: tuple[int, int] = (380, 300), fit: str = "all", normalize: bool = True,
                 **kwargs: Any) -> None:
        if not isinstance(trajectory, Trajectory):
            raise InputError(f"ThoughtStepper needs a Trajectory, got {type(trajectory).__name__}; "
                             "build one with Trajectory.from_vectors(...) or trace.trajectory().")
        if len(trajectory) == 0:
            raise InputError("the trajectory is empty; nothing to step through.")
        if fit not in ("all", "trajectory"):
            raise InputError("fit must be 'all' (trajectory and background) or 'trajectory'.")
        super().__init__(**kwargs)
        self.trajectory = trajectory
        self.k = int(k)
        vecs = trajectory.vectors()
        self.projection, bg = resolve_placement(map, vecs, background, normalize=normalize)
        self._xy = self.projection.place(vecs)
        if hasattr(map, "on_layout"):  # a LatentMap still fitting UMAP: follow its swap
            map.on_layout(self._relayout)
        names = trajectory.scalar_names
        if scalar is not None and scalar not in names:
            raise InputError(f"the trajectory has no scalar {scalar!r}; it has {names}. "
                             "Add some with trajectory.with_dynamics() or model.annotate(trajectory).")
        chosen = scalar or next((s for s in PREFERRED_SCALARS if s in names), names[0] if names else "")
        self.panels = probe_panels(trajectory)
        data = {**trajectory_payload(trajectory, self.panels, self.k), "fit": fit}
        with self.hold_sync():
            self._size = [int(size[0]), int(size[1])]
            self.interval = int(interval_ms)
            self.scalar = chosen
            self._coords = f32_bytes(self._xy)
            self._bg = f32_bytes(sample_rows(bg, MAX_CANVAS_BACKGROUND)) if bg is not None else b""
            self._data = data
            self.index = 0

    def _relayout(self, lmap: Any) -> None:
        self.projection = lmap.projection
        self._xy = self.projection.place(self.trajectory.vectors())
        with self.hold_sync():
            self._coords = f32_bytes(self._xy)
            self._bg = f32_bytes(sample_rows(lmap.background_coords(), MAX_CANVAS_BACKGROUND))

    @traitlets.validate("index")
    def _clamp(self, proposal: Any) -> int:
        n = len(self.trajectory) if hasattr(self, "trajectory") else 1
        return int(min(max(0, proposal["value"]), n - 1))

    # -- public API ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.trajectory)

    def goto(self, i: int | str) -> "ThoughtStepper":
        """Jump to step ``i`` (an index, negative from the end, or a step name like ``"layer.12"``)."""
        if isinstance(i, str):
            i = self.trajectory.names.index(self.trajectory[i].name)
        elif i < 0:
            i += len(self)
        self.index = int(i)
        return self

    def step(self, n: int = 1) -> "ThoughtStepper":
        """Move ``n`` steps (negative: back); stops at either end."""
        self.index = self.index + int(n)
        return self

    def play(self, interval_ms: int | None = None) -> None:
        """Start playing in the browser (from the start if at the end)."""
        if interval_ms is not None:
            self.interval = int(interval_ms)
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    @property
    def current(self) -> Step:
        """The current :class:`~explorer.trajectory.Step`."""
        return self.trajectory[self.index]

    def point(self, i: int | None = None) -> np.ndarray:
        """The 2-D map coordinates of step ``i`` (default: the current step)."""
        return self._xy[self.index if i is None else i].copy()

    def coords(self) -> np.ndarray:
        """(n, 2) map coordinates of every step."""
        return self._xy.copy()

    def tokens(self, space: str = "output") -> TokenTable | None:
        """The current step's top entries in probe ``space`` (``"output"``, ``"input"``, a concept path's ``"bank"``), or None."""
        t = self.current.probes.get(space)
        if t is None:
            return None
        return TokenTable(t.tokens[: self.k], t.ids[: self.k], t.scores[: self.k], t.space, t.score_name)

    def scalar_value(self, name: str | None = None) -> float:
        return float(self.trajectory.scalar(name or self.scalar)[self.index])

    def __repr__(self) -> str:
        return f"ThoughtStepper({self.trajectory!r}, index={self.index})"
