"""Continuous thoughts for any causal LM wrapped by :class:`explorer.Model`.

Three ways to think ``n`` steps after a prompt, each one single-position forward pass that reuses
the KV cache (a transformers ``DynamicCache``), never recomputing the prefix:

``coconut`` (Hao et al. 2024)
    the last layer's hidden state after the final norm (HF ``hidden_states[-1]``) at the newest
    position becomes the next position's ``inputs_embeds``.
``soft`` (Soft Thinking, Zhang et al. 2025)
    the next-token distribution, filtered by top-k / top-p and renormalised, mixes the rows of the
    input-embedding matrix; the mixture is fed back. *Cold stop*: thinking ends early once the
    entropy stays below a threshold for ``cold_stop_patience`` steps.
``cot``
    an ordinary greedy chain of thought: the top token is fed back (the same tokens as HF greedy
    ``generate``).

Every thought becomes a :class:`~explorer.trajectory.Step` named ``thought.{k}`` (k from 0) in a
:class:`~explorer.trajectory.Trajectory` of kind ``"thoughts"``. The step's main vector is the
hidden state after the final norm whose read-out is the model's next-token distribution at that
thought (so ``model.annotate`` gives its entropy and nearest tokens in both spaces); ``vectors["fed"]``
is the vector fed back as the next input (for ``coconut`` the same vector; for ``soft`` the
embedding mixture; for ``cot`` the chosen token's embedding row), with ``scalars["fed_norm"]``.

Markers: when the tokenizer knows ``<bot>`` and ``<eot>`` (a model trained by
:mod:`explorer.thoughts.train`), the prompt ends with ``<bot>`` and ``<eot>`` follows the last
thought before the answer is decoded greedily; an untrained model gets no markers (``markers="auto"``),
and so does a checkpoint trained without them (``config.coconut["markers"]`` false: the graph-token
models, whose first thought is the hidden state of the question's last token).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..trajectory import Step, Trajectory
from ..validate import finite, whole

MODES = ("coconut", "soft", "cot")
BOT, EOT, LATENT = "<bot>", "<eot>", "<latent>"


def special_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` if the tokenizer has it as one whole token, else ``None``."""
    vocab = tokenizer.get_vocab()
    return int(vocab[token]) if token in vocab else None


def trained_for(model: Any) -> dict[str, Any]:
    """What a checkpoint of :mod:`explorer.thoughts.train` records about its thinking
    (``config.coconut``: method, thought count, markers, stop token); ``{}`` for any other model."""
    info = getattr(getattr(getattr(model, "hf", None), "config", None), "coconut", None)
    return info if isinstance(info, dict) else {}


def eos_ids(model: Any) -> set[int]:
    """Every id that ends generation (the generation config's and the tokenizer's EOS)."""
    ids: set[int] = set()
    gc = getattr(model.hf, "generation_config", None)
    e = getattr(gc, "eos_token_id", None) if gc is not None else None
    for x in (e if isinstance(e, (list, tuple)) else [e]):
        if x is not None:
            ids.add(int(x))
    if getattr(model.tokenizer, "eos_token_id", None) is not None:
        ids.add(int(model.tokenizer.eos_token_id))
    return ids


def filter_probs(logits: torch.Tensor, *, top_k: int | None = None, top_p: float | None = None,
                 temperature: float = 1.0) -> torch.Tensor:
    """Softmax(logits / T) keeping the top-k tokens and the smallest top-p nucleus, renormalised."""
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}; use mode='cot' for greedy tokens.")
    p = (logits.float() / temperature).softmax(-1)
    if top_k is not None and 0 < top_k < p.shape[-1]:
        kth = p.topk(top_k, dim=-1).values[..., -1:]
        p = torch.where(p >= kth, p, torch.zeros_like(p))
    if top_p is not None and 0 < top_p < 1:
        sp, si = p.sort(dim=-1, descending=True)
        cum = sp.cumsum(-1) / sp.sum(-1, keepdim=True)
        keep = (cum - sp / sp.sum(-1, keepdim=True)) < top_p  # keep tokens until the nucleus first reaches top_p
        sp = torch.where(keep, sp, torch.zeros_like(sp))
        p = torch.zeros_like(p).scatter(-1, si, sp)
    return p / p.sum(-1, keepdim=True)


@dataclass
class ThoughtResult:
    """What :func:`think` returns: the thoughts as a trajectory, and the decoded answer."""

    trajectory: Trajectory
    answer: str                         # text decoded after the thoughts (after <eot> when there are markers)
    answer_ids: list[int]
    mode: str
    prompt_ids: list[int]
    thought_ids: list[int] = field(default_factory=list)   # cot: the tokens of the chain of thought
    thought_text: str = ""
    stopped_early: bool = False          # soft: cold stop; cot: EOS inside the thoughts; coconut: its stop token

    @property
    def n_thoughts(self) -> int:
        return len(self.trajectory)

    @property
    def text(self) -> str:
        """Everything generated as language (cot: thoughts and answer; otherwise the answer)."""
        return self.thought_text + self.answer

    @property
    def generated_tokens(self) -> int:
        """Thoughts plus answer tokens (the cost measure of the Coconut paper)."""
        return self.n_thoughts + len(self.answer_ids)

    def __repr__(self) -> str:
        return f"ThoughtResult(mode={self.mode!r}, thoughts={self.n_thoughts}, answer={self.answer!r})"


