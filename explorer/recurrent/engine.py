"""Watching a recurrent-depth model think: one trajectory of core iterations per token.

:func:`iterate` runs the prompt with every position iterated in lock-step (so after ``r``
iterations the states are exactly those of ``model(ids, num_steps=r)`` with the same initial
state) and records, per position ``t``, a :class:`~explorer.trajectory.Trajectory` of kind
``"iterations"`` whose steps ``iter.0 … iter.{E_t}`` hold the raw state after ``r`` iterations
(``iter.0`` is the random initial state). Each step's scalars are ``delta_rel`` (‖s_r − s_{r−1}‖ /
‖s_r‖), ``kl_prev`` (KL(p_r ‖ p_{r−1}), the project's convention), ``cos_prev``, ``entropy``,
``norm`` and ``exit_value`` (the exit criterion's value, see :mod:`explorer.recurrent.exits`);
``probes["output"]`` is the top-k of the coda's next-token distribution read from the states of
iteration ``r``. ``E_t`` is where position ``t`` would exit (or ``max_iters``); iterating stops
once every position has exited.

:func:`generate` decodes greedily with per-token adaptive compute: for each new token the
whole sequence is recomputed (there is no KV cache) and iterated until the *newest* position
meets the exit criterion; the token is read at that iteration. So token ``i`` is exactly the
argmax of ``model(ids, num_steps=r_i)`` at the last position, with the same seeded initial
states; the prefix is re-iterated ``r_i`` times too (Huginn's cached generation instead keeps
each earlier token's own exit-time keys and values).

Initial states are drawn per position from ``seed`` (a generator seeded by ``(seed, position)``),
so a position's start is the same whatever the sequence length, and equal seeds give equal results.

Models: a :class:`RecurrentModel` (which :func:`load_recurrent` and ``explorer.load_model`` return;
it implements :class:`explorer.protocol.LanguageModel`, a sibling of :class:`explorer.Model`), or
the HF module itself with ``tokenizer=`` (wrapped by :func:`as_recurrent_model`). ``Model.trace``,
``logit_lens`` and ``think`` do not apply (there is no flat stack of layers: the core is reused ``r``
times); asking a :class:`RecurrentModel` for them raises :class:`NotForRecurrentError`, which names
``iterate`` instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ExplorerError, InputError, ModelNotFoundError
from ..protocol import TokenAccess
from ..trajectory import Step, TokenTable, Trajectory
from . import exits as X
from .model import HUGINN_MODEL_TYPE, RecurrentForCausalLM, load_huginn


# -- model access ------------------------------------------------------------------------------------
def as_recurrent_model(model: Any, tokenizer: Any = None) -> "RecurrentModel":
    """The :class:`RecurrentModel` the engine functions work on: ``model`` itself, or a wrapper
    around a raw :class:`RecurrentForCausalLM` (or anything with ``.hf``) and ``tokenizer``
    (default: ``model.tokenizer``)."""
    if isinstance(model, RecurrentModel) and (tokenizer is None or tokenizer is model.tokenizer):
        return model
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    return RecurrentModel(getattr(model, "hf", model), tok, name=getattr(model, "name", ""))


def initial_states(hf: RecurrentForCausalLM, T: int, seed: int, *, scale: float = 1.0, start: int = 0) -> torch.Tensor:
    """(1, T, d) random initial states, position ``p`` drawn from a generator seeded by
    ``(seed, start + p)`` (so they do not depend on the sequence length)."""
    d = hf.config.n_embd
    w = hf.transformer.wte.weight
    rows = []
    for p in range(start, start + T):
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + p)
        rows.append(hf.initial_state(torch.empty(1, 1, d), scale=scale, generator=g))
    return torch.cat(rows, 1).to(w.device, w.dtype)


def _table(model: "RecurrentModel", logits: torch.Tensor, k: int) -> TokenTable:
    top = logits.float().softmax(-1).topk(min(k, logits.shape[-1]))
    ids = top.indices.tolist()
    return TokenTable(tuple(model.decode_one(i) for i in ids), tuple(ids), tuple(float(s) for s in top.values.tolist()),
                      "output", "prob")


# -- iterate -----------------------------------------------------------------------------------------
@dataclass
class IterationResult:
    """What :func:`iterate` returns: one trajectory per prompt position."""

    trajectories: list[Trajectory]
    tokens: list[str]
    token_ids: list[int]
    iterations: list[int]               # per position: the iteration at which it exits (or max_iters)
    exit: str
    threshold: float
    max_iters: int
    seed: int
    next_token: str = ""                # the last position's top token at its exit iteration
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.trajectories)

    def __getitem__(self, pos: int) -> Trajectory:
        return self.trajectories[pos]

    @property
    def trajectory(self) -> Trajectory:
        """The last position's trajectory (the one that predicts the next token)."""
        return self.trajectories[-1]

    @property
    def mean_iterations(self) -> float:
        return float(np.mean(self.iterations)) if self.iterations else 0.0

    def __repr__(self) -> str:
        return (f"IterationResult(positions={len(self)}, exit={self.exit!r}, iterations={self.iterations}, "
                f"next_token={self.next_token!r})")


