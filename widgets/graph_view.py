"""GraphView: a ProsQA problem's graph coloured by what each step of a reasoner holds; GraphCompare:
several reasoners on one problem, stepping together, on a problem you can edit."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import anywidget
import ipywidgets
import numpy as np
import traitlets

from explorer.errors import InputError
from explorer.graph_runs import GraphRun, compare, disagreements
from explorer.tasks.prosqa.edit import edit, to_sentences
from explorer.tasks.prosqa.graph import distances
from explorer.tasks.prosqa.graph_tokens import asked_options, from_sentences, question_edges, reasoning_path

from ._base import esm, f32_bytes

OUTLINES = ("path", "frontier")


def layered_layout(problem: dict[str, Any]) -> dict[str, Any]:
    """Where each node is drawn, in [0, 1]²: columns by shortest hop distance from the root, rows
    ordered by their parents' mean row; the nodes the root does not reach in a band below, in
    columns by their depth from their own sources."""
    sym = problem["idx_to_symbol"]
    edges = question_edges(problem)
    root = int(problem["root"])
    dist = distances(len(sym), edges, root)
    used = sorted({v for e in edges for v in e} | {root})
    parents = {v: [a for a, b in edges if b == v] for v in used}
    layer = {v: dist[v] for v in used if v in dist}
    rest = [v for v in used if v not in dist]
    while len(layer) < len(used):          # unreachable: one column after their deepest unreachable parent
        for v in rest:
            ps = [p for p in parents[v] if p not in dist]
            if v not in layer and all(p in layer for p in ps):
                layer[v] = 1 + max((layer[p] for p in ps), default=-1)
    n_layers = max(layer.values()) + 1
    bands = [[v for v in used if v in dist], rest]
    widths = [max((sum(1 for v in band if layer[v] == L) for L in range(n_layers)), default=0) for band in bands]
    total = max(1, sum(widths))
    pos: dict[int, float] = {}
    top = 0.0
    for band, width in zip(bands, widths):
        height = width / total
        for L in range(n_layers):
            members = [v for v in band if layer[v] == L]
            members.sort(key=lambda v: (np.mean([pos[p] for p in parents[v] if p in pos])
                                        if any(p in pos for p in parents[v]) else 0.5, v))
            for r, v in enumerate(members):
                pos[v] = top + height * (r + 0.5) / len(members)
        top += height
    a, b = asked_options(problem)
    nodes = []
    for v, name in enumerate(sym):
        nodes.append({"name": name, "x": float(layer[v] / max(1, n_layers - 1)) if v in layer else 1.0,
                      "y": float(pos.get(v, 0.0)), "dist": dist.get(v), "root": v == root, "option": v in (a, b),
                      "drawn": v in layer})
    return {"nodes": nodes, "edges": [list(e) for e in edges], "root": root, "options": [a, b],
            "path": [root, *reasoning_path(problem)], "n_layers": n_layers, "max_width": total}


class GraphView(anywidget.AnyWidget):
    """One :class:`~explorer.graph_runs.GraphRun` on its problem's graph: nodes in columns by hop
    distance from the root, the two options boxed; node colour and size are the current step's mass
    (``measure``: ``"prob"``, the next-token probability, or ``"inner"``, the inner product with
    the node's embedding); hovering a node shows its name, mass and distance; ``outline`` rings the
    reasoning path and/or the step's BFS frontier. Every step's masses are sent once; stepping
    (slider, ←/→, or a linked :class:`ThoughtStepper` via :func:`link_steps`) recolours in the browser.
    """

    _esm = esm("graph.js")

    index = traitlets.Int(0).tag(sync=True)        # past the last step shows the last (linked views differ in length)
    measure = traitlets.Unicode("prob").tag(sync=True)
    outline = traitlets.List(["frontier"]).tag(sync=True)
    _graph = traitlets.Dict().tag(sync=True)
    _steps = traitlets.Dict().tag(sync=True)
    _prob = traitlets.Bytes(b"").tag(sync=True)
    _inner = traitlets.Bytes(b"").tag(sync=True)
    _size = traitlets.List([420, 300]).tag(sync=True)

    def __init__(self, run: GraphRun, *, measure: str = "prob", outline: Sequence[str] = ("frontier",),
                 size: tuple[int, int] = (420, 300), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._size = [int(size[0]), int(size[1])]
        self.measure = measure
        self.outline = list(outline)
        self.show(run)

    @traitlets.validate("measure")
    def _check_measure(self, proposal: Any) -> str:
        if proposal["value"] not in ("prob", "inner"):
            raise InputError(f"measure must be 'prob' or 'inner', got {proposal['value']!r}.")
        return proposal["value"]

    @traitlets.validate("outline")
    def _check_outline(self, proposal: Any) -> list[str]:
        bad = [o for o in proposal["value"] if o not in OUTLINES]
        if bad:
            raise InputError(f"outline takes {OUTLINES}, got {bad}.")
        return list(proposal["value"])

    def show(self, run: GraphRun) -> "GraphView":
        """Draw ``run`` (a new problem or model replaces the old one in place)."""
        if not isinstance(run, GraphRun):
            raise InputError(f"GraphView draws a GraphRun, got {type(run).__name__}; make one with "
                             "explorer.graph_runs.run_graph(model, problem).")
        self.run = run
        steps = {"labels": list(run.labels) or list(run.trajectory.names), "frontiers": [run.frontier(i) for i in
                 range(len(run.trajectory))], "answer": run.answer, "correct": run.correct,
                 "title": f"{run.engine} · {run.model}"}
        with self.hold_sync():
            self._graph = layered_layout(run.problem)
            self._steps = steps
            self._prob = f32_bytes(run.prob)
            self._inner = f32_bytes(run.inner)
            self.index = min(self.index, len(run.trajectory) - 1) if len(run.trajectory) else 0
        return self

    @property
    def step(self) -> int:
        """The step shown (``index`` clamped to the run's steps)."""
        return max(0, min(self.index, len(self.run.trajectory) - 1))

    def masses(self) -> dict[str, float]:
        """The shown step's mass per node name (the current ``measure``)."""
        row = self.run.mass(self.measure)[self.step]
        return {name: float(row[v]) for v, name in enumerate(self.run.names)}

    def frontier(self) -> list[str]:
        """The names in the shown step's BFS frontier."""
        return [self.run.names[v] for v in self.run.frontier(self.step)]

    def __repr__(self) -> str:
        return f"GraphView({self.run!r}, step={self.step}, measure={self.measure!r})"


def link_steps(*views: Any) -> list[Any]:
    """Link the ``index`` of steppers and graph views in the browser (``ipywidgets.jslink``): stepping
    one recolours the others with no kernel round trip. Returns the links (``.unlink()`` undoes one)."""
    if len(views) < 2 or any(not (hasattr(v, "index") and hasattr(v, "model_id")) for v in views):
        raise InputError("link_steps takes two or more widgets with an index (ThoughtStepper, GraphView).")
    return [ipywidgets.jslink((views[0], "index"), (v, "index")) for v in views[1:]]


class GraphCompare(ipywidgets.VBox):
    """Several reasoners on one problem as small multiples that step together: one
    :class:`GraphView` per model with its answer and whether it is right, one slider for all; a
    list of the problems where the models disagree; and the problem as editable ProsQA sentences
    (add or remove a statement, swap the options, or type a new problem) that re-runs every model.

    ``models``: loaded models (each runs with its own engine); ``problems``: where to find
    disagreements (the first ``scan`` of them); ``problem``: the first one shown."""

    def __init__(self, models: Sequence[Any], problem: dict[str, Any], *, problems: Sequence[dict[str, Any]] = (),
                 scan: int = 50, size: tuple[int, int] = (320, 240), runner: Callable[..., list[GraphRun]] = compare,
                 **run_options: Any) -> None:
        if not models:
            raise InputError("GraphCompare needs at least one model, e.g. load_model('prosqa-coconut').")
        self.models, self.problems, self._runner, self._options = list(models), list(problems), runner, run_options
        self.problem = problem
        self.runs = runner(self.models, problem, **run_options)
        self.views = [GraphView(r, size=size) for r in self.runs]
        n = max(len(r.trajectory) for r in self.runs)
        self.slider = ipywidgets.IntSlider(0, 0, max(0, n - 1), description="step")
        self.play = ipywidgets.Play(0, 0, max(0, n - 1), interval=600, description="play")
        self.links = [ipywidgets.jslink((self.play, "value"), (self.slider, "value"))]
        self.links += [ipywidgets.jslink((self.slider, "value"), (v, "index")) for v in self.views]
        self.sentences = ipywidgets.Textarea(to_sentences(problem), layout=ipywidgets.Layout(width="98%", height="70px"))
        self.rerun = ipywidgets.Button(description="run the models", tooltip="re-run every model on the sentences")
        self.message = ipywidgets.HTML("")
        self.rerun.on_click(lambda _: self._from_text())
        self.disagree = ipywidgets.Dropdown(options=[("problems where they disagree…", -1)], description="jump to")
        if self.problems:
            found = disagreements(self.models, self.problems, limit=scan)
            self.disagree.options = [("problems where they disagree…", -1)] + [(f"problem {i}", i) for i in found]
        self.disagree.observe(lambda ch: ch["new"] >= 0 and self.set_problem(self.problems[ch["new"]]), names="value")
        super().__init__([ipywidgets.HBox([self.play, self.slider, self.disagree]), ipywidgets.HBox(self.views),
                          self.sentences, ipywidgets.HBox([self.rerun, self.message])])

    def set_problem(self, problem: dict[str, Any]) -> "GraphCompare":
        """Run every model on ``problem`` and show it (the views keep their step and settings)."""
        runs = self._runner(self.models, problem, **self._options)
        self.problem, self.runs = problem, runs
        for v, r in zip(self.views, runs):
            v.show(r)
        n = max(len(r.trajectory) for r in runs)
        self.slider.max = self.play.max = max(0, n - 1)
        self.sentences.value = to_sentences(problem)
        self.message.value = ""
        return self

    def edit(self, **changes: Any) -> "GraphCompare":
        """Edit the problem (``add``, ``remove``: (child, parent) names; ``swap_options``; ``options``)
        and re-run the models; see :func:`explorer.tasks.prosqa.edit.edit`."""
        return self.set_problem(edit(self.problem, **changes))

    def _from_text(self) -> None:
        try:
            self.set_problem(from_sentences(self.sentences.value, self.problem["idx_to_symbol"]))
        except InputError as e:   # shown beside the button; the old problem stays
            self.message.value = f"<span style='color:#c62828'>{e}</span>"

    def answers(self) -> list[tuple[str, str, bool]]:
        """(engine, answer, correct) of each model on the current problem."""
        return [(r.engine, r.answer, r.correct) for r in self.runs]
