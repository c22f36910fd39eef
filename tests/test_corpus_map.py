"""CorpusMap without a browser: inputs, layout, colour, selection → DataFrame, trajectories, typed errors."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pytest.importorskip("jscatter")

from explorer.errors import InputError  # noqa: E402
from explorer.projection import PCAProjection, fit_projection  # noqa: E402
from explorer.trajectory import Trajectory  # noqa: E402
from widgets import CorpusMap  # noqa: E402
from widgets import corpus_map as cm  # noqa: E402

N, D = 600, 12


def _vectors(n: int = N, d: int = D, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    centres = rng.normal(0, 6, (3, d))
    return (centres[label] + rng.normal(0, 1, (n, d))).astype(np.float32), label, centres


def _table(n: int = N, d: int = D, point: str | list[str] = "layer.3") -> pa.Table:
    v, label, _ = _vectors(n, d)
    points = [point] * n if isinstance(point, str) else point
    return pa.table({"doc": (np.arange(n) // 50).astype(np.int64),
                     "text": [f"document {i // 50} says something long enough to preview" for i in range(n)],
                     "position": (np.arange(n) % 50).astype(np.int32),
                     "token": [f"tok{i % 37}" for i in range(n)], "point": points,
                     "label": np.array(list("abc"))[label],
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), d)})


class Capture:
    """What the corpus capture provides: an object with a ``.table()``."""

    def __init__(self, t: pa.Table) -> None:
        self._t = t

    def table(self) -> pa.Table:
        return self._t


def _points(m: CorpusMap) -> np.ndarray:
    """The (n, 2) coordinates jscatter holds (what is sent to the browser, before normalising)."""
    return np.column_stack([m.scatter._data[m.x].to_numpy(), m.scatter._data[m.y].to_numpy()])


# -- construction ------------------------------------------------------------------------------
def test_from_table_projects_the_vectors_with_pca_on_a_sample():
    t = _table()
    m = CorpusMap(t, max_fit=200)
    v, _, _ = _vectors()
    assert m.status == "pca" and len(m) == N and isinstance(m.projection, PCAProjection)
    assert len(m.projection.embedding) == 200                        # fitted on a sample only
    np.testing.assert_allclose(m.coords(), m.projection.place(v), atol=1e-4)  # the rest placed
    np.testing.assert_allclose(_points(m), m.coords(), atol=1e-5)
    assert m.columns == ["doc", "text", "position", "token", "point", "label", "x", "y"]
    assert set(m.timings) >= {"table", "vectors", "pca", "widget", "total"}


def test_vectors_are_read_from_arrow_without_a_copy():
    t = _table()
    flat = t.column("vector").chunk(0).values
    got = cm._vectors(t, "vector", N)
    assert got.shape == (N, D) and got.dtype == np.float32
    assert np.shares_memory(got, np.frombuffer(flat.buffers()[1], np.float32))
    # a sliced table (offset into the list array) still lines up
    s = t.slice(100, 50)
    np.testing.assert_array_equal(cm._vectors(s, "vector", 50), got[100:150])


def test_from_a_dataframe_and_from_an_object_with_table():
    t = _table()
    df = t.to_pandas()
    df.index = np.arange(1000, 1000 + N)                             # the input's own index is kept
    m1 = CorpusMap(df)
    m2 = CorpusMap(Capture(t))
    np.testing.assert_allclose(m1.coords(), m2.coords(), atol=1e-4)
    m1.plot.selection = np.array([2, 0], np.uint32)
    assert list(m1.selection().index) == [1000, 1002]


def test_given_x_and_y_are_used_as_they_are():
    v, label, _ = _vectors()
    df = pd.DataFrame({"x": v[:, 0], "y": v[:, 1], "label": label, "token": [f"t{i}" for i in range(N)]})
    m = CorpusMap(df, color="label")
    assert m.status == "given"
    np.testing.assert_array_equal(m.coords(), v[:, :2])
    with pytest.raises(InputError, match="no projection"):
        m.add_trajectory(v[:3])
    # other names for the coordinates
    m2 = CorpusMap(df.rename(columns={"x": "u", "y": "w"}), x="u", y="w", color=None)
    np.testing.assert_array_equal(m2.coords(), v[:, :2])


# -- colour -------------------------------------------------------------------------------------
def test_colour_kinds_and_switching():
    t = _table(point=[("final", "layer.10", "embed", "layer.2")[i % 4] for i in range(N)])
    m = CorpusMap(t, mix_points=True)                                # colour: point (the default)
    col = m.scatter._data["color: point"]
    assert list(col.cat.categories) == ["embed", "layer.2", "layer.10", "final"]   # by depth
    assert m.scatter.color()["by"] == "color: point" and m.color == "point"
    m.color_by("label")
    assert list(m.scatter._data["color: label"].cat.categories) == ["a", "b", "c"]
    assert "color: point" not in m.scatter._data.columns              # one colour column at a time
    m.color_by("token")                                              # 37 values: top 19 + (other)
    cats = list(m.scatter._data["color: token"].cat.categories)
    assert len(cats) == cm.MAX_CATEGORIES and cats[-1] == cm.OTHER
    m.color_by("position")                                           # 50 integers: continuous
    assert m.scatter.color()["norm"].vmin == 0 and m.scatter.color()["norm"].vmax == 49
    assert m.scatter._data["color: position"].dtype == np.float32
    m.color_by("doc")                                                # 12 integers: categories
    assert list(m.scatter._data["color: doc"].cat.categories) == [str(i) for i in range(12)]
    m.color_by(None)
    assert m.scatter.color()["by"] is None
    with pytest.raises(InputError, match="cannot colour by 'nope'.*pick one of"):
        m.color_by("nope")


def test_many_capture_points_are_coloured_by_depth():
    names = ["embed"] + [f"layer.{i}" for i in range(29)] + ["final"]
    kind, values, extra = cm.colour_values(pd.Series([names[i % len(names)] for i in range(300)]))
    assert kind == "continuous" and extra["norm"] == (0.0, 30.0)
    assert values[0] == 0 and values[1] == 1 and values[30] == 30


# -- selection ----------------------------------------------------------------------------------
def test_selection_from_the_widget_becomes_a_dataframe():
    t = _table()
    m = CorpusMap(t)
    seen = []
    m.on_select(lambda mm: seen.append(mm.selected_indices()))
    assert len(m.selection()) == 0
    # what the browser sends after a lasso: uint32 row positions (any order)
    m.plot.selection = np.array([7, 3, 500, 3], dtype=np.uint32)
    np.testing.assert_array_equal(m.selected_indices(), [3, 7, 500])
    s = m.selection()
    assert list(s.index) == [3, 7, 500] and "vector" not in s.columns
    assert list(s["token"]) == ["tok3", "tok7", f"tok{500 % 37}"]
    np.testing.assert_allclose(s[["x", "y"]].to_numpy(), m.coords()[[3, 7, 500]])
    assert len(seen) == 1 and list(seen[0]) == [3, 7, 500]
    m.select([1, 2])                                                 # from Python: the widget follows
    assert list(m.plot.selection) == [1, 2] and list(m.selection().index) == [1, 2]
    m.plot.selection = None
    assert len(m.selection()) == 0 and len(seen) == 3
    with pytest.raises(InputError, match="row positions"):
        m.select([N])
    assert m.tool("lasso").plot.mouse_mode == "lasso" and m.plot.lasso_type == "freeform"
    assert m.tool("box").plot.lasso_type == "rectangle" and m.tool("pan").plot.mouse_mode == "panZoom"
    with pytest.raises(InputError, match="tool must be one of"):
        m.tool("wand")


# -- trajectories -------------------------------------------------------------------------------
def test_add_trajectory_is_placed_with_the_projection_and_drawn_on_top():
    t = _table()
    m = CorpusMap(t)
    v, _, centres = _vectors()
    path = np.linspace(centres[0], centres[1], 6).astype(np.float32)
    name = m.add_trajectory(path)
    np.testing.assert_allclose(m.trajectory_coords(name), m.projection.place(path), atol=1e-5)
    traj = Trajectory.from_vectors(path[::-1].copy())
    name2 = m.add_trajectory(traj, name="back")
    assert m.trajectories == [name, "back"] and name2 == "back"
    np.testing.assert_allclose(m.trajectory_coords("back"), m.projection.place(path[::-1]), atol=1e-5)
    ann = m.scatter.annotations()["annotations"]
    lines = [a for a in ann if type(a).__name__ == "Line"]
    assert len(lines) == 2 and len(lines[0].vertices) == 6            # a path each, plus step markers
    assert len(ann) == 2 + 12
    np.testing.assert_allclose(lines[0].vertices, m.trajectory_coords(name), atol=1e-5)
    with pytest.raises(InputError, match="already on the map"):
        m.add_trajectory(path, name="back")
    with pytest.raises(InputError, match="fitted on 12-d"):
        m.add_trajectory(np.zeros((3, 5), np.float32))
    m.remove_trajectory("back")
    assert m.trajectories == [name]


def test_umap_paints_pca_first_then_swaps_coordinates_and_trajectories(monkeypatch):
    """The background fit and the swap, with a stand-in for UMAP (no numba compile in unit tests)."""
    release = threading.Event()
    real = cm.layout

    def fake_layout(vectors, method, **kw):
        if method == "pca":
            return real(vectors, "pca", max_fit=kw["max_fit"], cache=False)
        assert callable(kw["progress"])
        release.wait(10)
        proj = fit_projection(vectors[:, ::-1].copy() * 2, "pca", cache=False)  # a different layout
        proj.method = "umap"
        return proj.place(vectors[:, ::-1].copy() * 2), _Flipped(proj)

    class _Flipped:
        method, from_cache, fit_seconds = "umap", False, 0.0

        def __init__(self, p):
            self.p = p

        def place(self, x):
            return self.p.place(np.asarray(x)[:, ::-1].copy() * 2)

    monkeypatch.setattr(cm, "layout", fake_layout)
    t = _table()
    v, _, centres = _vectors()
    m = CorpusMap(t, method="umap")
    assert m.status == "fitting"
    pca = m.coords()
    name = m.add_trajectory(v[:4])                                   # placed with PCA for now
    release.set()
    m.wait(10)
    assert m.status == "umap" and m.error is None
    assert not np.allclose(m.coords(), pca)
    np.testing.assert_allclose(_points(m), m.coords(), atol=1e-5)     # the browser's copy too
    np.testing.assert_allclose(m.selection().shape, (0, 8))
    np.testing.assert_allclose(m.trajectory_coords(name), m.projection.place(v[:4]), atol=1e-5)
    assert "umap" in m.timings


def test_a_failed_umap_keeps_the_pca_map(monkeypatch):
    real = cm.layout

    def broken(vectors, method, **kw):
        if method == "pca":
            return real(vectors, "pca", max_fit=kw["max_fit"], cache=False)
        raise RuntimeError("no memory")

    monkeypatch.setattr(cm, "layout", broken)
    m = CorpusMap(_table(), method="umap").wait(10)
    assert m.status == "failed" and "no memory" in m._status.value and m.projection.method == "pca"


# -- typed errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: CorpusMap(_table().slice(0, 0)), "no rows"),
    (lambda: CorpusMap(_table().drop_columns(["vector"])), "neither coordinates"),
    (lambda: CorpusMap(pd.DataFrame({"x": [1.0, 2.0], "token": ["a", "b"]})), "no 'y'"),
    (lambda: CorpusMap([[1, 2], [3, 4]]), "pandas DataFrame, a pyarrow Table"),
    (lambda: CorpusMap(_table(), color="nope"), "cannot colour by 'nope'"),
    (lambda: CorpusMap(_table(), hover=("token", "nope")), r"hover columns \['nope'\]"),
    (lambda: CorpusMap(_table(), method="tsne"), "method must be"),
    (lambda: CorpusMap(_table(point=[f"layer.{i % 2}" for i in range(N)])), "2 capture points.*mix_points=True"),
    (lambda: CorpusMap(pa.table({"vector": pa.array([[1.0, 2.0], [3.0]] * 3)})), "different lengths"),
    (lambda: CorpusMap(pa.table({"vector": pa.array(["a", "b", "c"])})), "must hold vectors"),
    (lambda: CorpusMap(pd.DataFrame({"x": [0.0, np.nan], "y": [1.0, 2.0]})), "NaN"),
    (lambda: CorpusMap(_table().slice(0, 2)), "at least 3"),
])
def test_bad_input_raises_typed_errors_that_name_the_fix(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_default_colour_and_hover_columns_may_be_absent():
    v, _, _ = _vectors(50, 4)
    m = CorpusMap(pd.DataFrame({"vector": list(v)}))                 # no point / text / token columns
    assert m.color is None and m.hover == [] and m.coords().shape == (50, 2)


def test_layout_exports_to_csv_and_a_real_capture_plugs_in(smol, tmp_path):
    import csv

    m = CorpusMap(_table(), color="label")
    path = m.to_csv(tmp_path / "layout.csv", columns=["label", "token"])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["x", "y", "label", "token"] and len(rows) == N + 1
    assert np.allclose(np.array(rows[1:], dtype=object)[:, :2].astype(float), m.coords(), atol=1e-4)
    with pytest.raises(InputError, match="no column"):
        m.to_csv(tmp_path / "x.csv", columns=["nope"])
    cap = smol.capture(["a red apple", "a green leaf", "the blue sea", "a yellow sun"], points=["layer.5", "final"],
                       reduce="all", out=tmp_path / "cap", progress=False)
    with pytest.raises(InputError, match="one point"):
        CorpusMap(cap)
    real = CorpusMap(cap.table(points="final"), color="doc")
    assert len(real) == len(cap.vectors("final"))
    assert np.allclose(real.coords(), real.projection.place(cap.vectors("final")), atol=1e-4)