def _start(model: Any, prompt: Any, exit: str, threshold: float | None, max_iters: Any,
           tokenizer: Any) -> tuple["RecurrentModel", float, torch.Tensor]:
    """What :func:`iterate` and :func:`generate` check first: (the wrapped model, the exit threshold, the prompt's ids)."""
    rm = as_recurrent_model(model, tokenizer)
    thr = X.check_criterion(exit, threshold)
    if not isinstance(max_iters, int) or max_iters < 1:
        raise InputError(f"max_iters must be a whole number >= 1, got {max_iters!r}.")
    return rm, thr, rm.encode(prompt)


@torch.inference_mode()
def iterate(model: Any, prompt: Any, max_iters: int = 32, exit: str = "kl", threshold: float | None = None, *,
            seed: int = 0, k: int = 10, init_scale: float = 1.0, tokenizer: Any = None) -> IterationResult:
    """Iterate the core up to ``max_iters`` times over ``prompt``; see the module docs."""
    rm, thr, ids = _start(model, prompt, exit, threshold, max_iters, tokenizer)
    hf = rm.hf
    T = ids.shape[1]
    e = hf.prelude(hf.embed(ids))
    s = initial_states(hf, T, seed, scale=init_scale)
    logits = hf.coda(s)[0]
    states = [s[0].float().cpu()]
    tables = [[_table(rm, logits[t], k) for t in range(T)]]
    ent = [X.entropy(logits).cpu()]
    scal: list[dict[str, torch.Tensor]] = [{}]
    exit_at = torch.zeros(T, dtype=torch.long)
    prev_logits_for_exit: torch.Tensor | None = None   # the release's p_0 is uniform / H_0 = 100
    run: torch.Tensor | None = None
    for r in range(1, max_iters + 1):
        s_new = hf.core_step(s, e)
        new_logits = hf.coda(s_new)[0]
        a, b = s_new[0].float(), s[0].float()
        na, nb = a.norm(dim=-1), b.norm(dim=-1)
        lp_new, lp_old = new_logits.float().log_softmax(-1), logits.float().log_softmax(-1)
        v, run = X.step_value(exit, prev_state=b, state=a, prev_logits=prev_logits_for_exit, logits=new_logits,
                              run=run)
        scal.append({"delta_rel": ((a - b).norm(dim=-1) / na.clamp_min(1e-30)).cpu(),
                     "kl_prev": (lp_new.exp() * (lp_new - lp_old)).sum(-1).cpu(),
                     "cos_prev": ((a * b).sum(-1) / (na * nb).clamp_min(1e-30)).cpu(),
                     "exit_value": v.float().cpu()})
        hit = X.exits(exit, v, thr).cpu() & (exit_at == 0)
        exit_at[hit] = r
        states.append(s_new[0].float().cpu())
        tables.append([_table(rm, new_logits[t], k) if exit_at[t] in (0, r) else None for t in range(T)])
        ent.append(X.entropy(new_logits).cpu())
        s, logits, prev_logits_for_exit = s_new, new_logits, new_logits
        if bool((exit_at > 0).all()):
            break
    R = len(states) - 1
    exit_at[exit_at == 0] = R
    tokens = [rm.decode_one(i) for i in ids[0].tolist()]
    trajs = []
    for t in range(T):
        E = int(exit_at[t])
        steps = []
        for r in range(E + 1):
            sc = {"entropy": float(ent[r][t]), "norm": float(states[r][t].norm())}
            if r == 0:
                sc.update(delta_rel=math.nan, kl_prev=math.nan, cos_prev=math.nan, exit_value=math.nan)
            else:
                sc.update({n: float(vals[t]) for n, vals in scal[r].items()})
            tab = tables[r][t]
            label = f"iter {r}" + (f" · {tab.top!r}" if tab is not None else "")
            steps.append(Step(f"iter.{r}", label, {f"iter.{r}": states[r][t]}, sc,
                              {"output": tab} if tab is not None else {}, {"iteration": r, "position": t}))
        trajs.append(Trajectory(steps, kind="iterations", space=rm.name,
                                title=f"iterations at position {t} ({tokens[t]!r})",
                                meta={"position": t, "token": tokens[t], "token_id": int(ids[0, t]), "exit": exit,
                                      "threshold": thr, "exit_iteration": E, "max_iters": max_iters, "seed": seed,
                                      "exited": bool(E < R or (E == R and exit != "none" and
                                                               bool(X.exits(exit, scal[E]["exit_value"][t:t + 1],
                                                                            thr)[0])))}))
    last = trajs[-1][-1].probes.get("output")
    return IterationResult(trajs, tokens, ids[0].tolist(), [int(x) for x in exit_at], exit, thr, max_iters, seed,
                           last.top if last is not None else "")


