"""LatentMap: a 2-D map of any set of vectors, PCA first, UMAP swapped in when ready."""
from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from explorer.errors import InputError
from explorer.projection import Projection, as_matrix, fit_projection
from explorer.trajectory import TokenTable, Trajectory

from ._base import sample_rows

KIND_COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b"]
BACKGROUND_COLOURS = ["#aab2c0", "#d9b38c", "#9cc3a0", "#c9a0c9", "#a0c0d9"]
COLOR_BY = ("step", "layer", "kind")


@dataclass
class _Group:
    name: str
    vectors: np.ndarray
    labels: list[str]
    steps: list[str]
    hover: list[str]
    kind: str
    color_by: str
    path: bool
    coords: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    trace_index: int = -1


def layer_numbers(names: Sequence[str]) -> np.ndarray:
    """A depth per capture-point name: ``embed`` 0, ``layer.i`` i+1, ``final`` last+1; others by order."""
    out = np.full(len(names), np.nan)
    for j, n in enumerate(names):
        m = re.fullmatch(r"(?:layer|iter|thought)\.(\d+)", n)
        if n == "embed":
            out[j] = 0
        elif m:
            out[j] = int(m.group(1)) + 1
    if np.isnan(out).all():
        return np.arange(len(names), dtype=float)
    top = np.nanmax(out) if not np.isnan(out).all() else 0
    out[[n == "final" for n in names]] = top + 1
    return np.where(np.isnan(out), np.arange(len(names)), out)


def _fmt_table(t: TokenTable | None, k: int = 3) -> str:
    if t is None or len(t) == 0:
        return ""
    return ", ".join(f"{html.escape(repr(tok))} {s:.2f}" for tok, _, s in list(t)[:k])


