"""ConceptLab: A − B + C and interpolation over any space (no model logic here)."""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from explorer.arithmetic import ArithmeticResult, TokenSpace, evaluate, interpolate
from explorer.errors import ExplorerError, InputError
from explorer.projection import Projection, fit_projection
from explorer.trajectory import TokenTable, Trajectory


def _quote(text: str) -> str:
    """An operand as it must appear in an expression (quoted if it holds spaces or signs)."""
    t = text.strip()
    return t if t and not any(c in t for c in " +-−\"'*") else '"' + t.replace('"', "'") + '"'


class ConceptLab(W.VBox):
    """Type A − B + C, see the nearest entries with scores and where operands and result sit on a
    map; slide between two inputs. ``space`` is any :class:`explorer.arithmetic.TokenSpace`
    (``model.token_space`` for tokens; a sentence encoder for sentences).

    ``map``: a :class:`LatentMap` or a fitted Projection to place points on; without one, a PCA is
    fitted on the first points shown and kept, so later points do not move earlier ones.
    """

    def __init__(self, space: TokenSpace, map: Any = None, *, a: str = "", b: str = "", c: str = "",
                 k: int = 10, steps: int = 11, method: str = "slerp", height: int = 400, width: int = 480, **kwargs: Any) -> None:
        if not isinstance(space, TokenSpace):
            raise InputError(f"ConceptLab needs a space with name, encode(text) and nearest(vec, k, exclude); "
                             f"got {type(space).__name__}. Use model.token_space.")
        self.space, self.k, self.steps = space, int(k), int(steps)
        self._map = map
        self._proj: Projection | None = map if isinstance(map, Projection) else None
        self.result: ArithmeticResult | None = None
        self.path: Trajectory | None = None
        self._path_tables: list[TokenTable] = []

        box = dict(layout=W.Layout(width="120px"), continuous_update=False)
        self.a = W.Text(value=a, placeholder="A (e.g. king)", **box)
        self.b = W.Text(value=b, placeholder="B (e.g. man)", **box)
        self.c = W.Text(value=c, placeholder="C (e.g. woman)", **box)
        self.go_button = W.Button(description="=", tooltip="compute A − B + C", layout=W.Layout(width="40px"))
        self.expression = W.HTML()
        self.results = W.HTML(value=self._hint("type words (or sentences) and press Enter"))
        self.results.add_class("le-concept-results")
        sym = lambda s: W.HTML(f"<b style='font-size:15px;padding:0 4px'>{s}</b>")  # noqa: E731

        self.i_from = W.Text(placeholder="from", layout=W.Layout(width="150px"), continuous_update=False)
        self.i_to = W.Text(placeholder="to", layout=W.Layout(width="150px"), continuous_update=False)
        self.i_method = W.Dropdown(options=["slerp", "lerp"], value=method, layout=W.Layout(width="80px"))
        self.t = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=1.0 / max(1, self.steps - 1), description="t",
                               readout_format=".2f", continuous_update=True, layout=W.Layout(width="320px"))
        self.interp_results = W.HTML()
        self.interp_results.add_class("le-concept-interp")

        self.figure = go.FigureWidget(layout=dict(
            height=height, width=width, margin=dict(l=10, r=10, t=10, b=10), showlegend=True, hovermode="closest",
            xaxis=dict(showticklabels=False, zeroline=False), yaxis=dict(showticklabels=False, zeroline=False, scaleanchor="x"),
            legend=dict(orientation="h", y=-0.02, yanchor="top"), plot_bgcolor="white"))
        for nm, mode, colour, sym_ in (("results", "markers+text", "#9aa6b8", "circle"),
                                       ("operands", "markers+text", "#4c78a8", "diamond"),
                                       ("A − B + C", "markers+text", "#e45756", "star"),
                                       ("interpolation", "lines+markers", "#72b7b2", "circle"),
                                       ("t", "markers+text", "#e4572e", "circle")):
            self.figure.add_scatter(x=[], y=[], mode=mode, name=nm, textposition="top center",
                                    marker=dict(color=colour, size=14 if nm in ("A − B + C", "t") else 9, symbol=sym_),
                                    line=dict(color=colour, width=1.5))

        self._quiet = False
        for w in (self.a, self.b, self.c):
            w.observe(lambda ch: None if self._quiet else self.compute(), names="value")
        self.go_button.on_click(lambda _: self.compute())
        self._interp_auto = True  # follow A → C until the user types into from / to
        for w in (self.i_from, self.i_to):
            w.observe(lambda ch: None if self._quiet else self._user_interp(), names="value")
        self.i_method.observe(lambda ch: None if self._quiet else self._interp_changed(), names="value")
        self.t.observe(lambda ch: self._show_t(), names="value")

        arith = W.VBox([W.HBox([self.a, sym("−"), self.b, sym("+"), self.c, self.go_button]), self.expression, self.results],
                       layout=W.Layout(width="460px", min_width="460px"))
        interp = W.VBox([W.HTML("<b>interpolate</b>"), W.HBox([self.i_from, sym("→"), self.i_to, self.i_method]),
                         self.t, self.interp_results], layout=W.Layout(width="460px", min_width="460px"))
        super().__init__([W.HTML(f"<b>ConceptLab</b> · space <code>{html.escape(space.name)}</code>"),
                          W.HBox([W.VBox([arith, interp], layout=W.Layout(min_width="470px")), self.figure],
                                 layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))], **kwargs)
        self.add_class("le-concept-lab")
        if a and b and c:
            self.compute()

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _hint(text: str, error: bool = False) -> str:
        colour = "#b00" if error else "var(--jp-ui-font-color3,#888)"
        return f"<div class='le-hint' style='color:{colour};font-size:12px'>{html.escape(text)}</div>"

    @staticmethod
    def _table_html(t: TokenTable, cls: str) -> str:
        m = max([1e-9] + [abs(s) for s in t.scores])
        rows = "".join(
            f"<tr class='{cls}-row'><td style='text-align:right;color:#888'>{r + 1}</td>"
            f"<td><code class='{cls}-token'>{html.escape(repr(tok))}</code></td>"
            f"<td style='font-family:monospace' class='{cls}-score'>{s:.3f}</td>"
            f"<td><div style='background:#4c78a8;height:9px;width:{abs(s) / m * 110:.0f}px'></div></td></tr>"
            for r, (tok, _, s) in enumerate(t))
        return (f"<table class='{cls}' style='font-size:12px;border-collapse:collapse'>"
                f"<thead><tr><th></th><th>nearest</th><th>{html.escape(t.score_name)}</th><th></th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")

    def _projection(self, vecs: np.ndarray) -> Projection:
        if self._proj is None:
            if self._map is not None and hasattr(self._map, "projection"):
                return self._map.projection  # a LatentMap: follow its current layout
            pad = vecs if len(vecs) >= 3 else np.concatenate([vecs, vecs * 1.001 + 1e-3, vecs * 0.999 - 1e-3])
            self._proj = fit_projection(pad, "pca", cache=False)
        return self._proj

    def _place(self, vecs: list[np.ndarray], fit_extra: list[np.ndarray] = ()) -> np.ndarray:
        if not vecs:
            return np.zeros((0, 2), np.float32)
        a = np.stack(vecs).astype(np.float32)
        proj = self._projection(np.concatenate([a, np.stack(fit_extra)]) if len(fit_extra) else a)
        return proj.place(a)

    def _encode_tokens(self, tokens: Any) -> list[np.ndarray]:
        out = []
        for tok in tokens:
            try:
                out.append(np.asarray(self.space.encode(tok), np.float32).reshape(-1))
            except Exception:
                out.append(None)
        return out

    # -- arithmetic -----------------------------------------------------------------------------
    def compute(self, a: str | None = None, b: str | None = None, c: str | None = None) -> TokenTable | None:
        """Compute A − B + C (from the boxes, or set them first); show and return the nearest entries."""
        if a is not None or b is not None or c is not None:
            self._quiet = True
            try:
                for box, val in ((self.a, a), (self.b, b), (self.c, c)):
                    if val is not None:
                        box.value = val
            finally:
                self._quiet = False
        parts = [(s, w.value) for s, w in ((1, self.a), (-1, self.b), (1, self.c)) if w.value.strip()]
        if not parts:
            self.results.value = self._hint("type words (or sentences) and press Enter")
            return None
        expr = " ".join(f"{'-' if s < 0 else '+'} {_quote(t)}" for s, t in parts)
        expr = expr[2:] if expr.startswith("+ ") else expr
        self.expression.value = f"<code>{html.escape(expr)}</code>"
        try:
            res = evaluate(self.space, expr, k=self.k)
        except (ExplorerError, ValueError, KeyError) as e:
            self.result = None
            self.results.value = self._hint(f"{type(e).__name__}: {e}", error=True)
            return None
        self.result = res
        self.results.value = self._table_html(res.table, "le-result")
        res_vecs = self._encode_tokens(res.table.tokens)
        ops = list(res.operands.items())
        known = [(t, v) for t, v in zip(res.table.tokens, res_vecs) if v is not None]
        xy = self._place([v for _, v in ops] + [res.vector] + [v for _, v in known])
        n_op = len(ops)
        with self.figure.batch_update():
            self._set_trace(1, xy[:n_op], [t for t, _ in ops])
            self._set_trace(2, xy[n_op:n_op + 1], [expr])
            self._set_trace(0, xy[n_op + 1:], [t for t, _ in known])
        if self._interp_auto and len(ops) >= 2:
            self.interpolate(ops[0][0], ops[-1][0])
            self._interp_auto = True
        return res.table

    def _set_trace(self, i: int, xy: np.ndarray, text: list[str]) -> None:
        tr = self.figure.data[i]
        tr.x, tr.y, tr.text = xy[:, 0].tolist(), xy[:, 1].tolist(), [repr(t) if len(t) < 24 else repr(t[:22] + "…") for t in text]

    def results_table(self) -> TokenTable | None:
        """The last A − B + C result (None before the first or after an error)."""
        return None if self.result is None else self.result.table

    # -- interpolation --------------------------------------------------------------------------
    def interpolate(self, start: str, end: str, method: str | None = None) -> Trajectory:
        """Interpolate from ``start`` to ``end`` (texts); the slider then walks the path."""
        self._interp_auto = False
        self._quiet = True
        try:
            self.i_from.value, self.i_to.value = start, end
            if method is not None:
                self.i_method.value = method
        finally:
            self._quiet = False
        self._interp_changed()
        assert self.path is not None
        return self.path

    def _user_interp(self) -> None:
        self._interp_auto = False
        self._interp_changed()

    def _interp_changed(self) -> None:
        s, e = self.i_from.value.strip(), self.i_to.value.strip()
        if not (s and e):
            return
        try:
            va, vb = self.space.encode(s), self.space.encode(e)
            path = interpolate(va, vb, self.steps, self.i_method.value, labels=(s, e), space=self.space.name)
            tables = [self.space.nearest(st.vector, k=min(5, self.k)) for st in path]
        except (ExplorerError, ValueError, KeyError) as err:
            self.path, self._path_tables = None, []
            self.interp_results.value = self._hint(f"{type(err).__name__}: {err}", error=True)
            return
        self.path, self._path_tables = path, tables
        xy = self._place(list(path.vectors()))
        self._path_xy = xy
        tr = self.figure.data[3]
        with self.figure.batch_update():
            tr.x, tr.y = xy[:, 0].tolist(), xy[:, 1].tolist()
            tr.hovertext = [f"t={st.meta['t']:.2f}: {tb.top!r}" for st, tb in zip(path, tables)]
        self._show_t()

    def _t_index(self) -> int:
        return int(round(self.t.value * (self.steps - 1)))

    def _show_t(self) -> None:
        if self.path is None:
            return
        i = self._t_index()
        tb = self._path_tables[i]
        self.interp_results.value = (f"<div style='font-size:12px'>t = {self.t.value:.2f} "
                                     f"({html.escape(self.i_method.value)})</div>" + self._table_html(tb, "le-interp"))
        xy = self._path_xy[i:i + 1]
        self._set_trace(4, xy, [tb.top])

    def set_t(self, t: float) -> TokenTable | None:
        """Move the interpolation slider to ``t`` in [0, 1]; returns the nearest entries there."""
        if not 0.0 <= t <= 1.0:
            raise InputError(f"t must lie in [0, 1], got {t}.")
        self.t.value = round(t * (self.steps - 1)) / (self.steps - 1)
        return self._path_tables[self._t_index()] if self.path is not None else None