# -- generate ----------------------------------------------------------------------------------------
@dataclass
class GenerationResult:
    """What :func:`generate` returns."""

    text: str
    token_ids: list[int]
    iterations: list[int]              # per generated token: the iterations it used
    exit_values: list[float]           # per generated token: the criterion's value at its exit
    prompt_ids: list[int]
    exit: str
    threshold: float

    @property
    def mean_iterations(self) -> float:
        return float(np.mean(self.iterations)) if self.iterations else 0.0

    def __repr__(self) -> str:
        return f"GenerationResult(text={self.text!r}, iterations={self.iterations})"


def _eos(model: "RecurrentModel") -> set[int]:
    out: set[int] = set()
    for src in (getattr(model.hf, "generation_config", None), model.hf.config, model.tokenizer):
        e = getattr(src, "eos_token_id", None) if src is not None else None
        for x in (e if isinstance(e, (list, tuple)) else [e]):
            if x is not None:
                out.add(int(x))
    return out


@torch.inference_mode()
def next_token_adaptive(hf: RecurrentForCausalLM, ids: torch.Tensor, init: torch.Tensor, exit: str, threshold: float,
                        max_iters: int) -> tuple[torch.Tensor, int, float]:
    """(logits of the last position, iterations used, exit value) for one new token."""
    e = hf.prelude(hf.embed(ids))
    s = init
    prev_logits: torch.Tensor | None = None
    run: torch.Tensor | None = None
    logits = None
    v = torch.zeros(())
    for r in range(1, max_iters + 1):
        s_new = hf.core_step(s, e)
        need = exit in X.NEEDS_LOGITS or r == max_iters
        logits = hf.coda(s_new)[0, -1] if need else None
        v, run = X.step_value(exit, prev_state=s[0, -1], state=s_new[0, -1], prev_logits=prev_logits, logits=logits,
                              run=run)
        s, prev_logits = s_new, logits
        if bool(X.exits(exit, v, threshold)):
            if logits is None:
                logits = hf.coda(s)[0, -1]
            return logits, r, float(v)
    return logits, max_iters, float(v)  # type: ignore[return-value]


@torch.inference_mode()
def generate(model: Any, prompt: Any, max_new_tokens: int = 32, exit: str = "kl", threshold: float | None = None, *,
             max_iters: int = 32, seed: int = 0, init_scale: float = 1.0, stop_at_eos: bool = True,
             tokenizer: Any = None) -> GenerationResult:
    """Greedy decoding with per-token adaptive compute (see the module docs). ``exit="none"``
    gives every token exactly ``max_iters`` iterations."""
    rm, thr, ids = _start(model, prompt, exit, threshold, max_iters, tokenizer)
    hf = rm.hf
    prompt_ids = ids[0].tolist()
    limit = hf.config.block_size
    eos = _eos(rm) if stop_at_eos else set()
    init = initial_states(hf, ids.shape[1], seed, scale=init_scale)
    out: list[int] = []
    iters: list[int] = []
    vals: list[float] = []
    for _ in range(max_new_tokens):
        if ids.shape[1] >= limit:
            break
        logits, r, v = next_token_adaptive(hf, ids, init, exit, thr, max_iters)
        nxt = int(logits.argmax())
        out.append(nxt)
        iters.append(r)
        vals.append(v)
        if nxt in eos:
            break
        ids = torch.cat([ids, torch.tensor([[nxt]], device=ids.device)], 1)
        init = torch.cat([init, initial_states(hf, 1, seed, scale=init_scale, start=ids.shape[1] - 1)], 1)
    text = rm.tokenizer.decode(out, skip_special_tokens=True) if rm.tokenizer is not None else ""
    return GenerationResult(text, out, iters, vals, prompt_ids, exit, thr)