class ThoughtSession:
    """Think one thought at a time: ``s = ThoughtSession(model, prompt); s.step(); s.step(); s.finish()``.

    Each :meth:`step` is one single-position forward pass on the cached prefix.
    """

    def __init__(self, model: Any, prompt: Any, *, mode: str = "coconut", markers: bool | str = "auto",
                 stop_on: str | None = "auto", top_k: int | None = 15, top_p: float | None = 0.95, temperature: float = 1.0,
                 cold_stop_entropy: float | None = None, cold_stop_patience: int = 3) -> None:
        from transformers import DynamicCache

        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}.")
        finite(temperature, "temperature", 0.0, strict_lo=True)
        if top_k is not None:
            whole(top_k, "top_k (or None)", 1)
        if top_p is not None:
            finite(top_p, "top_p (or None)", 0.0, 1.0)
        self.model = model
        self.mode = mode
        self.top_k, self.top_p, self.temperature = top_k, top_p, temperature
        self.cold_stop_entropy, self.cold_stop_patience = cold_stop_entropy, cold_stop_patience
        tok = model.tokenizer
        self.bot_id, self.eot_id = special_id(tok, BOT), special_id(tok, EOT)
        have = self.bot_id is not None and self.eot_id is not None
        trained = trained_for(model)
        if markers == "auto":   # as the checkpoint was trained (older checkpoints all had markers)
            self.markers = have and mode != "cot" and bool(trained.get("markers", True))
        elif markers:
            if not have:
                raise InputError(f"{model.name} has no {BOT}/{EOT} tokens; pass markers='auto' (no markers), or "
                                 "use a model trained with explorer.thoughts.train.")
            self.markers = True
        else:
            self.markers = False
        if stop_on == "auto":   # a checkpoint that learned when to stop thinking names its token
            stop_on = trained.get("stop_on") if mode == "coconut" else None
        self.stop_id = special_id(tok, stop_on) if stop_on else None
        if stop_on and self.stop_id is None:
            raise InputError(f"{model.name} has no token {stop_on!r} to stop thinking on; pass stop_on=None.")
        ids = model.encode(prompt)
        if self.markers:
            ids = torch.cat([ids, torch.tensor([[self.bot_id]], device=ids.device)], 1)
        if model.max_length and ids.shape[1] >= model.max_length:
            from ..errors import ContextLengthError

            raise ContextLengthError(f"the prompt has {ids.shape[1]} tokens and leaves no room to think in "
                                     f"{model.name}'s {model.max_length}; shorten the prompt.")
        self.prompt_ids: list[int] = ids[0].tolist()
        self._eos = eos_ids(model)
        self._cache = DynamicCache()
        self._embed = model._embed
        self.steps: list[Step] = []
        self.thought_ids: list[int] = []
        self.stopped = False
        self._low = 0
        self._forward(input_ids=ids)

    # -- internals ----------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, **kw: Any) -> None:
        out = self.model.hf(**kw, cache=self._cache, use_cache=True, output_hidden_states=True,
                            logits_to_keep=1)
        self._cache = out.cache
        self._h = out.hidden_states[-1][0, -1]     # after the final norm
        self._logits = out.logits[0, -1]

    @property
    def length(self) -> int:
        """Positions in the cache so far (prompt, markers, thoughts)."""
        return len(self.prompt_ids) + len(self.steps)

    # -- public -------------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> Step:
        """Think one more thought; returns its :class:`Step` (not yet annotated)."""
        if self.stopped:
            raise InputError("this session has stopped thinking (cold stop, EOS or the model's stop token); call finish() "
                             "for the answer.")
        if self.model.max_length and self.length + 1 >= self.model.max_length:
            from ..errors import ContextLengthError

            raise ContextLengthError(f"no room for another thought in {self.model.max_length} positions; "
                                     "think fewer thoughts or shorten the prompt.")
        k = len(self.steps)
        h, logits = self._h, self._logits
        probs = logits.float().softmax(-1)
        top = int(probs.argmax())
        entropy = float(-(probs * probs.clamp_min(1e-30).log()).sum())
        meta: dict[str, Any] = {"mode": self.mode, "position": self.length}
        if self.mode == "coconut":
            fed = h
            self._forward(inputs_embeds=fed.reshape(1, 1, -1).to(self._embed.weight.dtype))
        elif self.mode == "soft":
            p = filter_probs(logits, top_k=self.top_k, top_p=self.top_p, temperature=self.temperature)
            fed = (p.to(self._embed.weight.dtype) @ self._embed.weight)
            meta["support"] = int((p > 0).sum())
            self._forward(inputs_embeds=fed.reshape(1, 1, -1))
        else:  # cot
            fed = self._embed.weight[top]
            self.thought_ids.append(top)
            meta["token_id"] = top
            self._forward(input_ids=torch.tensor([[top]], device=self.model.device))
        step = Step(f"thought.{k}", self.model._decode_one(top), {f"thought.{k}": h, "fed": fed},
                    scalars={"fed_norm": float(fed.float().norm())}, meta=meta)
        self.steps.append(step)
        if self.mode == "cot" and top in self._eos:
            self.stopped = True
        if self.stop_id is not None and self.mode != "cot" and int(self._logits.argmax()) == self.stop_id:
            self.stopped = True   # the model says it is done thinking: the answer comes next
        if self.mode == "soft" and self.cold_stop_entropy is not None:
            self._low = self._low + 1 if entropy < self.cold_stop_entropy else 0
            if self._low >= self.cold_stop_patience:
                self.stopped = True
        if self.markers and top == self.eot_id and self.mode == "soft":
            self.stopped = True
        return step

    def trajectory(self, *, annotate: bool = True, k: int = 10) -> Trajectory:
        """The thoughts so far as a trajectory (annotated: probes and scalars filled)."""
        traj = Trajectory([Step(s.name, s.label, dict(s.vectors), dict(s.scalars), dict(s.probes), dict(s.meta))
                           for s in self.steps], kind="thoughts", space=self.model.name,
                          title=f"{self.mode} thoughts", meta={"mode": self.mode, "markers": self.markers,
                                                               "prompt_ids": self.prompt_ids})
        if annotate and len(traj):
            self.model.annotate(traj, k)
            for s in traj.steps:  # the fed vector read as tokens too (input space)
                s.probes["fed_input"] = self.model.nearest_tokens(s.vectors["fed"], k, "input")
        return traj

    @torch.inference_mode()
    def finish(self, max_new_tokens: int = 32, *, annotate: bool = True, k: int = 10) -> ThoughtResult:
        """End thinking (``<eot>`` when there are markers) and decode the answer greedily."""
        if self.markers:
            self._forward(input_ids=torch.tensor([[self.eot_id]], device=self.model.device))
        answer: list[int] = []
        if not (self.mode == "cot" and self.stopped):
            for _ in range(max_new_tokens):
                if self.model.max_length and self.length + len(answer) + 2 > self.model.max_length:
                    break
                nxt = int(self._logits.argmax())
                answer.append(nxt)
                if nxt in self._eos:
                    break
                self._forward(input_ids=torch.tensor([[nxt]], device=self.model.device))
        dec = self.model.tokenizer.decode
        return ThoughtResult(self.trajectory(annotate=annotate, k=k), dec(answer, skip_special_tokens=True), answer,
                             self.mode, list(self.prompt_ids), list(self.thought_ids),
                             dec(self.thought_ids, skip_special_tokens=True) if self.thought_ids else "",
                             self.stopped)


