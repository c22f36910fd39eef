"""Running a causal language model: traces, probes, the logit lens, generation, continuous thoughts.

:class:`Model` wraps any causal LM from transformers, implements :class:`explorer.protocol.LanguageModel`
and gives every architecture the same capture-point names (see :mod:`explorer.trace`). Loading by
name lives in :mod:`explorer.loading` (``explorer.load_model``).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from .errors import ExplorerError, InputError
from .probes import LogitLens
from .protocol import EmbeddingSpace, Text, TokenAccess
from .runtime import pick_dtype
from .trace import Trace, check_points, point_names
from .trajectory import TokenTable
from .validate import whole

_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_norm", "norm_f")


class _Stop(Exception):
    """Raised inside a hook to end a forward pass once every requested point is captured."""


def _find_layers(hf: torch.nn.Module, n: int) -> torch.nn.ModuleList:
    found = [(name, m) for name, m in hf.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    if not found:
        raise ExplorerError(f"cannot find the {n} decoder blocks of {type(hf).__name__}; this architecture is "
                            "not supported yet: please open an issue naming it.")
    found.sort(key=lambda nm: (not nm[0].endswith(("layers", ".h", "blocks")), nm[0].count(".")))
    return found[0][1]


def _find_final_norm(hf: torch.nn.Module) -> torch.nn.Module:
    bases = [hf.base_model, getattr(hf.base_model, "language_model", None), hf]
    for base in bases:
        for attr in _NORM_NAMES:
            m = getattr(base, attr, None) if base is not None else None
            if isinstance(m, torch.nn.Module):
                return m
    raise ExplorerError(f"cannot find the final norm of {type(hf).__name__}; this architecture is not supported "
                        "yet: please open an issue naming it.")


class Model(TokenAccess):
    """A causal LM ready for exploring: ``trace``, probes, ``logit_lens``, generation, ``think``.

    Implements :class:`explorer.protocol.LanguageModel`; encoding, decoding, probes and the
    input-embedding space come from :class:`explorer.protocol.TokenAccess`."""

    def __init__(self, hf_model: torch.nn.Module, tokenizer: Any, *, name: str = "") -> None:
        self.hf = hf_model
        self.tokenizer = tokenizer
        self.name = name or getattr(hf_model.config, "name_or_path", "") or type(hf_model).__name__
        cfg = hf_model.config.get_text_config() if hasattr(hf_model.config, "get_text_config") else hf_model.config
        self.config = cfg
        self.n_layers = int(cfg.num_hidden_layers)
        self.d_model = int(cfg.hidden_size)
        self.max_length = int(getattr(cfg, "max_position_embeddings", 0) or getattr(cfg, "n_positions", 0) or 0) or None
        self._layers = _find_layers(hf_model, self.n_layers)
        self._norm = _find_final_norm(hf_model)
        self._setup_tokens(embed=hf_model.get_input_embeddings(), final_norm=self._norm,
                           unembed=hf_model.get_output_embeddings().weight,
                           softcap=getattr(cfg, "final_logit_softcapping", None))
        self.points = point_names(self.n_layers)

    def __repr__(self) -> str:
        return (f"Model({self.name!r}, {type(self.hf).__name__}, layers={self.n_layers}, d={self.d_model}, "
                f"vocab={self.probe.vocab}, device={self.device})")

    # -- tracing ------------------------------------------------------------------------------
    def _check_points(self, points: Sequence[str] | None) -> list[str]:
        return check_points(points, self.points, self.name)

    @torch.inference_mode()
    def trace(self, text: Text, *, points: Sequence[str] | None = None, dtype: str | torch.dtype = "float32",
              truncate: bool = False) -> Trace:
        """Run one forward pass and capture the residual stream at ``points`` (default: all).

        ``dtype="float16"`` halves the storage. When every requested point lies before the last
        block, the pass stops there."""
        store_dtype = pick_dtype(dtype, "cpu") if dtype != "auto" else torch.float32
        if not store_dtype.is_floating_point:
            raise InputError(f"dtype must be a floating-point type ('float32', 'float16', 'bfloat16'), got {dtype!r}.")
        ids = self.encode(text, truncate=truncate)
        wanted = self._check_points(points)
        states: dict[str, torch.Tensor] = {}

        def keep(name: str, x: torch.Tensor) -> None:
            states[name] = x[0].detach().to(device="cpu", dtype=store_dtype)

        self.capture_forward(ids, wanted, keep)
        tokens = [self.decode_one(i) for i in ids[0].tolist()]
        return Trace(tokens=tokens, token_ids=ids[0].tolist(), states={p: states[p] for p in wanted},
                     model=self.name, text=text if isinstance(text, str) else
                     (text.reshape(-1).tolist() if isinstance(text, torch.Tensor) else list(text)),
                     meta={"dtype": str(store_dtype).replace("torch.", "")})

    def capture_forward(self, ids: torch.Tensor, points: Sequence[str], keep: Callable[[str, torch.Tensor], None],
                        attention_mask: torch.Tensor | None = None) -> None:
        """One forward pass of ``ids`` (batch, T) that calls ``keep(point, states (batch, T, d))`` at each
        of ``points`` (checked names, in model order) and stops after the last one: the hook points that
        :meth:`trace` and the corpus capture (:mod:`explorer.corpus`) share."""
        last = points[-1]

        def hit(name: str, x: torch.Tensor) -> None:
            keep(name, x)
            if name == last:
                raise _Stop

        handles = []
        if "embed" in points:
            handles.append(self._layers[0].register_forward_pre_hook(
                lambda m, a, kw: hit("embed", a[0] if a else kw["hidden_states"]), with_kwargs=True))
        for i, layer in enumerate(self._layers):
            if f"layer.{i}" in points:
                handles.append(layer.register_forward_hook(
                    lambda m, a, o, n=f"layer.{i}": hit(n, o[0] if isinstance(o, tuple) else o)))
        if "final" in points:
            handles.append(self._norm.register_forward_hook(lambda m, a, o: hit("final", o)))
        try:
            self.hf(input_ids=ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=1)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()

    def capture(self, source: Any, **options: Any) -> Any:
        """Capture the hidden states of a whole corpus to disk in shards: see
        :func:`explorer.corpus.capture_corpus` (``points``, ``reduce="last"|"mean"|"all"``,
        ``batch_size``, ``out``, ``dtype``). Returns an :class:`explorer.corpus.CorpusCapture`."""
        from .corpus import capture_corpus

        return capture_corpus(self, source, **options)

    @torch.inference_mode()
    def next_tokens(self, text: Text, k: int = 10) -> TokenTable:
        """The model's own top-``k`` next tokens after ``text``."""
        logits = self.hf(input_ids=self.encode(text), use_cache=False, logits_to_keep=1).logits[0, -1].float()
        top = logits.softmax(-1).topk(k)
        return self.probe._table(top.indices, top.values, "output", "prob")

    @torch.inference_mode()
    def generate(self, text: Text, max_new_tokens: int = 32) -> str:
        """Greedy continuation of ``text`` (chat messages get the generation prompt)."""
        ids = self.encode(text)
        out = self.hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                               do_sample=False, pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    # -- continuous thoughts -------------------------------------------------------------------
    def think(self, prompt: Text, n_thoughts: int = 6, mode: str = "coconut", **options: Any):
        """Continuous thoughts after ``prompt`` (``mode``: ``"coconut"``, ``"soft"`` or ``"cot"``),
        then the decoded answer: a :class:`explorer.thoughts.ThoughtResult` whose ``trajectory``
        has one step ``thought.k`` per thought. See :mod:`explorer.thoughts.engine`."""
        from .thoughts.engine import think

        return think(self, prompt, n_thoughts, mode, **options)

    # -- the logit lens ------------------------------------------------------------------------
    @torch.inference_mode()
    def logit_lens(self, trace: Trace, k: int = 5, *, target: str | None = None,
                   points: Sequence[str] | None = None) -> LogitLens:
        """The logit lens at every point × position of ``trace``: top-``k`` tokens with their
        probabilities, entropy, and (with ``target``, a single token such as ``" Paris"``) its rank."""
        k = whole(k, "k", 1, self.probe.vocab)   # at most the vocabulary size
        names = [p for p in (points or trace.points)]
        for p in names:
            trace[p]  # raises UnknownPointError naming the fix
        target_id = None
        if target is not None:
            ids = self._ids(target)
            if len(ids) != 1:
                raise InputError(f"target {target!r} is {len(ids)} tokens; pick a single token (e.g. ' Paris').")
            target_id = ids[0]
        P, T = len(names), len(trace)
        top_ids = np.zeros((P, T, k), np.int64)
        top_probs = np.zeros((P, T, k), np.float32)
        entropy = np.zeros((P, T), np.float32)
        rank = np.zeros((P, T), np.int64) if target_id is not None else None
        tprob = np.zeros((P, T), np.float32) if target_id is not None else None
        for j, p in enumerate(names):
            logp = self.probe.logits(trace[p], point=p).log_softmax(-1)
            probs = logp.exp()
            top = probs.topk(k, dim=-1)
            top_ids[j], top_probs[j] = top.indices.cpu().numpy(), top.values.cpu().numpy()
            entropy[j] = (-(probs * logp).sum(-1)).cpu().numpy()
            if target_id is not None:
                t = probs[:, target_id]
                tprob[j] = t.cpu().numpy()
                rank[j] = (probs > t[:, None]).sum(-1).cpu().numpy()
        top_tokens = [[[self.decode_one(int(i)) for i in row] for row in plane] for plane in top_ids]
        return LogitLens(names, list(trace.tokens), k, top_ids, top_probs, top_tokens, entropy, target, target_id,
                         rank, tprob)


__all__ = ["Model", "EmbeddingSpace"]