# -- analysis ----------------------------------------------------------------------------------------
def trajectory_pca(traj: Trajectory) -> dict[str, Any]:
    """A per-token PCA of an iteration trajectory, as data: ``coords`` (n, 2) per iteration,
    ``distance_to_final`` ‖s_r − s_final‖ and ``rel_distance_to_final`` (/ ‖s_final‖) per
    iteration, plus ``names``, the steps' ``labels``, ``iterations`` and the ``delta_rel`` scalar
    (what :func:`explorer.plots.trajectory_figure` draws)."""
    from ..projection import fit_projection

    v = traj.vectors().astype(np.float64)
    if len(v) == 0:
        raise InputError("the trajectory is empty; iterate at least once.")
    coords = fit_projection(v.astype(np.float32), "pca", cache=False).embedding if len(v) >= 2 else np.zeros((1, 2), np.float32)
    final = v[-1]
    dist = np.linalg.norm(v - final, axis=1)
    nf = float(np.linalg.norm(final))
    return {"names": traj.names, "labels": [step.label for step in traj.steps],
            "iterations": [int(n.split(".")[-1]) for n in traj.names],
            "coords": np.asarray(coords, np.float32), "distance_to_final": dist,
            "rel_distance_to_final": dist / nf if nf > 0 else np.full_like(dist, np.nan),
            "delta_rel": traj.scalar("delta_rel") if "delta_rel" in traj.scalar_names else np.full(len(v), np.nan),
            "title": traj.title}


def figure(traj: Trajectory | IterationResult, position: int = -1):
    """A plotly figure of one token's trajectory (``position`` of an :class:`IterationResult`): the
    PCA path of its states and its convergence per iteration (:func:`explorer.plots.trajectory_figure`)."""
    from ..plots import trajectory_figure

    return trajectory_figure(trajectory_pca(traj.trajectories[position] if isinstance(traj, IterationResult) else traj))


# -- the recurrent-depth model -----------------------------------------------------------------------
class NotForRecurrentError(InputError, AttributeError):
    """A method of :class:`explorer.Model` that a recurrent-depth model does not have (``trace``,
    ``logit_lens``, ``think``). An :class:`InputError` whose message names what to use instead, and an
    ``AttributeError``, so ``hasattr(model, "trace")`` is simply False."""


#: what to use instead of each :class:`explorer.Model` method that does not apply here
_MODEL_ONLY = {
    "trace": "{name} is a recurrent-depth model: its core block is reused r times, so there is no per-layer "
             "trace; use model.iterate(prompt) for the trajectory of iterations.",
    "logit_lens": "the logit lens needs a trace; for a recurrent-depth model use model.iterate(prompt), whose steps "
                  "carry the coda's read-out per iteration.",
    "think": "continuous thoughts need a KV-cached causal LM; a recurrent-depth model thinks by iterating: use "
             "model.iterate(prompt) or model.generate(prompt).",
}