def think(model: Any, prompt: Any, n_thoughts: int = 6, mode: str = "coconut", *, max_new_tokens: int = 32,
          annotate: bool = True, k: int = 10, **options: Any) -> ThoughtResult:
    """Think ``n_thoughts`` continuous thoughts after ``prompt``, then decode the answer greedily.

    ``mode``: ``"coconut"``, ``"soft"`` or ``"cot"`` (see the module docs). ``options`` go to
    :class:`ThoughtSession` (``markers``, ``top_k``, ``top_p``, ``temperature``,
    ``cold_stop_entropy``, ``cold_stop_patience``). ``annotate=False`` skips the probes (faster
    for evaluation)."""
    n_thoughts = whole(n_thoughts, "n_thoughts", 0)
    session = ThoughtSession(model, prompt, mode=mode, **options)
    room = (model.max_length - len(session.prompt_ids) - 1) if model.max_length else None
    if room is not None and n_thoughts > room:   # fail at once, not after thousands of forward passes
        from ..errors import ContextLengthError

        raise ContextLengthError(f"{n_thoughts} thoughts do not fit after a {len(session.prompt_ids)}-token prompt in "
                                 f"{model.name}'s {model.max_length} positions; think at most {max(room, 0)}.")
    for _ in range(n_thoughts):
        if session.stopped:
            break
        session.step()
    return session.finish(max_new_tokens, annotate=annotate, k=k)


@torch.inference_mode()
def recompute(model: Any, prompt_ids: Sequence[int], fed: Sequence[Any]) -> np.ndarray:
    """Hidden states after the final norm at every thought position, recomputed from scratch by one
    forward over the whole ``inputs_embeds`` sequence (prompt embeddings, then the fed vectors).

    Row k is the state that produced thought k: the check that the cached session is exact."""
    ids = torch.tensor([list(prompt_ids)], device=model.device)
    emb = model._embed(ids)
    if len(fed):
        extra = torch.stack([torch.as_tensor(np.asarray(v), dtype=emb.dtype, device=emb.device) for v in fed])[None]
        emb = torch.cat([emb, extra], 1)
    out = model.hf(inputs_embeds=emb, use_cache=False, output_hidden_states=True)
    h = out.hidden_states[-1][0]
    n = len(prompt_ids)
    return h[n - 1: n - 1 + len(fed) + 1].float().cpu().numpy()
