"""CorpusMap: a map of a whole corpus capture (10^5–10^6+ points) drawn with WebGL, selection back to pandas.

Built on jupyter-scatter (``jscatter``: an anywidget around regl-scatterplot that bundles its
JavaScript, so it works offline). Points travel to the browser once, as one float32 binary buffer
(x, y and the colour value per point; never JSON lists); hover text is fetched from the kernel for
the one point under the mouse; a box or lasso selection comes back as a uint32 binary buffer of
row indices and becomes a pandas DataFrame here. Trajectories are drawn on top of the cloud as
annotations (a polyline whose width is in screen pixels, plus a small square per step).
"""
from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import ipywidgets as W
import numpy as np

from explorer.errors import DependencyError, InputError
from explorer.projection import Projection, as_matrix, layout
from explorer.trajectory import Trajectory

from .latent_map import layer_numbers

#: a string or integer column with at most this many distinct values is coloured by category
MAX_CATEGORIES = 20
OTHER = "(other)"
POINT_NAME = re.compile(r"embed|final|(?:layer|iter|thought)\.\d+")
TRAJECTORY_COLOURS = ["#d62728", "#111111", "#7b3294", "#1f77b4", "#e66101", "#1b7837"]
DEFAULT_HOVER = ("text", "token", "point")


def _jscatter() -> Any:
    try:
        import jscatter
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DependencyError("CorpusMap draws with jupyter-scatter: pip install 'jupyter-scatter>=1.0'.") from e
    return jscatter


@dataclass
class _Trajectory:
    name: str
    vectors: np.ndarray
    labels: list[str]
    steps: list[str]
    colour: str
    coords: np.ndarray


# -- input ----------------------------------------------------------------------------------------
def _as_data(data: Any) -> Any:
    """A pandas DataFrame or a pyarrow Table from what the user passed (``.table()`` is called)."""
    import pandas as pd
    import pyarrow as pa

    if not isinstance(data, (pd.DataFrame, pa.Table)) and callable(getattr(data, "table", None)):
        data = data.table()
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, (pd.DataFrame, pa.Table)):
        raise InputError(f"CorpusMap takes a pandas DataFrame, a pyarrow Table or an object with a .table() method "
                         f"(a corpus capture), not a {type(data).__name__}.")
    return data


def _columns(data: Any) -> list[str]:
    return [str(c) for c in (data.column_names if hasattr(data, "column_names") else data.columns)]


