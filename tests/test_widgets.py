"""Widget state without a browser: stepping, lens selection, ConceptLab, LatentMap layout stability."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.errors import InputError, UnknownPointError
from explorer.projection import fit_projection
from explorer.trajectory import Step, TokenTable, Trajectory
from widgets import ConceptLab, LatentMap, LensView, ThoughtStepper
from widgets.demo import DemoSpace, demo_lens, demo_trajectory


# -- ThoughtStepper -----------------------------------------------------------------------------
def test_step_changes_index_point_and_tokens():
    tr = demo_trajectory(n=12)
    s = ThoughtStepper(tr, k=5)
    assert s.index == 0 and len(s) == 12
    p0, t0 = s.point(), s.tokens("output")
    s.step()
    assert s.index == 1
    assert not np.allclose(s.point(), p0)
    assert s.tokens("output").tokens != t0.tokens and len(s.tokens("output")) == 5
    assert s.current is tr[1] and s.tokens("input").space == "input"
    s.goto(-1)
    assert s.index == 11
    s.step(5)  # clamps at the end
    assert s.index == 11
    s.step(-100)
    assert s.index == 0
    s.goto("layer.4")
    assert s.index == 4 and s.current.name == "layer.4"
    s.index = 99  # a bad value from anywhere is clamped
    assert s.index == 11


def test_stepper_sends_everything_once_as_binary():
    tr = demo_trajectory(n=10, d=16)
    bg = np.random.default_rng(0).normal(0, 1, (500, 16)).astype(np.float32)
    s = ThoughtStepper(tr, background=bg, k=4)
    xy = np.frombuffer(s._coords, np.float32).reshape(-1, 2)
    np.testing.assert_array_equal(xy, s.coords())
    assert np.frombuffer(s._bg, np.float32).shape == (1000,)
    d = s._data
    assert d["names"] == tr.names and len(d["probes"]["output"]) == 10
    assert d["probes"]["output"][3]["tokens"] == list(tr[3].probes["output"].tokens[:4])
    assert set(d["scalars"]) >= {"entropy", "delta_norm", "kl_prev"} and d["scalars"]["delta_norm"][0] is None
    assert s.scalar == "entropy"
    # stepping changes only the index: nothing else is re-sent
    before = (s._coords, s._bg, dict(s._data))
    s.step(3)
    assert (s._coords, s._bg, dict(s._data)) == before


def test_stepper_placement_on_a_given_projection_and_plain_vectors():
    tr = demo_trajectory(n=8, d=16)
    proj = fit_projection(np.random.default_rng(1).normal(0, 1, (200, 16)), "pca", cache=False)
    s = ThoughtStepper(tr, proj)
    np.testing.assert_allclose(s.coords(), proj.place(tr.vectors()))
    plain = Trajectory.from_vectors(np.random.default_rng(2).normal(0, 1, (5, 8)))
    s2 = ThoughtStepper(plain)  # no probes, no scalars: still steps
    assert s2.tokens() is None and s2.scalar == ""
    s2.step(2)
    assert s2.index == 2
    with pytest.raises(InputError, match="no scalar"):
        ThoughtStepper(tr, scalar="nope")
    with pytest.raises(InputError, match="Trajectory"):
        ThoughtStepper(np.zeros((3, 4)))


def test_stepper_esm_is_local_and_self_contained():
    esm = ThoughtStepper._esm
    assert "export default" in esm and "function leBars" in esm
    assert "http://" not in esm.replace("http://www.w3.org/2000/svg", "") and "https://" not in esm
    assert "import " not in esm  # no imports: nothing to fetch


# -- LensView ---------------------------------------------------------------------------------
def test_lens_select_shows_topk_and_point():
    lens, trace = demo_lens(n_layers=4)
    v = LensView(lens, trace)
    assert v.selection() is None and v.top() is None
    v.select("layer.2", 1)
    assert v.selection() == ("layer.2", 1) and v.selected == [3, 1]
    top = v.top()
    assert top.tokens == tuple(lens.top_tokens[3][1]) and len(top) == lens.k
    p1 = v.point()
    v.select("final", -1)
    assert v.top().top == " Paris" and not np.allclose(v.point(), p1)
    probs = np.frombuffer(v._probs, np.float32).reshape(len(lens.points), len(lens.tokens), lens.k)
    np.testing.assert_array_equal(probs, lens.top_probs)
    with pytest.raises(UnknownPointError):
        v.select("layer.99", 0)
    with pytest.raises(InputError):
        v.select("embed", 17)
    with pytest.raises(InputError, match="LogitLens"):
        LensView(object())


def test_stepper_shows_a_concept_paths_own_probe():
    """A concept path is probed by its bank of sentences, not by a model's vocabulary: those are the bars."""
    rng = np.random.default_rng(3)
    steps = [Step(f"concept.{i}", f"s{i}", {f"concept.{i}": rng.normal(0, 1, 8).astype(np.float32)},
                  probes={"bank": TokenTable((f"sentence {i}.", "other."), (i, 9), (0.9, 0.1), "bank", "cosine")})
             for i in range(4)]
    s = ThoughtStepper(Trajectory(steps, kind="concepts"))
    assert s.panels == ("bank",) and s._data["panels"] == ["bank"]  # one wide panel of sentences
    assert s._data["probes"]["bank"][2]["tokens"] == ["sentence 2.", "other."]
    assert s._data["score_names"]["bank"] == "cosine" and s.tokens("bank").top == "sentence 0."
    assert ThoughtStepper(demo_trajectory(n=3, d=8)).panels == ("output", "input")
    assert ThoughtStepper(Trajectory.from_vectors(rng.normal(0, 1, (3, 4)))).panels == ("output", "input")


