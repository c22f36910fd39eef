"""One ProsQA problem, any reasoner: a run read as node masses per step, for every engine alike.

A Coconut model's thoughts, a CoT model's path tokens, a no-CoT model's answer tokens and a
recurrent-depth model's core iterations are all trajectories over the same graph. :func:`run_graph`
runs one model on one problem and reads every step as two masses per node — the next-token
probability the step gives the node (shared first tokens split evenly) and the inner product of the
step's vector with the node's input embedding (the superposition paper's Table 5 reading) — plus
the hop count whose BFS frontier the step should hold (thought k and CoT token k: k+1; iteration r:
r). :class:`GraphRun` is the value object :class:`widgets.GraphView` draws; :func:`compare` runs
several models on one problem and :func:`disagreements` finds the problems where their answers differ;
:func:`graph_table` averages the runs over a data set per hop count, the frontier figure's table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .tasks.prosqa import graph_tokens
from .tasks.prosqa.graph import hop_sets
from .tasks.prosqa.prompts import is_correct_for, node_ids_for, prompt_for
from .tasks.prosqa.tokenizer import node_probabilities
from .trajectory import Trajectory

ENGINES = ("coconut", "cot", "no_cot", "recurrent")


@dataclass(frozen=True)
class GraphRun:
    """One model's run on one problem: its ``trajectory`` and, per step, ``prob`` and ``inner``
    ((steps, nodes) arrays in ``idx_to_symbol`` order) and ``hops`` (the hop count of the step's
    frontier, or None); ``answer`` (a node name, or the text when it names none) and ``correct``."""

    problem: dict[str, Any]
    engine: str
    model: str
    trajectory: Trajectory
    prob: np.ndarray
    inner: np.ndarray
    hops: list[int | None]
    answer: str
    correct: bool
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, S = len(self.problem["idx_to_symbol"]), len(self.trajectory)
        if self.engine not in ENGINES:
            raise InputError(f"engine must be one of {ENGINES}, got {self.engine!r}.")
        for name in ("prob", "inner"):
            a = getattr(self, name)
            if a.shape != (S, n) or not np.isfinite(a).all():
                raise InputError(f"{name} must be a finite ({S}, {n}) array (steps × nodes), got shape {a.shape}.")
        if (self.prob < -1e-6).any() or (self.prob.sum(1) > 1 + 1e-4).any():
            raise InputError("prob holds probabilities: non-negative, at most 1 per step in all.")
        if len(self.hops) != S or (self.labels and len(self.labels) != S):
            raise InputError(f"hops and labels need one entry per step ({S}).")

    @property
    def names(self) -> list[str]:
        return list(self.problem["idx_to_symbol"])

    def frontier(self, i: int) -> list[int]:
        """The nodes at the end of a walk of exactly ``hops[i]`` edges from the root (step ``i``'s
        BFS frontier; empty when the step has none)."""
        h = self.hops[i]
        if h is None:
            return []
        walks, _ = hop_sets(self.problem, h)
        return sorted(walks[h])

    def first_reach(self, node: int, *, measure: str = "prob", threshold: float = 0.1) -> int | None:
        """The first step whose ``measure`` mass on ``node`` is at least ``threshold`` (None: never)."""
        a = self.mass(measure)[:, node]
        hit = np.nonzero(a >= threshold)[0]
        return int(hit[0]) if len(hit) else None

    def mass(self, measure: str = "prob") -> np.ndarray:
        if measure not in ("prob", "inner"):
            raise InputError(f"measure must be 'prob' or 'inner', got {measure!r}.")
        return self.prob if measure == "prob" else self.inner

    def __repr__(self) -> str:
        return (f"GraphRun({self.engine}, {self.model!r}, {len(self.trajectory)} steps, answer={self.answer!r}, "
                f"correct={self.correct})")


def engine_of(model: Any) -> str:
    """The engine a checkpoint was trained for: ``recurrent``, or its Coconut ``method``."""
    from .recurrent.engine import is_recurrent

    if is_recurrent(model):
        return "recurrent"
    from .thoughts.engine import trained_for

    method = trained_for(model).get("method")
    if method in ("coconut", "cot", "no_cot"):
        return str(method)
    raise InputError(f"{getattr(model, 'name', model)!r} is not a ProsQA reasoner (no recurrent core and no "
                     "config.coconut); load one of prosqa-coconut, prosqa-cot, prosqa-nocot, prosqa-recurrent-graph "
                     "or a checkpoint of `latent-explorer train coconut|recurrent`, or pass engine=.")


def _masses(model: Any, vecs: np.ndarray, tids: Sequence[int], probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .thoughts.frontier import node_inner

    prob = np.stack([node_probabilities(p, tids) for p in probs]) if len(probs) else np.zeros((0, len(tids)))
    return prob, node_inner(model, vecs, tids)


def _answer_name(model: Any, text: str, problem: dict[str, Any]) -> str:
    if graph_tokens.is_graph_tokenizer(model.tokenizer):
        tok = graph_tokens.parse_answer(text)
        sym = problem["idx_to_symbol"]
        return sym[int(tok)] if tok is not None and int(tok) < len(sym) else text.strip()
    words = [w.strip(".") for w in text.split()]
    return next((w for w in reversed(words) if w in problem["idx_to_symbol"]), text.strip())


def run_graph(model: Any, problem: dict[str, Any], engine: str | None = None, *, steps: int | None = None,
              seed: int = 0) -> GraphRun:
    """Run ``model`` on ``problem`` and read every step as node masses (see the module docs).
    ``steps``: continuous thoughts (coconut; default: what the checkpoint was trained for), the most
    generated tokens (cot, no_cot; default 16) or core iterations (recurrent; default 8)."""
    engine = engine or engine_of(model)
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if steps is not None and steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}.")
    tok = model.tokenizer
    tids = node_ids_for(tok, problem)
    name = getattr(model, "name", "model")
    if engine == "recurrent":
        return _run_recurrent(model, problem, steps or 8, seed, tids, name)
    from .thoughts.engine import think
    from .thoughts.evaluate import default_thoughts

    if engine == "coconut":
        res = think(model, prompt_for(tok, problem), steps or default_thoughts(model), "coconut", max_new_tokens=16,
                    annotate=True)
        hops: list[int | None] = [k + 1 for k in range(len(res.trajectory))]
    else:
        res = think(model, prompt_for(tok, problem), steps or 16, "cot", max_new_tokens=16, annotate=True,
                    markers=False)
        hops = [k + 1 if engine == "cot" else None for k in range(len(res.trajectory))]
    traj = res.trajectory
    vecs = traj.vectors()
    probs = model.probe.logits(vecs, normed=True).softmax(-1).float().cpu().numpy() if len(traj) else np.zeros((0, 1))
    prob, inner = _masses(model, vecs, tids, probs)
    sym = problem["idx_to_symbol"]
    labels = []
    for s in traj.steps:   # a node token reads as its name
        t = s.label.strip()
        labels.append(sym[int(t)] if graph_tokens.is_graph_tokenizer(tok) and t.isdigit() and int(t) < len(sym) else t)
    if engine == "coconut":
        labels = [f"thought {k + 1}" for k in range(len(traj))]
    text = res.text
    return GraphRun(problem, engine, name, traj, prob, inner, hops, _answer_name(model, text, problem),
                    bool(is_correct_for(tok, text, problem)), labels)


def _run_recurrent(model: Any, problem: dict[str, Any], iters: int, seed: int, tids: list[int], name: str) -> GraphRun:
    from .recurrent.data import reach_prompt
    from .recurrent.engine import iterate

    res = iterate(model, reach_prompt(model.tokenizer, problem), max_iters=iters, exit="none", seed=seed,
                  k=len(model.tokenizer))
    traj = res.trajectories[-1]   # the question's last token: where the answer is read
    V = len(model.tokenizer)
    probs = np.zeros((len(traj), V))
    for i, s in enumerate(traj.steps):
        t = s.probes["output"]
        probs[i, list(t.ids)] = t.scores
    prob, inner = _masses(model, traj.vectors(), tids, probs)
    # the answer as `prosqa eval --readout peak` reads it: the option whose probability peaked higher over
    # iterations 1..R (a node once reached stays reached; explorer.recurrent.evaluate.option_scores)
    target, neg = int(problem["target"]), int(problem["neg_target"])
    pick = target if prob[1:, target].max() > prob[1:, neg].max() else neg
    return GraphRun(problem, "recurrent", name, traj, prob, inner, [None] + list(range(1, len(traj))),
                    problem["idx_to_symbol"][pick], pick == target, [f"iteration {r}" for r in range(len(traj))])


def frontier_result(run: GraphRun) -> Any:
    """``run`` read as the frontier probe reads thoughts (:class:`explorer.thoughts.frontier.FrontierResult`):
    per step with a frontier (a recurrent run's iteration 0 has none), each node group's probability
    and inner product."""
    from .thoughts.frontier import FrontierResult, group_masses

    rows = [group_masses(run.prob[i], run.problem, h, inner=run.inner[i]) for i, h in enumerate(run.hops) if h is not None]
    return FrontierResult(rows, run.names, run.answer)


def graph_table(model: Any, problems: Sequence[dict[str, Any]], engine: str | None = None, *, steps: int | None = None,
                limit: int | None = None, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """The frontier table (:func:`explorer.thoughts.frontier.frontier_table`'s layout, drawn by
    :func:`explorer.plots.frontier_figure`) of any reasoner: per hop count of the problems and per
    step — a Coconut model's thought k (frontier: k + 1 hops), a CoT model's token k, a recurrent
    model's core iteration r (frontier: exactly r hops) — each node group's mean probability and inner
    product, the path node's, how often the right option is the likelier, and the accuracy."""
    items = list(problems)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems; pass a non-empty list.")
    it: Any = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc="graph table", unit="problem")
    runs = [run_graph(model, p, engine, steps=steps, seed=seed) for p in it]
    from .thoughts.frontier import tabulate

    recurrent = runs[0].engine == "recurrent"
    return tabulate([frontier_result(r) for r in runs], items, [r.correct for r in runs],
                    step="iteration" if recurrent else "thought" if runs[0].engine == "coconut" else "token",
                    start=1 if recurrent else 0)


def compare(models: Sequence[Any], problem: dict[str, Any], **kw: Any) -> list[GraphRun]:
    """Every model's :class:`GraphRun` on ``problem`` (each with its own engine)."""
    if not models:
        raise InputError("pass at least one model (e.g. load_model('prosqa-coconut')).")
    return [run_graph(m, problem, **kw) for m in models]


def disagreements(models: Sequence[Any], problems: Sequence[dict[str, Any]], *, limit: int | None = None) -> list[int]:
    """The indices of ``problems`` (the first ``limit``) on which the models do not all give the same
    right-or-wrong verdict."""
    out = []
    for i, p in enumerate(list(problems)[:limit]):
        if len({r.correct for r in compare(models, p)}) > 1:
            out.append(i)
    return out