class RecurrentModel(TokenAccess):
    """A recurrent-depth checkpoint ready for exploring: ``iterate``, adaptive ``generate``, probes.

    A sibling of :class:`explorer.Model` (both implement :class:`explorer.protocol.LanguageModel`).
    Probes and ``annotate`` work (``nearest_tokens(v, space="output")`` is the *lens* reading
    ln_f → lm_head, skipping the coda); ``trace``, ``logit_lens`` and ``think`` do not apply (the core
    is reused ``r`` times, there is no flat stack of layers): asking for them raises
    :class:`NotForRecurrentError`, which points to :meth:`iterate`."""

    def __init__(self, hf_model: RecurrentForCausalLM, tokenizer: Any, *, name: str = "") -> None:
        if not isinstance(hf_model, RecurrentForCausalLM):
            raise InputError(f"this engine needs a recurrent-depth model (explorer.recurrent), got "
                             f"{type(hf_model).__name__}; load one with explorer.recurrent.load_recurrent(folder) or "
                             "load_huginn(folder) (without trust_remote_code).")
        self.hf, self.tokenizer = hf_model, tokenizer
        self.name = name or getattr(hf_model.config, "name_or_path", "") or "recurrent"
        self.config = cfg = hf_model.config
        self.n_layers = int(cfg.n_layers)
        self.d_model = int(cfg.n_embd)
        self.max_length = int(cfg.block_size)
        self._norm = hf_model.transformer.ln_f
        self._setup_tokens(embed=hf_model.get_input_embeddings(), final_norm=self._norm,
                           unembed=hf_model.lm_head.weight)
        self.points = ["embed", "final"]

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes the object does not have
        if name in _MODEL_ONLY:
            raise NotForRecurrentError(_MODEL_ONLY[name].format(name=self.__dict__.get("name", "this model")))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        c = self.config
        return (f"RecurrentModel({self.name!r}, prelude={c.n_layers_in_prelude}, core={c.n_layers_in_recurrent_block}"
                f"×r, coda={c.n_layers_in_coda}, d={c.n_embd}, vocab={c.padded_vocab_size}, device={self.device})")

    @torch.inference_mode()
    def next_tokens(self, text: Any, k: int = 10, *, num_steps: int | None = None, seed: int = 0) -> TokenTable:
        """The top-``k`` next tokens after ``num_steps`` core iterations (default: the mean recurrence)."""
        ids = self.encode(text)
        r = int(num_steps if num_steps is not None else self.config.mean_recurrence)
        init = initial_states(self.hf, ids.shape[1], seed)
        logits = self.hf(ids, num_steps=r, input_states=init).logits[0, -1]
        return _table(self, logits, k)

    def generate(self, text: Any, max_new_tokens: int = 32, **kw: Any) -> str:
        """Greedy text with per-token adaptive compute (see :func:`generate`)."""
        return generate(self, text, max_new_tokens, **kw).text

    def generate_adaptive(self, text: Any, max_new_tokens: int = 32, **kw: Any) -> GenerationResult:
        """:func:`generate` with everything it measured (iterations and exit values per token)."""
        return generate(self, text, max_new_tokens, **kw)

    def iterate(self, prompt: Any, max_iters: int = 32, exit: str = "kl", threshold: float | None = None,
                **kw: Any) -> IterationResult:
        """One trajectory of core iterations per prompt position (see :func:`iterate`)."""
        return iterate(self, prompt, max_iters, exit, threshold, **kw)


def is_recurrent(obj: Any) -> bool:
    return isinstance(getattr(obj, "hf", obj), RecurrentForCausalLM)


def load_recurrent(path: str | Path, device: str = "auto", *, huginn: bool | None = None,
                   trust_remote_code: bool = False) -> RecurrentModel:
    """Load a recurrent checkpoint folder (saved by :mod:`explorer.recurrent.train`, or
    Huginn-0125's) or a registered name (``"prosqa-recurrent"``) with its tokenizer (if the folder
    has one), in float32, as a :class:`RecurrentModel`. ``huginn=True`` reads the folder as
    Huginn-0125's whatever its ``model_type``. The checkpoint is read by :mod:`explorer.models.load`,
    like ``explorer.load_model`` does."""
    from ..models.load import folder_model_type, load_folder
    from ..models.registry import lookup
    from ..runtime import pick_device

    spec = lookup(str(path))
    folder = spec.prepare() if spec is not None else Path(path).expanduser()
    if not (folder / "config.json").is_file():
        hint = (" prosqa-recurrent is not shipped in this checkout; train it (docs/recurrent.md)."
                if str(path) == "prosqa-recurrent" else "")
        raise ModelNotFoundError(f"{folder} has no config.json; point at a checkpoint folder (e.g. RUN_DIR/latest) "
                                 f"or a registered name.{hint}")
    hf, tok = load_folder(folder, device=pick_device(device), dtype=torch.float32, trust_remote_code=trust_remote_code,
                          loader=load_huginn if huginn or folder_model_type(folder) == HUGINN_MODEL_TYPE else None,
                          need_tokenizer=False)
    if not isinstance(hf, RecurrentForCausalLM):
        raise ExplorerError(f"{folder} loaded as {type(hf).__name__} (remote code); the explorer's engine needs this "
                            "project's implementation: load without trust_remote_code.")
    return RecurrentModel(hf, tok, name=folder.name if folder.name != "latest" else str(folder))


__all__ = ["iterate", "generate", "IterationResult", "GenerationResult", "initial_states", "trajectory_pca", "figure",
           "RecurrentModel", "NotForRecurrentError", "as_recurrent_model", "load_recurrent", "is_recurrent",
           "next_token_adaptive"]
_: Sequence[str] = __all__