class LatentMap(W.VBox):
    """A 2-D map (plotly ``FigureWidget`` + ``Scattergl``: 100k+ background points stay interactive).

    The layout is fitted once on ``background`` (e.g. a sample of the vocabulary's input
    embeddings plus captured states) and new points are placed with ``transform``, so adding
    points never moves old ones. With ``method="umap"`` the map paints a PCA layout at once, fits
    UMAP in a background thread (a tqdm bar shows progress) and then swaps the layout in; fitted
    projections are cached on disk (see :mod:`explorer.projection`).

    ``nearest`` (optional) is called as ``nearest(vectors (n, d)) -> list[TokenTable]`` to put
    nearest tokens in the hover text of points whose steps carry no probes.
    """

    def __init__(self, background: Any = None, *, labels: Sequence[str] | None = None,
                 kinds: Sequence[str] | None = None, method: str = "umap", cache: bool = True,
                 cache_dir: str | Path | None = None, fit_in_background: bool = True,
                 max_fit: int = 20_000, umap_params: dict[str, Any] | None = None,
                 projection: Projection | None = None, nearest: Callable[[np.ndarray], list[TokenTable]] | None = None,
                 title: str = "", height: int = 520, width: int | None = None, **kwargs: Any) -> None:
        if method not in ("umap", "pca"):
            raise InputError(f"method must be 'umap' or 'pca', got {method!r}.")
        self.method = method
        self._cache, self._cache_dir = cache, cache_dir
        self._max_fit, self._umap_params = int(max_fit), dict(umap_params or {})
        self._fit_in_background = fit_in_background
        self._nearest = nearest
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._groups: dict[str, _Group] = {}
        self._selected: dict[int, list[int]] = {}
        self.error: BaseException | None = None
        self._projection: Projection | None = projection
        self._bg_coords = np.zeros((0, 2), np.float32)
        self.timings: dict[str, float] = {}
        self._listeners: list[Callable[["LatentMap"], None]] = []

        if background is not None and isinstance(background, Trajectory):
            labels = labels if labels is not None else background.labels
            background = background.vectors()
        self._bg = as_matrix(background, "background") if background is not None else None
        n_bg = 0 if self._bg is None else len(self._bg)
        if labels is not None and len(labels) != n_bg:
            raise InputError(f"labels has {len(labels)} entries for {n_bg} background vectors.")
        if kinds is not None and len(kinds) != n_bg:
            raise InputError(f"kinds has {len(kinds)} entries for {n_bg} background vectors.")
        self._bg_labels = [str(x) for x in labels] if labels is not None else [f"#{i}" for i in range(n_bg)]
        self._bg_kinds = np.asarray([str(k) for k in kinds]) if kinds is not None else np.full(n_bg, "background")

        self.figure = go.FigureWidget(layout=dict(
            height=height, width=width, title=dict(text=title, x=0.01, font=dict(size=13)) if title else None,
            margin=dict(l=10, r=10, t=34 if title else 10, b=10), hovermode="closest", dragmode="pan",
            xaxis=dict(showticklabels=False, zeroline=False, showgrid=False),
            yaxis=dict(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x"),
            legend=dict(orientation="h", y=-0.02, yanchor="top", font=dict(size=11)),
            plot_bgcolor="white", uirevision="latent-map"))
        self._status = W.HTML()
        from tqdm.notebook import tqdm as tqdm_notebook

        self._bar = tqdm_notebook(total=100, desc="UMAP", display=False, leave=False,
                                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}")
        self._bar.container.layout.display = "none"
        super().__init__([self._status, self._bar.container, self.figure], **kwargs)

        if self._projection is None and self._bg is not None:
            self._fit_initial()
        elif self._projection is not None:
            self._bg_coords = self._place_background(self._projection)
            self._set_status(f"{self._projection.method.upper()} layout (given)")
        self._draw_background()

    # -- fitting ------------------------------------------------------------------------------
    def _fit_set(self, x: np.ndarray) -> np.ndarray:
        return sample_rows(x, self._max_fit)

    def _place_background(self, proj: Projection) -> np.ndarray:
        if self._bg is None:
            return np.zeros((0, 2), np.float32)
        if len(self._bg) == len(proj.embedding) and self._max_fit >= len(self._bg):
            return proj.embedding.copy()
        return proj.place(self._bg)

    def _fit_initial(self, x: np.ndarray | None = None) -> None:
        x = self._bg if x is None else x
        assert x is not None
        t0 = time.perf_counter()
        pca = fit_projection(self._fit_set(x), "pca", cache=False)
        self._projection = pca
        self._bg_coords = self._place_background(pca)
        self.timings["pca"] = time.perf_counter() - t0
        if self.method == "pca":
            self._set_status(f"PCA layout of {len(x):,} points")
            return
        if len(x) < 5:
            self._set_status("PCA layout (too few points for UMAP)")
            return
        self._set_status(f"PCA layout now · fitting UMAP on {min(len(x), self._max_fit):,} points "
                         "(first fit in a session also compiles numba code: ~20–60 s)…")
        self._bar.reset(total=100)
        self._bar.container.layout.display = ""
        if self._fit_in_background:
            self._thread = threading.Thread(target=self._fit_umap, args=(x,), daemon=True, name="latent-map-umap")
            self._thread.start()
        else:
            self._fit_umap(x)

    def _progress(self, stage: str, frac: float) -> None:
        self._bar.set_postfix_str(stage, refresh=False)
        self._bar.n = int(frac * 100)
        self._bar.refresh()

    def _fit_umap(self, x: np.ndarray) -> None:
        t0 = time.perf_counter()
        try:
            proj = fit_projection(self._fit_set(x), "umap", cache=self._cache, cache_dir=self._cache_dir,
                                  progress=self._progress, **self._umap_params)
            # the first transform in a process compiles numba code (seconds to ~1.5 min for maps of
            # >= 4,096 points): pay it here, off the main thread, so later add() calls are instant
            self._progress("compiling transform", 0.9)
            proj.place(self._fit_set(x)[:2] * np.float32(1.0001) + np.float32(1e-4))
            self._progress("placing points", 0.98)
            self.timings["umap_fit"] = time.perf_counter() - t0
            self._apply(proj)
            self._progress("done", 1.0)
            self._bar.container.layout.display = "none"
            self._set_status(f"UMAP layout of {len(x):,} points "
                             f"({'from cache' if proj.from_cache else f'fitted in {proj.fit_seconds:.1f} s'})")
        except Exception as e:  # keep the PCA map usable and say why
            self.error = e
            self._bar.container.layout.display = "none"
            self._set_status(f"<span style='color:#b00'>UMAP failed ({html.escape(type(e).__name__)}: "
                             f"{html.escape(str(e))}); showing PCA.</span>")

    def _apply(self, proj: Projection) -> None:
        """Swap in a new projection: re-place the background and every group, then redraw."""
        bg = self._place_background(proj)
        coords = {name: proj.place(g.vectors) for name, g in self._groups.items()}
        with self._lock:
            self._projection = proj
            self._bg_coords = bg
            for name, c in coords.items():
                self._groups[name].coords = c
            with self.figure.batch_update():
                self._update_background_xy()
                for g in self._groups.values():
                    tr = self.figure.data[g.trace_index]
                    tr.x, tr.y = g.coords[:, 0], g.coords[:, 1]
        for cb in list(self._listeners):
            try:
                cb(self)
            except Exception:  # a broken listener must not break the map
                pass

    def _set_status(self, text: str) -> None:
        self._status.value = f"<span style='font-size:12px;color:var(--jp-ui-font-color2,#555)'>{text}</span>"

    # -- drawing ------------------------------------------------------------------------------
    def _draw_background(self) -> None:
        self._bg_traces: list[tuple[int, np.ndarray]] = []
        if self._bg is None:
            return
        for j, kind in enumerate(dict.fromkeys(self._bg_kinds.tolist())):
            idx = np.flatnonzero(self._bg_kinds == kind)
            c = self._bg_coords[idx]
            self.figure.add_trace(go.Scattergl(
                x=c[:, 0], y=c[:, 1], mode="markers", name=f"{kind} ({len(idx):,})",
                marker=dict(size=3 if len(idx) > 20_000 else 4, color=BACKGROUND_COLOURS[j % len(BACKGROUND_COLOURS)], opacity=0.55),
                hovertext=[self._bg_labels[i] for i in idx], hovertemplate="%{hovertext}<extra>" + html.escape(kind) + "</extra>"))
            self._bg_traces.append((len(self.figure.data) - 1, idx))
            self._hook_selection(len(self.figure.data) - 1)

    def _update_background_xy(self) -> None:
        for ti, idx in getattr(self, "_bg_traces", []):
            c = self._bg_coords[idx]
            self.figure.data[ti].x, self.figure.data[ti].y = c[:, 0], c[:, 1]

    def _hook_selection(self, ti: int) -> None:
        def on_select(trace: Any, points: Any, selector: Any) -> None:
            self._selected[ti] = list(points.point_inds)

        self.figure.data[ti].on_selection(on_select)
        self.figure.data[ti].on_deselect(lambda *a: self._selected.pop(ti, None))

    # -- public API ---------------------------------------------------------------------------
    @property
    def projection(self) -> Projection:
        if self._projection is None:
            raise InputError("this map has nothing to fit yet; pass background= or add() vectors first.")
        return self._projection

    @property
    def status(self) -> str:
        """``"pca"``, ``"fitting"``, ``"umap"`` or ``"failed"``."""
        if self.error is not None:
            return "failed"
        if self._thread is not None and self._thread.is_alive():
            return "fitting"
        return self._projection.method if self._projection is not None else "empty"

    def wait(self, timeout: float | None = None) -> "LatentMap":
        """Block until a background UMAP fit has been swapped in (or failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def on_layout(self, callback: Callable[["LatentMap"], None]) -> None:
        """Call ``callback(map)`` whenever a new layout is swapped in (e.g. UMAP replacing PCA)."""
        self._listeners.append(callback)

    def background_coords(self) -> np.ndarray:
        """(n, 2) coordinates of the background points in the current layout."""
        return self._bg_coords.copy()

    def coords(self, name: str) -> np.ndarray:
        """(n, 2) coordinates of an added group in the current layout."""
        if name not in self._groups:
            raise InputError(f"no group {name!r} on this map; groups are {list(self._groups)}.")
        return self._groups[name].coords.copy()

    @property
    def groups(self) -> list[str]:
        return list(self._groups)

    def place(self, vectors: Any) -> np.ndarray:
        """Where vectors would go on this map, without drawing them."""
        return self.projection.place(vectors)

    def add(self, data: Trajectory | Any, *, labels: Sequence[str] | None = None, name: str | None = None,
            kind: str | None = None, color_by: str = "step", path: bool | None = None) -> str:
        """Draw a trajectory (connected path with arrows, fading in with the steps) or a set of
        vectors (markers). ``color_by``: ``"step"`` (order), ``"layer"`` (depth parsed from step
        names) or ``"kind"`` (one colour per group). Returns the group's name. Old points stay put.
        """
        if color_by not in COLOR_BY:
            raise InputError(f"color_by must be one of {COLOR_BY}, got {color_by!r}.")
        if isinstance(data, Trajectory):
            vecs, steps = data.vectors(), data.names
            labels = list(labels) if labels is not None else [str(x) for x in data.labels]
            tables = [(s.probes.get("output"), s.probes.get("input")) for s in data]
            kind = kind or data.kind
            name = name or data.title or f"{data.kind} {len(self._groups) + 1}"
            path = True if path is None else path
        else:
            vecs = as_matrix(data)
            steps = [f"point.{i}" for i in range(len(vecs))]
            labels = [str(x) for x in labels] if labels is not None else steps
            tables = [(None, None)] * len(vecs)
            kind = kind or "points"
            name = name or f"points {len(self._groups) + 1}"
            path = False if path is None else path
        if len(labels) != len(vecs):
            raise InputError(f"{len(labels)} labels for {len(vecs)} vectors.")
        if name in self._groups:
            raise InputError(f"a group named {name!r} is already on the map; pass another name= or remove() it.")
        if self._projection is None:  # nothing fitted yet: fit on the first thing added
            self._bg_labels, self._bg_kinds = [], np.zeros(0, dtype=str)
            self._fit_initial(vecs)
        if self._nearest is not None and all(o is None and i is None for o, i in tables):
            try:
                tables = [(t, None) for t in self._nearest(vecs)]
            except Exception:  # hover text is a nicety; never fail the map for it
                pass
        hover = []
        for st, lab, (out, inp) in zip(steps, labels, tables):
            h = f"<b>{html.escape(lab)}</b> <span style='color:#888'>{html.escape(st)}</span>"
            if out is not None:
                h += f"<br>out: {_fmt_table(out)}"
            if inp is not None:
                h += f"<br>in: {_fmt_table(inp)}"
            hover.append(h)
        with self._lock:
            coords = self.projection.place(vecs)
            g = _Group(name, vecs, list(labels), list(steps), hover, kind, color_by, bool(path), coords)
            self._groups[name] = g
            self.figure.add_trace(self._group_trace(g, len(self._groups) - 1))
            g.trace_index = len(self.figure.data) - 1
            self._hook_selection(g.trace_index)
        return name

    def _group_trace(self, g: _Group, j: int) -> go.Scatter:
        n = len(g.vectors)
        colour = KIND_COLOURS[j % len(KIND_COLOURS)]
        if g.color_by == "kind":
            mcolour: Any = colour
            extra: dict[str, Any] = {}
        else:
            mcolour = np.arange(n, dtype=float) if g.color_by == "step" else layer_numbers(g.steps)
            extra = dict(colorscale="Viridis", showscale=False, cmin=float(np.min(mcolour)), cmax=float(np.max(mcolour)) or 1.0)
        marker = dict(size=11 if g.path else 9, color=mcolour, line=dict(width=0.5, color="#333"),
                      opacity=np.linspace(0.35, 1.0, n) if (g.path and n > 1) else 0.95, **extra)
        if g.path:
            marker.update(symbol="arrow", angleref="previous")
        return go.Scatter(x=g.coords[:, 0], y=g.coords[:, 1], mode="lines+markers" if g.path else "markers+text",
                          name=g.name, text=None if g.path else g.labels, textposition="top center",
                          line=dict(color=colour, width=1.5), marker=marker, hovertext=g.hover,
                          hovertemplate="%{hovertext}<extra>" + html.escape(g.kind) + "</extra>")

    def remove(self, name: str) -> None:
        """Take a group off the map (other points stay where they are)."""
        if name not in self._groups:
            raise InputError(f"no group {name!r}; groups are {list(self._groups)}.")
        with self._lock:
            g = self._groups.pop(name)
            self.figure.data = [t for i, t in enumerate(self.figure.data) if i != g.trace_index]
            for other in self._groups.values():
                if other.trace_index > g.trace_index:
                    other.trace_index -= 1

    def selection(self) -> list[dict[str, Any]]:
        """Points chosen with the box / lasso tools: ``[{group, index, label, x, y}]``."""
        out = []
        bg_map = {ti: idx for ti, idx in getattr(self, "_bg_traces", [])}
        for ti, inds in sorted(self._selected.items()):
            for i in inds:
                if ti in bg_map:
                    j = int(bg_map[ti][i])
                    out.append({"group": "background", "index": j, "label": self._bg_labels[j],
                                "x": float(self._bg_coords[j, 0]), "y": float(self._bg_coords[j, 1])})
                    continue
                g = next((g for g in self._groups.values() if g.trace_index == ti), None)
                if g is not None:
                    out.append({"group": g.name, "index": int(i), "label": g.labels[i],
                                "x": float(g.coords[i, 0]), "y": float(g.coords[i, 1])})
        return out

    def __repr__(self) -> str:
        n = 0 if self._bg is None else len(self._bg)
        return f"LatentMap(background={n:,}, groups={self.groups}, status={self.status!r})"
