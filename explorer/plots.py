"""Every figure the explorer draws, built from the compute objects' data; plotly is imported lazily.

The compute modules return numbers (a :class:`~explorer.probes.LogitLens`, a trajectory's PCA, an
evaluation's dict, a frontier probe or table); the figure is made last, here, from those numbers,
and nothing here computes what a figure shows. ``import explorer`` does not import plotly: each
builder imports it when called, and the compute objects' ``figure()`` methods import this module
when called. This module imports no compute module (they import it), so it takes plain data and
duck-typed objects.

Lenses and trajectories

* :func:`logit_lens_figure` — a :class:`~explorer.probes.LogitLens` as a heatmap (``LogitLens.figure``).
* :func:`trajectory_figure` — a recurrent model's iteration trajectory of one token, from
  :func:`~explorer.recurrent.engine.trajectory_pca`'s data (``explorer.recurrent.figure``).

A recurrent model's ProsQA evaluation (the dict :func:`~explorer.recurrent.evaluate.evaluate_iterations`
returns, or its JSON summary from ``latent-explorer prosqa eval --method recurrent --json``)

* :func:`accuracy_figure` — accuracy against the number of core iterations (log axis), the
  adaptive-exit result as a point at its mean iteration count, chance and optional baselines.
* :func:`hops_figure` — with adaptive exit: the iterations the answer token used (mean over
  problems) and accuracy per hop count of the reference path (do longer paths make the model
  think longer?).
* :func:`hop_curves_figure` — accuracy against iterations, one line per hop count (problems
  generated with a fixed hop count), with each one's adaptive exit: does hop h need h iterations?
* :func:`distance_figure` — for a ``"reach"`` model, where its answer's probability sits per
  iteration, by the nodes' hop distance from the question's person
  (:func:`~explorer.recurrent.evaluate.distance_mass`).

Continuous thoughts' frontier (:mod:`explorer.thoughts.frontier`)

* :func:`frontier_probe_figure` — one problem's probe as stacked bars per thought (``FrontierResult.figure``).
* :func:`frontier_figure` — :func:`~explorer.thoughts.frontier.frontier_table` as small multiples per hop count.

Byte patches (:mod:`explorer.patches`)

* :func:`byte_entropy_figure` — next-byte entropy per character of a text, the threshold and the
  patch starts (the BLT paper's "Daenerys Targaryen" figure).
* :func:`patch_size_figure` — bytes per patch against the threshold for each rule, with a
  tokenizer's bytes per token as a line.

Semantic decoding (:mod:`explorer.semantic`)

* :func:`search_calls_figure` — answer accuracy against processor calls per problem, one line per
  algorithm (its widths as points), for each proposer and tool setting.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import InputError

#: the colour of each group of graph nodes in the frontier figures
_GROUP_COLORS = {"frontier": "#e45756", "reachable": "#4c78a8", "unreachable": "#bab0ac", "path": "#54a24b"}


def _num_keys(d: Mapping[Any, float]) -> tuple[list[int], list[float]]:
    items = sorted((int(k), float(v)) for k, v in d.items())
    return [k for k, _ in items], [v for _, v in items]


# -- lenses and trajectories -------------------------------------------------------------------------
def logit_lens_figure(lens: Any, value: str = "prob", max_positions: int = 40):
    """A plotly heatmap of a :class:`~explorer.probes.LogitLens`: points × positions (the last
    ``max_positions``), the top-1 token written in each cell, colour = its probability
    (``value="prob"``), the entropy, or the target's probability."""
    import plotly.graph_objects as go

    if value == "prob":
        z, title = lens.top_probs[:, :, 0], "top-1 probability"
    elif value == "entropy":
        z, title = lens.entropy, "entropy (nats)"
    elif value == "target" and lens.target_prob is not None:
        z, title = lens.target_prob, f"p({lens.target!r})"
    else:
        raise InputError(f"value must be 'prob', 'entropy' or 'target' (with a target), got {value!r}.")
    t0 = max(0, len(lens.tokens) - max_positions)
    cols = [f"{i}:{tok!r}" for i, tok in enumerate(lens.tokens)][t0:]
    text = [[lens.top_tokens[p][t][0] for t in range(t0, len(lens.tokens))] for p in range(len(lens.points))]
    fig = go.Figure(go.Heatmap(z=z[:, t0:], x=cols, y=lens.points, text=text, texttemplate="%{text}",
                               colorscale="Viridis", colorbar={"title": title},
                               hovertemplate="%{y} @ %{x}<br>top-1 %{text}<br>" + title + " %{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"Logit lens — {title}", height=max(300, 18 * len(lens.points) + 120),
                      yaxis={"autorange": "reversed"}, margin={"l": 80, "r": 20, "t": 50, "b": 80})
    return fig


def trajectory_figure(pca: Mapping[str, Any]):
    """The PCA path of one token's states (left) and the distance to the final state and ‖Δs‖/‖s‖
    per iteration (right, log scale); ``pca``: :func:`~explorer.recurrent.engine.trajectory_pca`'s result."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=2, subplot_titles=("states (PCA)", "convergence"))
    fig.add_trace(go.Scatter(x=pca["coords"][:, 0], y=pca["coords"][:, 1], mode="lines+markers", text=pca["labels"],
                             hovertemplate="%{text}<extra></extra>", name="state",
                             marker=dict(color=pca["iterations"], colorscale="Viridis", size=8, showscale=False)),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=pca["iterations"], y=pca["rel_distance_to_final"], mode="lines+markers",
                             name="‖s_r − s_final‖ / ‖s_final‖"), row=1, col=2)
    fig.add_trace(go.Scatter(x=pca["iterations"], y=pca["delta_rel"], mode="lines+markers", name="‖Δs‖ / ‖s‖"),
                  row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(title_text="iteration", row=1, col=2)
    fig.update_layout(title=pca["title"], height=380, margin=dict(l=40, r=20, t=60, b=40))
    return fig


# -- a recurrent model's ProsQA evaluation -----------------------------------------------------------
def accuracy_figure(result: Mapping[str, Any], *, baselines: Mapping[str, float] | None = None,
                    title: str = "ProsQA accuracy vs core iterations"):
    """Accuracy per fixed iteration count; ``baselines`` ({name: accuracy}) as dashed lines."""
    import plotly.graph_objects as go

    if not result.get("accuracy"):
        raise InputError("the result has no 'accuracy' per iteration count; pass evaluate_iterations(...)'s result.")
    its, acc = _num_keys(result["accuracy"])
    fig = go.Figure(go.Scatter(x=its, y=acc, mode="lines+markers", name="fixed iterations",
                               hovertemplate="%{x} iterations: %{y:.3f}<extra></extra>"))
    ad = result.get("adaptive")
    if ad:
        fig.add_trace(go.Scatter(x=[ad["mean_iterations"]], y=[ad["accuracy"]], mode="markers", name=f"adaptive exit ({ad['exit']})",
                                 marker=dict(symbol="star", size=14), hovertemplate="%{x:.1f} iterations (mean): %{y:.3f}<extra></extra>"))
    lines = {"chance": 0.5, **dict(baselines or {})}
    for i, (name, y) in enumerate(lines.items()):
        fig.add_hline(y=float(y), line_dash="dot" if name == "chance" else "dash", line_color="grey" if i == 0 else None,
                      annotation_text=f"{name} {float(y):.2f}",
                      annotation_position="top left" if name == "chance" else "bottom right")
    fig.update_layout(title=f"{title} (n={result.get('n', '?')})",
                      xaxis=dict(title="core iterations", type="log", tickvals=its, ticktext=[str(i) for i in its]),
                      yaxis=dict(title="accuracy", range=[0, 1.02]), template="plotly_white", height=380, width=620)
    return fig


def hops_figure(result: Mapping[str, Any], title: str = "Adaptive exit: iterations per hop count"):
    """Mean iterations used (bars) and accuracy (line) per hop count, with adaptive exit."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ad = result.get("adaptive")
    if not ad or not ad.get("mean_iterations_by_hops"):
        raise InputError("the result has no adaptive-exit run; evaluate with exit='kl' (or another criterion).")
    per_hop = ad.get("answer_iterations_by_hops") or ad["mean_iterations_by_hops"]
    what = "iterations at the answer token" if ad.get("answer_iterations_by_hops") else "mean iterations per token"
    hops, iters = _num_keys(per_hop)
    hops_a, acc = _num_keys(ad["accuracy_by_hops"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=hops, y=iters, name=what, hovertemplate="%{x} hops: %{y:.2f} iterations<extra></extra>"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=hops_a, y=acc, mode="lines+markers", name="accuracy",
                             hovertemplate="%{x} hops: %{y:.3f}<extra></extra>"), secondary_y=True)
    fig.update_xaxes(title_text="hops of the answer path", dtick=1)
    fig.update_yaxes(title_text=what, secondary_y=False)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], tickmode="linear", tick0=0, dtick=0.2, showgrid=False,
                     secondary_y=True)
    fig.update_layout(title=f"{title} ({ad['exit']}, ≤ {ad['max_iters']})", template="plotly_white", height=400, width=620,
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return fig


def hop_curves_figure(results: Mapping[Any, Mapping[str, Any]], *, baselines: Mapping[Any, float] | None = None,
                      title: str = "Accuracy vs core iterations, per hop count of the answer path"):
    """One accuracy-vs-iterations line per hop count (``results``: {hops: evaluate_iterations(...)'s
    result on problems of that many hops}), each hop count's adaptive exit as a star at the
    iterations its answer token used, and ``baselines`` ({hops: accuracy}, e.g. the same-size model
    without recurrence) as crosses at one iteration."""
    import plotly.colors
    import plotly.graph_objects as go

    if not results or any(not r.get("accuracy") for r in results.values()):
        raise InputError("pass {hops: evaluate_iterations(...)'s result}, each with 'accuracy' per iteration count.")
    palette = plotly.colors.qualitative.Plotly
    fig = go.Figure()
    ticks: set[int] = set()
    for i, (hops, res) in enumerate(sorted(results.items(), key=lambda kv: int(kv[0]))):
        color, label = palette[i % len(palette)], f"{hops} hop{'s' * (int(hops) != 1)}"
        its, acc = _num_keys(res["accuracy"])
        ticks.update(its)
        fig.add_trace(go.Scatter(x=its, y=acc, mode="lines+markers", name=label, line=dict(color=color),
                                 legendgroup=label, hovertemplate=label + ", %{x} iterations: %{y:.3f}<extra></extra>"))
        ad = res.get("adaptive")
        if ad:
            at = ad.get("answer_iterations") or ad["mean_iterations"]
            fig.add_trace(go.Scatter(x=[at], y=[ad["accuracy"]], mode="markers", legendgroup=label, showlegend=False,
                                     marker=dict(symbol="star", size=13, color=color, line=dict(width=1, color="white")),
                                     hovertemplate=label + f", adaptive exit ({ad['exit']}): " + "%{x:.2f} iterations, "
                                                   "%{y:.3f}<extra></extra>"))
        if baselines and hops in baselines:
            fig.add_trace(go.Scatter(x=[1], y=[float(baselines[hops])], mode="markers", legendgroup=label,
                                     showlegend=False, marker=dict(symbol="x", size=11, color=color),
                                     hovertemplate=label + ", same-size model without recurrence: %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance 0.50",
                  annotation_position="bottom right")
    note = "★ adaptive exit" + (", × same size without recurrence" if baselines else "")
    fig.update_layout(title=title, template="plotly_white", height=400, width=640,
                      xaxis=dict(title=f"core iterations ({note})", type="log", tickvals=sorted(ticks),
                                 ticktext=[str(t) for t in sorted(ticks)]),
                      yaxis=dict(title="accuracy", range=[0.3, 1.02]))
    return fig


def distance_figure(mass: Mapping[str, Any], title: str = "Where the answer sits, per core iteration"):
    """Stacked areas: the probability on nodes 1, 2, … hops from the person, and on unreachable
    nodes, against the iteration count (``mass``: :func:`~explorer.recurrent.evaluate.distance_mass`'s result)."""
    import plotly.graph_objects as go

    if not mass.get("mass") or not mass.get("iterations"):
        raise InputError("pass distance_mass(model, problems)'s result (it has 'iterations' and 'mass').")
    fig = go.Figure()
    for group, ys in mass["mass"].items():
        name = "unreachable" if group == "unreachable" else f"{group} hop{'s' * (group != '1')} away"
        fig.add_trace(go.Scatter(x=list(mass["iterations"]), y=list(ys), name=name, stackgroup="mass", mode="lines",
                                 hovertemplate=name + ", %{x} iterations: %{y:.3f}<extra></extra>"))
    fig.update_layout(title=f"{title} (n={mass.get('n', '?')})", xaxis=dict(title="core iterations", dtick=2),
                      yaxis=dict(title="probability on graph nodes", range=[0, 1.02]), template="plotly_white",
                      height=380, width=620)
    return fig


# -- continuous thoughts' frontier -------------------------------------------------------------------
def frontier_probe_figure(result: Any, groups: Sequence[str]):
    """Stacked bars per thought of one problem's frontier probe (a
    :class:`~explorer.thoughts.frontier.FrontierResult`): probability of each of ``groups``
    (frontier / other reachable / unreachable nodes), with every node's probability in the hover text."""
    import plotly.graph_objects as go

    xs = [f"thought.{k}<br>({r['hops']} hops)" for k, r in enumerate(result.rows)]
    fig = go.Figure()
    for g in groups:
        hover = []
        for r in result.rows:
            items = sorted(((r["node_prob"][v], result.names[v]) for v in r["groups"][g]), reverse=True)[:6]
            hover.append("<br>".join(f"{n}: {p:.3f}" for p, n in items) or "(none)")
        fig.add_bar(name=g, x=xs, y=[r["sums"][g] for r in result.rows], marker_color=_GROUP_COLORS[g],
                    hovertext=hover, hovertemplate="%{x}<br>" + g + " %{y:.3f}<br>%{hovertext}<extra></extra>")
    fig.update_layout(barmode="stack", title="Next-concept probability of graph nodes per thought",
                      yaxis_title="probability", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 60})
    return fig


def frontier_figure(table: Mapping[str, Any], reading: str = "prob"):
    """Small multiples of :func:`~explorer.thoughts.frontier.frontier_table` or
    :func:`~explorer.graph_runs.graph_table` (one panel per hop count): each group's ``prob`` or
    ``inner`` per step (the table's ``step``: thought, token or iteration)."""
    from plotly.subplots import make_subplots

    if reading not in ("prob", "inner"):
        raise InputError(f"reading must be 'prob' or 'inner', got {reading!r}.")
    hops = sorted(table["by_hops"])
    step, start = table.get("step", "thought"), int(table.get("start", 0))
    fig = make_subplots(rows=1, cols=max(len(hops), 1), shared_yaxes=True,
                        subplot_titles=[f"{h} hops (n={table['by_hops'][h]['n']})" for h in hops])
    for c, h in enumerate(hops, start=1):
        for g in table["groups"]:
            ys = table["by_hops"][h][reading][g]
            fig.add_scatter(x=[f"{step}.{k + start}" for k in range(len(ys))], y=ys, name=g, legendgroup=g,
                            showlegend=c == 1, mode="lines+markers", line={"color": _GROUP_COLORS.get(g)}, row=1, col=c)
    label = "summed next-token probability" if reading == "prob" else "mean inner product with node embeddings"
    fig.update_layout(title=f"What each {step} holds: {label}", height=360,
                      margin={"l": 60, "r": 20, "t": 70, "b": 50})
    return fig


def byte_entropy_figure(chars: Sequence[str], entropy: Sequence[float], starts: Sequence[bool], *,
                        threshold: float | None = None, title: str = "Next-byte entropy and patch starts"):
    """Bars of entropy (nats) per character (its first byte), red where a patch starts, with the
    global threshold as a dashed line; the characters label the x axis."""
    import plotly.graph_objects as go

    if not (len(chars) == len(entropy) == len(starts)):
        raise InputError("chars, entropy and starts need one entry per character.")
    labels = [("↵" if c == "\n" else "␣" if c == " " else c) for c in chars]
    x = list(range(len(chars)))
    fig = go.Figure(go.Bar(x=x, y=list(entropy), marker_color=["#e45756" if s else "#4c78a8" for s in starts],
                           hovertext=[f"{c!r}: H = {h:.2f}" for c, h in zip(chars, entropy)], hoverinfo="text"))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="#e45756", annotation_text=f"θ = {threshold:.2f}")
    fig.update_layout(title=title, height=320, showlegend=False, bargap=0.1,
                      xaxis={"tickmode": "array", "tickvals": x, "ticktext": labels, "tickangle": 0},
                      yaxis_title="entropy of the next byte (nats)", margin={"l": 60, "r": 20, "t": 60, "b": 40})
    return fig