def test_lens_without_trace_has_no_map():
    lens, _ = demo_lens(n_layers=2)
    v = LensView(lens)
    v.select(0, 0)
    assert v.point() is None and v._coords == b"" and v.top() is not None


# -- ConceptLab -------------------------------------------------------------------------------
def test_concept_lab_computes_and_places_points():
    lab = ConceptLab(DemoSpace())
    assert lab.results_table() is None
    t = lab.compute("king", "man", "woman")
    assert t.top == "queen" and lab.results_table() is t
    assert "le-result-row" in lab.results.value and "queen" in lab.results.value
    fig = lab.figure
    assert list(fig.data[1].text) == ["'king'", "'man'", "'woman'"]  # operands on the map
    assert len(fig.data[2].x) == 1 and len(fig.data[0].x) == len(t)  # result and neighbours
    # the interpolation follows A → C until the user picks other ends
    assert (lab.i_from.value, lab.i_to.value) == ("king", "woman") and lab.path is not None
    old_xy = (tuple(fig.data[1].x), tuple(fig.data[1].y))
    lab.compute("boy", "man", "woman")
    assert lab.results_table().top == "girl"
    assert (lab.i_from.value, lab.i_to.value) == ("boy", "woman")
    # the map is fitted once: a point placed again lands where it was
    lab.compute("king", "man", "woman")
    assert (tuple(fig.data[1].x), tuple(fig.data[1].y)) == old_xy


def test_concept_lab_typing_and_errors():
    lab = ConceptLab(DemoSpace())
    lab.a.value = "queen"
    lab.b.value = "woman"
    lab.c.value = "man"  # each change recomputes, like pressing Enter in the browser
    assert lab.results_table().top == "king"
    lab.b.value = "dragon"
    assert lab.results_table() is None and "unknown word" in lab.results.value
    traj = lab.interpolate("apple", "banana", method="lerp")
    assert len(traj) == lab.steps and traj.meta["method"] == "lerp"
    assert lab.set_t(0.0).top == "apple" and lab.set_t(1.0).top == "banana"
    lab.compute("king", "man", "woman")
    assert (lab.i_from.value, lab.i_to.value) == ("apple", "banana")  # the user's choice stays
    with pytest.raises(InputError):
        lab.set_t(2.0)
    with pytest.raises(InputError, match="token_space"):
        ConceptLab(object())