def _vectors(data: Any, column: str, n: int) -> np.ndarray:
    """(n, d) float32 from a fixed-size-list / list Arrow column (no copy for one float32 chunk) or a
    pandas column of equal-length arrays."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        col = data.column(column)
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if arr.null_count:
            raise InputError(f"column {column!r} has {arr.null_count:,} missing vectors; drop those rows first "
                             "(table.filter(pc.is_valid(table[column]))).")
        t = arr.type
        if pa.types.is_fixed_size_list(t):
            d = t.list_size
            flat = arr.flatten()  # respects slicing; zero-copy for a fixed-size list
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            import pyarrow.compute as pc

            lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
            d = int(lengths[0]) if len(lengths) else 0
            if len(lengths) and (lengths != d).any():
                raise InputError(f"column {column!r} holds vectors of different lengths "
                                 f"({int(lengths.min())} to {int(lengths.max())}); every row needs the same size.")
            flat = arr.flatten()
        else:
            raise InputError(f"column {column!r} must hold vectors (a fixed_size_list<float32> column), "
                             f"got {t}; pass vector= the name of the vector column.")
        if not (pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type)):
            raise InputError(f"column {column!r} holds {flat.type} values, not numbers.")
        if flat.null_count:
            raise InputError(f"column {column!r} has missing numbers inside vectors; fix or drop those rows.")
        v = flat.to_numpy(zero_copy_only=False)
        if len(v) != n * d:
            raise InputError(f"column {column!r} holds {len(v):,} numbers for {n:,} rows of {d}; cannot reshape.")
        return as_matrix(v.reshape(n, d), column)
    s = data[column]
    first = s.iloc[0]
    if np.ndim(first) != 1:
        raise InputError(f"column {column!r} must hold one 1-d vector per row, got {type(first).__name__} "
                         f"with shape {np.shape(first)}; pass vector= the name of the vector column.")
    d = len(first)
    try:
        v = np.stack(s.to_numpy())
    except ValueError as e:
        raise InputError(f"column {column!r} holds vectors of different lengths; every row needs {d} numbers.") from e
    return as_matrix(v, column)


def _numeric(values: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(f"column {name!r} must hold numbers (a coordinate), "
                         f"got {getattr(values, 'dtype', '?')}.") from e
    if not np.isfinite(a).all():
        raise InputError(f"column {name!r} has NaN or inf coordinates; drop or fix those rows.")
    return a


def colour_values(series: Any) -> tuple[str, Any, dict[str, Any]]:
    """How a column is coloured: ``("categorical", pd.Categorical, {})`` or ``("continuous", float
    array, {"norm": (lo, hi)})``. Capture-point names (``embed``, ``layer.i``, ``final``) are ordered
    by depth; with more than :data:`MAX_CATEGORIES` of them the depth is coloured continuously.
    Strings or integers with few values are categories; strings with many keep the most frequent
    ``MAX_CATEGORIES - 1`` and put the rest in ``"(other)"``; other numbers are continuous."""
    import pandas as pd

    s = series
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("str").where(s.notna())  # pandas 2 turns missing values into "nan" otherwise
    if pd.api.types.is_bool_dtype(s.dtype):
        return "categorical", pd.Categorical(s.astype("str"), categories=["False", "True"]), {}
    if pd.api.types.is_numeric_dtype(s.dtype):
        vals = np.asarray(s, dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        uniq = np.unique(finite)
        is_int = pd.api.types.is_integer_dtype(s.dtype) or bool(len(uniq) and np.all(uniq == np.round(uniq)))
        if is_int and 0 < len(uniq) <= MAX_CATEGORIES:
            labels = [str(int(u)) for u in uniq]
            codes = np.where(np.isfinite(vals), np.searchsorted(uniq, np.where(np.isfinite(vals), vals, 0)), -1)
            return "categorical", pd.Categorical.from_codes(codes, categories=labels), {}
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        return "continuous", vals.astype(np.float32), {"norm": (lo, hi if hi > lo else lo + 1.0)}
    if not pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        s = s.astype("str").where(s.notna())  # Arrow-backed strings (pandas >= 3): counting 10^6 rows stays fast
    counts = s.value_counts()
    names = [str(x) for x in counts.index]
    if names and all(POINT_NAME.fullmatch(x) for x in names):
        depth = dict(zip(names, layer_numbers(names)))
        if len(names) > MAX_CATEGORIES:
            d = s.map(depth).to_numpy(dtype=np.float32, na_value=np.nan)
            lo, hi = float(min(depth.values())), float(max(depth.values()))
            return "continuous", d, {"norm": (lo, hi if hi > lo else lo + 1.0)}
        return "categorical", pd.Categorical(s, categories=sorted(names, key=lambda x: depth[x])), {}
    if len(names) <= MAX_CATEGORIES:
        return "categorical", pd.Categorical(s, categories=sorted(names, key=_natural)), {}
    keep = names[: MAX_CATEGORIES - 1]
    return "categorical", pd.Categorical(s.where(s.isin(keep) | s.isna(), OTHER), categories=[*keep, OTHER]), {}


def _natural(text: str) -> list[Any]:
    """Sort key that puts "tok2" before "tok10"."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]


def _domains(coords: np.ndarray, pad: float = 0.04) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y ranges with one common span (a projection's units are the same on both axes) and a margin."""
    lo, hi = coords.min(axis=0).astype(np.float64), coords.max(axis=0).astype(np.float64)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2, 1e-6) * (1 + 2 * pad)
    return (float(centre[0] - half), float(centre[0] + half)), (float(centre[1] - half), float(centre[1] + half))


def pd_is_numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series.dtype))


def _colour_map(categories: Sequence[str]) -> dict[str, Any]:
    from jscatter.color_maps import glasbey_dark, gray_light, okabe_ito

    palette = okabe_ito if len(categories) <= len(okabe_ito) else glasbey_dark
    out, j = {}, 0
    for c in categories:
        if c == OTHER:
            out[c] = gray_light
        else:
            out[c] = palette[j % len(palette)]
            j += 1
    return out