def patch_size_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], *, bytes_per_token: float | None = None,
                      target: float | None = 4.5, title: str = "Bytes per patch against the threshold"):
    """``curves``: {rule: {"threshold": [...], "bytes_per_patch": [...]}}; a line per rule, the
    tokenizer's bytes per token and the target patch size as horizontal lines."""
    import plotly.graph_objects as go

    fig = go.Figure()
    xs = [x for c in curves.values() for x in c["threshold"]]
    for rule, c in curves.items():
        fig.add_scatter(x=list(c["threshold"]), y=list(c["bytes_per_patch"]), mode="lines", name=f"{rule} rule")
    span = [min(xs), max(xs)] if xs else [0, 1]
    if bytes_per_token is not None:   # horizontal lines as traces: named in the legend, right on a log axis
        fig.add_scatter(x=span, y=[bytes_per_token] * 2, mode="lines", line={"dash": "dot", "color": "#54a24b"},
                        name=f"SmolLM2 BPE: {bytes_per_token:.2f} bytes/token")
    if target is not None:
        fig.add_scatter(x=span, y=[target] * 2, mode="lines", line={"dash": "dash", "color": "#bab0ac"},
                        name=f"{target} bytes/patch (BLT)")
    fig.update_layout(title=title, height=340, xaxis_title="threshold θ (nats)", yaxis_title="bytes per patch",
                      yaxis_type="log", margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def search_calls_figure(rows: Sequence[Mapping[str, Any]], *, metric: str = "accuracy",
                        title: str = "Semantic decoding on ProsQA: accuracy against processor calls"):
    """``rows`` from :func:`explorer.semantic.prosqa.sweep`: one line per (algorithm, proposer, tool),
    x = mean calls per problem (log), y = ``metric``; each point labelled with its width."""
    import plotly.graph_objects as go

    if not rows:
        raise InputError("no rows to draw; run explorer.semantic.prosqa.sweep(...) first.")
    groups: dict[tuple[str, str, bool], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["algorithm"], r["proposer"], bool(r["tool"])), []).append(r)
    dash = {("lcm", True): "solid", ("lcm", False): "dash", ("random", True): "dot", ("random", False): "dashdot"}
    fig = go.Figure()
    for (alg, prop, tool), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["mean_calls"])
        fig.add_scatter(x=[r["mean_calls"] for r in rs], y=[r[metric] for r in rs], mode="lines+markers+text",
                        text=[f"w{r['width']}" for r in rs], textposition="top center",
                        name=f"{alg} · {prop}{' + tool' if tool else ''}", line={"dash": dash.get((prop, tool), "solid")})
    fig.add_hline(y=0.5, line_dash="dot", line_color="#bab0ac", annotation_text="chance")
    fig.update_layout(title=title, height=460, xaxis_type="log", xaxis_title="processor calls per problem (mean)",
                      yaxis_title=metric.replace("_", " "), margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


__all__ = ["logit_lens_figure", "trajectory_figure", "accuracy_figure", "hops_figure", "hop_curves_figure",
           "distance_figure", "frontier_probe_figure", "frontier_figure", "byte_entropy_figure", "patch_size_figure",
           "search_calls_figure"]