# -- LatentMap --------------------------------------------------------------------------------
def _bg(n=400, d=16, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 5, (3, d))
    return np.concatenate([c[i] + rng.normal(0, 1, (n // 3, d)) for i in range(3)]).astype(np.float32)


def test_latent_map_pca_old_points_stay_put():
    m = LatentMap(_bg(), method="pca", labels=[f"w{i}" for i in range(399)])
    assert m.status == "pca"
    bg0 = m.background_coords()
    tr = demo_trajectory(n=6, d=16)
    g1 = m.add(tr)
    c1 = m.coords(g1)
    fig_bg0 = np.asarray(m.figure.data[0].x).copy()
    g2 = m.add(np.random.default_rng(5).normal(0, 1, (4, 16)), labels=list("abcd"), kind="probe")
    np.testing.assert_array_equal(m.background_coords(), bg0)
    np.testing.assert_array_equal(m.coords(g1), c1)
    np.testing.assert_array_equal(np.asarray(m.figure.data[0].x), fig_bg0)
    assert m.groups == [g1, g2] and len(m.figure.data) == 3
    assert m.figure.data[1].marker.symbol == "arrow"  # trajectories are paths with arrows
    assert list(m.figure.data[1].marker.opacity)[0] < list(m.figure.data[1].marker.opacity)[-1]  # fading in
    assert "out:" in m.figure.data[1].hovertext[0]  # hover shows nearest tokens
    m.remove(g1)
    assert m.groups == [g2] and len(m.figure.data) == 2
    with pytest.raises(InputError):
        m.add(tr, color_by="colour")


def test_latent_map_umap_swaps_in_and_keeps_points_stable(tmp_path):
    """A real UMAP fit in the background thread: PCA first, UMAP swapped in, added points stay put."""
    bg = _bg(n=300)
    m = LatentMap(bg, method="umap", cache_dir=tmp_path, umap_params={"n_neighbors": 10})
    pca_xy = m.background_coords()
    tr = demo_trajectory(n=5, d=16)
    g1 = m.add(tr)  # placed on the PCA layout while UMAP fits
    m.wait(600)
    assert m.error is None and m.status == "umap", m.error
    umap_xy = m.background_coords()
    assert not np.allclose(umap_xy, pca_xy)  # the layout was swapped in
    np.testing.assert_allclose(np.asarray(m.figure.data[0].x), umap_xy[:, 0])
    c1 = m.coords(g1)
    np.testing.assert_allclose(np.asarray(m.figure.data[1].x), c1[:, 0])  # re-placed on the UMAP layout
    g2 = m.add(bg[:3] + 0.01, labels=["x", "y", "z"])
    np.testing.assert_array_equal(m.background_coords(), umap_xy)
    np.testing.assert_array_equal(m.coords(g1), c1)
    assert np.isfinite(m.coords(g2)).all()
    # a second map over the same content reloads the fitted map from the cache
    m2 = LatentMap(bg, method="umap", cache_dir=tmp_path, umap_params={"n_neighbors": 10}, fit_in_background=False)
    assert m2.projection.from_cache
    np.testing.assert_array_equal(m2.background_coords(), umap_xy)


def test_stepper_follows_a_map_swap():
    bg = _bg(n=300)
    m = LatentMap(bg, method="pca")
    tr = demo_trajectory(n=5, d=16)
    s = ThoughtStepper(tr, m)
    np.testing.assert_allclose(s.coords(), m.projection.place(tr.vectors()))
    before = s.coords()
    other = fit_projection(bg * np.float32(-2.0), "pca", cache=False)  # any new layout
    m._apply(other)
    assert not np.allclose(s.coords(), before)
    np.testing.assert_allclose(s.coords(), other.place(tr.vectors()))
    np.testing.assert_array_equal(np.frombuffer(s._coords, np.float32).reshape(-1, 2), s.coords())


def test_widgets_take_trajectories_of_every_engine(smol):
    """The stepper and the map do not care which engine made a trajectory: layers of a trace,
    continuous thoughts of the default model, and recurrent iterations of a tiny recurrent model."""
    from explorer.recurrent import RecurrentModel, build_model, tiny_config
    from explorer.tasks.prosqa.tokenizer import build_tokenizer

    layers = smol.annotate(smol.trace("The capital of France is").trajectory(position=-1), k=5).with_dynamics()
    thoughts = smol.think("Is a whale a fish or a mammal?", n_thoughts=3, mode="coconut", k=5).trajectory
    tok = build_tokenizer()
    rec = RecurrentModel(build_model(tiny_config(vocab_size=len(tok)), seed=0).eval(), tok, name="tiny")
    iters = rec.iterate("Tom is a wumpus. Is Tom a wumpus or yumpus?\n", max_iters=6, exit="none", k=5)[-1]
    for traj, first in ((layers, "embed"), (thoughts, "thought.0"), (iters, "iter.0")):
        s = ThoughtStepper(traj, k=5)
        assert s.current.name == first and len(s.tokens("output")) == 5
        p0 = s.point()
        s.goto(-1)
        assert s.index == len(traj) - 1 and not np.allclose(s.point(), p0)
        m = LatentMap(np.random.default_rng(0).normal(size=(200, traj.dim)).astype(np.float32), method="pca")
        bg = m.background_coords().copy()
        m.add(traj, color_by="layer")
        assert m.coords(m.add(traj, name="again")).shape == (len(traj), 2)
        np.testing.assert_array_equal(m.background_coords(), bg)