# -- the widget -----------------------------------------------------------------------------------
class CorpusMap(W.VBox):
    """A WebGL map of every row of a table of vectors (a corpus capture: one row per token).

    ``data``: a pandas DataFrame, a pyarrow Table, or any object whose ``.table()`` returns one
    (the corpus capture). If it has columns ``x`` and ``y`` they are the layout; otherwise the
    ``vector`` column (``fixed_size_list<float32>``; read without a copy) is projected with
    :func:`explorer.projection.layout`: fitted on a seeded sample of ``max_fit`` rows, the rest
    placed. ``method="umap"`` paints the PCA layout at once, fits UMAP in a background thread (a
    progress bar in the widget) and swaps the coordinates in (``wait()``; ``status``).

    One projection across capture points (say ``layer.3`` and ``layer.20`` in one table) mixes
    spaces that have little to do with each other, so a table whose ``point`` column holds several
    points is refused unless ``mix_points=True``: filter to one point first.

    ``color``: a column to colour by (``color_by()`` changes it later); ``hover``: the columns shown
    when the mouse is over a point (a long-text one, e.g. a document's text, as the preview). Extra
    keywords go to :class:`jscatter.Scatter` (``size=``, ``opacity=``, ``background_color=`` …).

    The box (rectangle) and lasso tools are in the toolbar on the left (or ``tool("box")``);
    ``selection()`` is a DataFrame of the selected rows (every column but the vectors, plus x and
    y; the input's index), ``selected_indices()`` their row positions, ``on_select(callback)``.
    ``add_trajectory(traj_or_vectors)`` draws a path on top of the cloud, placed with the map's
    projection.
    """

    def __init__(self, data: Any, *, x: str = "x", y: str = "y", vector: str = "vector", color: str | None = "point",
                 hover: str | Sequence[str] = DEFAULT_HOVER, method: str = "pca", max_fit: int = 20_000,
                 height: int = 560, mix_points: bool = False, cache: bool = True, cache_dir: Any = None,
                 fit_in_background: bool = True, umap_params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        from explorer.validate import whole

        t_start = time.perf_counter()
        if method not in ("pca", "umap"):
            raise InputError(f"method must be 'pca' or 'umap', got {method!r}.")
        self.method = method
        self.x, self.y, self.vector = str(x), str(y), str(vector)
        self._max_fit = whole(max_fit, "max_fit", lo=3)
        height = whole(height, "height", lo=50)
        self._cache, self._cache_dir, self._umap_params = cache, cache_dir, dict(umap_params or {})
        self._fit_in_background = fit_in_background
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._projection: Projection | None = None
        self._vectors: np.ndarray | None = None
        self._trajectories: dict[str, _Trajectory] = {}
        self._listeners: list[Callable[["CorpusMap"], None]] = []
        self._layout_listeners: list[Callable[["CorpusMap"], None]] = []
        self._selected = np.zeros(0, np.int64)
        self.error: BaseException | None = None
        self.timings: dict[str, float] = {}

        # -- the rows ---------------------------------------------------------------------------
        t0 = time.perf_counter()
        data = _as_data(data)
        cols = _columns(data)
        n = data.num_rows if hasattr(data, "num_rows") else len(data)
        if n == 0:
            raise InputError("the table has no rows; capture some text first, or filter less.")
        self._n = n
        has_xy = self.x in cols and self.y in cols
        if (self.x in cols) != (self.y in cols):
            have, lack = (self.x, self.y) if self.x in cols else (self.y, self.x)
            raise InputError(f"the table has a {have!r} column but no {lack!r}; pass both coordinates "
                             f"(x=, y= name them) or neither, and a {self.vector!r} column to project.")
        if not has_xy and self.vector not in cols:
            raise InputError(f"the table has neither coordinates ({self.x!r}, {self.y!r}) nor a vector column "
                             f"({self.vector!r}); its columns are {cols}. Name them with x=, y= or vector=.")
        self._frame = self._meta_frame(data, cols)
        self.timings["table"] = time.perf_counter() - t0

        # -- the layout -------------------------------------------------------------------------
        if has_xy:
            self._coords = np.column_stack([_numeric(self._frame[self.x], self.x),
                                            _numeric(self._frame[self.y], self.y)]).astype(np.float32)
        else:
            if "point" in cols and not mix_points:
                points = self._frame["point"].dropna().unique()
                if len(points) > 1:
                    shown = ", ".join(sorted(map(str, points))[:6]) + (" …" if len(points) > 6 else "")
                    raise InputError(f"the table holds vectors from {len(points)} capture points ({shown}); one "
                                     "map of several layers mixes unrelated spaces. Filter to one point first "
                                     "(e.g. table.filter(pc.equal(table['point'], 'layer.20'))), or pass "
                                     "mix_points=True to fit one projection across them.")
            t0 = time.perf_counter()
            self._vectors = _vectors(data, self.vector, n)
            self.timings["vectors"] = time.perf_counter() - t0
            if n < 3:
                raise InputError(f"a map needs at least 3 rows to fit a projection, got {n}.")
            t0 = time.perf_counter()
            self._coords, self._projection = layout(self._vectors, "pca", max_fit=self._max_fit, cache=False)
            self.timings["pca"] = time.perf_counter() - t0
            self._frame[self.x] = self._coords[:, 0]
            self._frame[self.y] = self._coords[:, 1]

        # -- hover and colour -------------------------------------------------------------------
        hover = (hover,) if isinstance(hover, str) else tuple(hover or ())
        missing = [c for c in hover if c not in self._frame.columns]
        if missing and tuple(hover) != DEFAULT_HOVER:
            raise InputError(f"hover columns {missing} are not in the table; its columns are {self.columns}.")
        self.hover = [c for c in hover if c in self._frame.columns]
        if color is not None and color not in self._frame.columns:
            if color != "point":  # the default: a table without capture points is simply not coloured
                raise InputError(f"cannot colour by {color!r}: no such column; pick one of {self.columns}.")
            color = None

        # -- the drawing ------------------------------------------------------------------------
        t0 = time.perf_counter()
        jscatter = _jscatter()
        self._jframe = self._jscatter_frame()
        preview = self._preview_column()
        props = [c for c in self.hover if c != preview]
        self._tooltip_columns = props
        xs, ys = _domains(self._coords)
        options: dict[str, Any] = dict(
            height=height, axes=False, legend=True, legend_position="top-right", tooltip=True,
            tooltip_properties=props or ["x", "y"], tooltip_histograms=False, lasso_type="rectangle",
            tooltip_preview=preview, tooltip_preview_text_lines=4, x_scale=xs, y_scale=ys)
        options.update(kwargs)
        self.scatter = jscatter.Scatter(data=self._jframe, x=self.x, y=self.y, **options)
        self.plot = self.scatter.widget
        self.color = None
        self.color_by(color)
        self.plot.observe(self._on_selection, names="selection")
        self.timings["widget"] = time.perf_counter() - t0

        self._status = W.HTML()
        from tqdm.notebook import tqdm as tqdm_notebook

        self._bar = tqdm_notebook(total=100, desc="UMAP", display=False, leave=False,
                                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}")
        self._bar.container.layout.display = "none"
        super().__init__([self._status, self._bar.container, self.plot])
        what = "given coordinates" if has_xy else f"PCA (fitted on {min(n, self._max_fit):,} rows)"
        self._set_status(f"{n:,} points · {what}")
        if not has_xy and method == "umap":
            self._start_umap()
        self.timings["total"] = time.perf_counter() - t_start

    # -- building -------------------------------------------------------------------------------
    def _meta_frame(self, data: Any, cols: list[str]) -> Any:
        """Every column but the vectors, as pandas (Arrow strings stay Arrow-backed in pandas >= 3)."""
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            keep = [c for c in data.columns if str(c) != self.vector]
            return data[keep].copy(deep=False)
        rest = data.drop_columns([self.vector]) if self.vector in cols else data
        return rest.to_pandas()

    def _jscatter_frame(self) -> Any:
        """What jscatter holds: the coordinates, the hover columns and (later) the colour column, on
        a plain 0..n-1 index (its selections are row positions)."""
        import pandas as pd

        cols: dict[str, Any] = {self.x: self._coords[:, 0], self.y: self._coords[:, 1]}
        for c in self.hover:
            if c not in cols:
                cols[c] = self._frame[c].array  # no copy (Arrow strings stay Arrow)
        return pd.DataFrame(cols, index=pd.RangeIndex(self._n))

    def _preview_column(self) -> str | None:
        """The first hover column of long strings (a document's text) becomes the tooltip preview."""
        import pandas as pd

        for c in self.hover:
            s = self._frame[c]
            if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
                sample = s.iloc[:: max(1, len(s) // 500)].dropna().astype(str)
                if len(sample) and sample.str.len().mean() > 24:
                    return c
        return None

    def _set_status(self, text: str) -> None:
        self._status.value = f"<span style='font-size:12px;color:var(--jp-ui-font-color2,#555)'>{text}</span>"

    # -- UMAP in the background -----------------------------------------------------------------
    def _start_umap(self) -> None:
        n = self._n
        self._set_status(f"{n:,} points · PCA layout now · fitting UMAP on {min(n, self._max_fit):,} of them, then "
                         "placing the rest (the first fit in a session also compiles numba code: ~1 min)…")
        self._bar.reset(total=100)
        self._bar.container.layout.display = ""
        if self._fit_in_background:
            self._thread = threading.Thread(target=self._fit_umap, daemon=True, name="corpus-map-umap")
            self._thread.start()
        else:
            self._fit_umap()

    def _progress(self, stage: str, frac: float) -> None:
        self._bar.set_postfix_str(stage, refresh=False)
        self._bar.n = int(frac * 100)
        self._bar.refresh()

    def _fit_umap(self) -> None:
        t0 = time.perf_counter()
        try:
            coords, proj = layout(self._vectors, "umap", max_fit=self._max_fit, cache=self._cache,
                                  cache_dir=self._cache_dir, progress=self._progress, **self._umap_params)
            self.timings["umap"] = time.perf_counter() - t0
            self._apply(coords, proj)
            self._bar.container.layout.display = "none"
            how = "from cache" if proj.from_cache else f"fitted in {proj.fit_seconds:.1f} s"
            self._set_status(f"{self._n:,} points · UMAP layout ({how}; {self.timings['umap']:.1f} s in all)")
        except Exception as e:  # keep the PCA map usable and say why
            self.error = e
            self._bar.container.layout.display = "none"
            self._set_status(f"<span style='color:#b00'>UMAP failed ({html.escape(type(e).__name__)}: "
                             f"{html.escape(str(e))}); showing PCA.</span>")

    def _apply(self, coords: np.ndarray, proj: Projection) -> None:
        """Swap in a new layout: the points, every trajectory, then redraw (one points buffer)."""
        placed = {name: proj.place(t.vectors) for name, t in self._trajectories.items()}
        with self._lock:
            self._projection, self._coords = proj, np.asarray(coords, np.float32)
            self._frame[self.x] = self._coords[:, 0]
            self._frame[self.y] = self._coords[:, 1]
            self._jframe[self.x] = self._coords[:, 0]
            self._jframe[self.y] = self._coords[:, 1]
            for name, t in self._trajectories.items():  # one added while the others were being placed, too
                t.coords = placed[name] if name in placed else proj.place(t.vectors)
            xs, ys = _domains(self._coords)
            self.scatter.xy(x=self.x, y=self.y, x_scale=xs, y_scale=ys, animate=False)
            self.plot.reset_view()
            self._draw_trajectories()
        for cb in list(self._layout_listeners):
            try:
                cb(self)
            except Exception:  # a broken listener must not break the map
                pass

    # -- colour ---------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The columns of :meth:`selection` (every input column but the vectors, plus x and y)."""
        return [str(c) for c in self._frame.columns]

    def color_by(self, column: str | None) -> "CorpusMap":
        """Colour the points by ``column`` (categories or a continuous scale, see :func:`colour_values`);
        ``None`` for one colour."""
        if column is not None and column not in self._frame.columns:
            raise InputError(f"cannot colour by {column!r}: no such column; pick one of {self.columns}.")
        t0 = time.perf_counter()
        for c in [c for c in self._jframe.columns if str(c).startswith("color: ")]:
            if c != f"color: {column}":
                del self._jframe[c]
        if column is None:
            self.scatter.color(by=None, default=(0.27, 0.45, 0.7, 1.0))
            self.scatter.legend(False)
        else:
            kind, values, extra = colour_values(self._frame[column])
            name = f"color: {column}"
            self._jframe[name] = values
            depth = kind == "continuous" and not pd_is_numeric(self._frame[column])  # from point names
            title = {"variable": f"{column} (depth)" if depth else column}
            if kind == "categorical":
                self.scatter.color(by=name, map=_colour_map(list(values.categories)), norm=None, labeling=title)
            else:
                self.scatter.color(by=name, map="viridis", norm=extra["norm"], labeling=title)
            self.scatter.legend(True)
        # the tooltip shows the colour's value too, unless it already shows that column
        props = list(self._tooltip_columns) + (["color"] if column is not None and column not in self.hover else [])
        self.scatter.tooltip(properties=props or ["x", "y"])
        self.color = column
        self.timings["color"] = time.perf_counter() - t0
        return self

    # -- selection ------------------------------------------------------------------------------
    def _on_selection(self, change: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        idx = change.get("new")
        sel = np.zeros(0, np.int64) if idx is None else np.asarray(idx, dtype=np.int64).ravel()
        sel = sel[(sel >= 0) & (sel < self._n)]
        if len(sel) > 1 and not (sel[1:] > sel[:-1]).all():  # regl-scatterplot sends them in its index order
            mask = np.zeros(self._n, bool)  # sort and de-duplicate in O(n): np.unique is ~10x slower here
            mask[sel] = True
            sel = np.flatnonzero(mask)
        self._selected = sel
        self.timings["selection_sync"] = time.perf_counter() - t0
        for cb in list(self._listeners):
            try:
                cb(self)
            except Exception as e:  # show it, but keep the map alive
                self._set_status(f"<span style='color:#b00'>on_select callback failed: "
                                 f"{html.escape(type(e).__name__)}: {html.escape(str(e))}</span>")

    def selected_indices(self) -> np.ndarray:
        """Row positions (0 … n-1, sorted) of the points selected with the box or lasso."""
        return self._selected.copy()

    def selection(self) -> Any:
        """The selected rows as a pandas DataFrame: every column but the vectors, plus x and y,
        indexed like the input (a DataFrame's own index; 0 … n-1 for a table)."""
        t0 = time.perf_counter()
        out = self._frame.iloc[self._selected]
        self.timings["selection"] = time.perf_counter() - t0
        return out

    def select(self, indices: Any) -> "CorpusMap":
        """Select rows by position from Python (the browser shows them); ``[]`` or None clears."""
        idx = np.zeros(0, np.int64) if indices is None else np.asarray(indices, dtype=np.int64).ravel()
        if len(idx) and (idx.min() < 0 or idx.max() >= self._n):
            raise InputError(f"row positions must be in 0 … {self._n - 1}, got {idx.min()} … {idx.max()}.")
        self.scatter.selection(idx.astype(np.uint32))
        return self

    def tool(self, name: str) -> "CorpusMap":
        """What a mouse drag does: ``"pan"`` (and the wheel zooms), ``"box"``, ``"lasso"`` (free
        hand) or ``"brush"`` (a thick stroke) selection — the toolbar's buttons, from Python."""
        if name == "pan":
            self.plot.mouse_mode = "panZoom"
            return self
        types = {"box": "rectangle", "lasso": "freeform", "brush": "brush"}
        if name not in types:
            raise InputError(f"tool must be one of pan, box, lasso, brush; got {name!r}.")
        self.plot.lasso_type = types[name]
        self.plot.mouse_mode = "lasso"
        return self

    def on_select(self, callback: Callable[["CorpusMap"], None]) -> None:
        """Call ``callback(map)`` whenever the selection changes (read ``map.selection()`` in it)."""
        if not callable(callback):
            raise InputError("on_select takes a function of the map, e.g. lambda m: print(len(m.selection())).")
        self._listeners.append(callback)

    def on_layout(self, callback: Callable[["CorpusMap"], None]) -> None:
        """Call ``callback(map)`` when a new layout is swapped in (UMAP replacing PCA)."""
        self._layout_listeners.append(callback)

    # -- trajectories ---------------------------------------------------------------------------
    @property
    def projection(self) -> Projection:
        if self._projection is None:
            raise InputError("this map was drawn from given x/y columns, so it has no projection to place new "
                             "vectors with; build it from a vector column instead.")
        return self._projection

    def place(self, vectors: Any) -> np.ndarray:
        """Where vectors would go on this map (the current projection), without drawing them."""
        return self.projection.place(vectors)

    def add_trajectory(self, trajectory: Trajectory | Any, name: str | None = None, *,
                       labels: Sequence[str] | None = None) -> str:
        """Draw a trajectory (or an (n, d) array of vectors in order) as a path on top of the cloud,
        placed with the map's projection; old points never move. Returns its name."""
        if isinstance(trajectory, Trajectory):
            vecs, steps = trajectory.vectors(), list(trajectory.names)
            labs = [str(x) for x in (labels if labels is not None else trajectory.labels)]
            name = name or trajectory.title or f"trajectory {len(self._trajectories) + 1}"
        else:
            vecs = as_matrix(trajectory, "trajectory")
            steps = [f"step.{i}" for i in range(len(vecs))]
            labs = [str(x) for x in labels] if labels is not None else steps
            name = name or f"trajectory {len(self._trajectories) + 1}"
        if len(vecs) == 0:
            raise InputError("the trajectory has no steps.")
        if len(labs) != len(vecs):
            raise InputError(f"{len(labs)} labels for {len(vecs)} steps.")
        if name in self._trajectories:
            raise InputError(f"a trajectory named {name!r} is already on the map; pass another name= or "
                             "remove_trajectory() it.")
        with self._lock:
            coords = self.projection.place(vecs)
            colour = TRAJECTORY_COLOURS[len(self._trajectories) % len(TRAJECTORY_COLOURS)]
            self._trajectories[name] = _Trajectory(name, vecs, labs, steps, colour, coords)
            self._draw_trajectories()
        return name

    def remove_trajectory(self, name: str) -> None:
        if name not in self._trajectories:
            raise InputError(f"no trajectory {name!r}; the map has {list(self._trajectories)}.")
        with self._lock:
            del self._trajectories[name]
            self._draw_trajectories()

    @property
    def trajectories(self) -> list[str]:
        return list(self._trajectories)

    def trajectory_coords(self, name: str) -> np.ndarray:
        """(steps, 2) coordinates of a drawn trajectory in the current layout."""
        if name not in self._trajectories:
            raise InputError(f"no trajectory {name!r}; the map has {list(self._trajectories)}.")
        return self._trajectories[name].coords.copy()

    def _draw_trajectories(self) -> None:
        """Every trajectory as annotations over the points: a polyline (2 px, any zoom) and a small
        square per step (the last one larger), in data coordinates."""
        jscatter = _jscatter()
        ext = np.ptp(self._coords, axis=0) if self._n > 1 else np.ones(2)
        r = 0.006 * float(max(ext.max(), 1e-6))
        ann: list[Any] = []
        for t in self._trajectories.values():
            pts = [(float(a), float(b)) for a, b in t.coords]
            if len(pts) > 1:
                ann.append(jscatter.Line(pts, line_color=t.colour, line_width=2))
            for j, (a, b) in enumerate(pts):
                s = r * (2.0 if j == len(pts) - 1 else 1.0)
                ann.append(jscatter.Rect(a - s, a + s, b - s, b + s, line_color=t.colour, line_width=2))
        self.scatter.annotations(ann)

    # -- state ----------------------------------------------------------------------------------
    def coords(self) -> np.ndarray:
        """(n, 2) float32 coordinates of every row in the current layout."""
        return self._coords.copy()

    @property
    def status(self) -> str:
        """``"given"`` (x/y columns), ``"pca"``, ``"fitting"``, ``"umap"`` or ``"failed"`` (PCA stays)."""
        if self.error is not None:
            return "failed"
        if self._thread is not None and self._thread.is_alive():
            return "fitting"
        return "given" if self._projection is None else self._projection.method

    def wait(self, timeout: float | None = None) -> "CorpusMap":
        """Block until a background UMAP fit has been swapped in (or failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def to_csv(self, path: Any, columns: Sequence[str] | None = None) -> Any:
        """The layout as CSV (``x, y`` and the metadata ``columns``; default: every column of the table but
        the vectors), written atomically; returns the path. Embedding Atlas
        and spreadsheets open it as it is."""
        from explorer.corpus import write_layout_csv

        frame = self._frame
        cols = [c for c in (frame.columns if columns is None else columns) if c not in ("x", "y")]
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError(f"no column(s) {missing}; the map has {list(frame.columns)}.")
        return write_layout_csv(path, self._coords, {str(c): frame[c].tolist() for c in cols})

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (f"CorpusMap({self._n:,} points, color={self.color!r}, trajectories={self.trajectories}, "
                f"status={self.status!r})")
