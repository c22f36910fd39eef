"""Loading a language model and running it: traces, probes, generation.

:func:`load_model` accepts a registered name (default: the offline SmolLM2), a local Hugging Face
checkpoint folder, or a Hub id. :class:`Model` wraps any causal LM from transformers and gives
every architecture the same capture-point names (see :mod:`explorer.trace`).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from .errors import (ContextLengthError, EmptyInputError, ExplorerError, InputError, ModelNotFoundError,
                     OfflineError, UnknownPointError)
from .models import registry
from .probes import LogitLens, TokenProbe
from .trace import Trace, point_names
from .trajectory import TokenTable, Trajectory

Text = str | Sequence[dict[str, str]] | Sequence[int] | torch.Tensor

_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_norm", "norm_f")


class _Stop(Exception):
    """Raised inside a hook to end a forward pass once every requested point is captured."""


def _pick_device(device: str | torch.device) -> str:
    if str(device) != "auto":
        return str(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(dtype: str | torch.dtype, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    except KeyError:
        raise InputError(f"dtype must be 'auto', 'float32', 'float16' or 'bfloat16', got {dtype!r}.") from None


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False


def _from_hub(hub_id: str, kwargs: dict[str, Any]):
    """The real Hub code path: the local HF cache first, then the network (fails fast, never hangs)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return (AutoModelForCausalLM.from_pretrained(hub_id, local_files_only=True, **kwargs),
                AutoTokenizer.from_pretrained(hub_id, local_files_only=True))
    except OSError:
        if _hub_offline():
            raise OfflineError(f"{hub_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                               "download it once while online (unset HF_HUB_OFFLINE), or pass a local "
                               "checkpoint folder.") from None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().model_info(hub_id, timeout=10)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"no model {hub_id!r} on the Hub (or it is private: log in with "
                                 "`hf auth login`); check the id.") from None
    except Exception as e:  # connection refused, DNS failure, timeout …
        raise OfflineError(f"the Hugging Face Hub cannot be reached to fetch {hub_id!r} ({type(e).__name__}); "
                           "connect to the network, or use the offline default with load_model().") from None
    return (AutoModelForCausalLM.from_pretrained(hub_id, **kwargs), AutoTokenizer.from_pretrained(hub_id))


def load_model(name: str | os.PathLike | None = None, device: str = "auto", dtype: str | torch.dtype = "auto",
               *, trust_remote_code: bool = False) -> "Model":
    """Load a causal language model for exploring.

    ``name``: ``None`` for the offline default (SmolLM2-135M-Instruct), a registered name
    (``explorer.models.registered()``), a local checkpoint folder, or a Hub id (``org/name``).
    ``device``: ``"auto"`` (CUDA when present, else CPU), or any torch device; with several GPUs
    and ``"auto"`` the model is split across them (accelerate's ``device_map="auto"``).
    ``trust_remote_code`` runs code shipped with a checkpoint: only when you ask for it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from . import recurrent  # noqa: F401  (registers the project's recurrent-depth model with the Auto classes)

    kind, where = registry.resolve(name)
    dev = _pick_device(device)
    kwargs: dict[str, Any] = {"dtype": _pick_dtype(dtype, dev), "trust_remote_code": trust_remote_code}
    split = device == "auto" and torch.cuda.device_count() > 1
    if split:
        kwargs["device_map"] = "auto"
    if kind == "hub":
        hf, tok = _from_hub(str(where), kwargs)
    else:
        try:
            hf = AutoModelForCausalLM.from_pretrained(where, **kwargs)
            tok = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"could not load a causal LM from {where} ({e}); check that the folder "
                                     "holds config.json, weights and a tokenizer.") from e
    if not split:
        hf = hf.to(dev)
    label = registry.lookup(str(name or registry.DEFAULT_MODEL)).name if kind == "registry" else str(name)  # type: ignore[union-attr]
    if recurrent.is_recurrent(hf):
        return recurrent.RecurrentModel(hf.eval(), tok, name=label)
    return Model(hf.eval(), tok, name=label)


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


class Model:
    """A causal LM ready for exploring: ``trace``, probes, ``logit_lens``, generation."""

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
        self._embed = hf_model.get_input_embeddings()
        out = hf_model.get_output_embeddings()
        self.probe = TokenProbe(final_norm=self._norm, unembed=out.weight, embed=self._embed.weight,
                                decode=self._decode_one, softcap=getattr(cfg, "final_logit_softcapping", None))
        self.points = point_names(self.n_layers)
        self._decode_cache: dict[int, str] = {}

    def __repr__(self) -> str:
        return (f"Model({self.name!r}, {type(self.hf).__name__}, layers={self.n_layers}, d={self.d_model}, "
                f"vocab={self.probe.vocab}, device={self.device})")

    @property
    def device(self) -> torch.device:
        return self._embed.weight.device

    # -- tokens -------------------------------------------------------------------------------
    def _decode_one(self, i: int) -> str:
        s = self._decode_cache.get(i)
        if s is None:
            s = self._decode_cache[i] = self.tokenizer.decode([i])
        return s

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, text: Text, *, truncate: bool = False) -> torch.Tensor:
        """(1, T) input ids of plain text, of chat messages rendered with the chat template
        (with the generation prompt), or of token ids given directly (a list or tensor). Raises for empty input and for input longer than the
        context unless ``truncate=True`` (then the first ``max_length`` tokens are kept)."""
        if isinstance(text, torch.Tensor) or (isinstance(text, (list, tuple)) and text
                                              and all(isinstance(i, int) for i in text)):
            ids = [int(i) for i in torch.as_tensor(text).reshape(-1).tolist()]
        elif isinstance(text, str):
            if not text.strip():
                raise EmptyInputError("the text is empty; pass at least one word.")
            ids = list(self.tokenizer(text)["input_ids"])
        elif isinstance(text, Sequence) and text and all(isinstance(m, dict) for m in text):
            if not getattr(self.tokenizer, "chat_template", None):
                raise InputError(f"{self.name} has no chat template; pass plain text instead of messages.")
            if not any(str(m.get("content", "")).strip() for m in text):
                raise EmptyInputError("every message is empty; give at least one message some content.")
            ids = self.tokenizer.apply_chat_template(list(text), add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            ids = list(ids[0] if ids and isinstance(ids[0], list) else ids)
        else:
            raise EmptyInputError("pass a non-empty string, or a non-empty list of chat messages "
                                  "({'role': ..., 'content': ...}).")
        if not ids:
            raise EmptyInputError("the text has no tokens; pass at least one word.")
        if self.max_length and len(ids) > self.max_length:
            if not truncate:
                raise ContextLengthError(f"the input has {len(ids)} tokens but {self.name} reads at most "
                                         f"{self.max_length}; shorten it, or pass truncate=True to keep the first "
                                         f"{self.max_length}.")
            ids = ids[: self.max_length]
        return torch.tensor([ids], device=self.device)

    # -- tracing ------------------------------------------------------------------------------
    def _check_points(self, points: Sequence[str] | None) -> list[str]:
        if points is None:
            return list(self.points)
        if isinstance(points, str):
            points = [points]
        bad = [p for p in points if p not in self.points]
        if bad:
            raise UnknownPointError(f"unknown capture point(s) {bad}; {self.name} has embed, layer.0 … "
                                    f"layer.{self.n_layers - 1}, final.")
        return [p for p in self.points if p in set(points)]

    @torch.inference_mode()
    def trace(self, text: Text, *, points: Sequence[str] | None = None, dtype: str | torch.dtype = "float32",
              truncate: bool = False) -> Trace:
        """Run one forward pass and capture the residual stream at ``points`` (default: all).

        ``dtype="float16"`` halves the storage. When every requested point lies before the last
        block, the pass stops there."""
        store_dtype = _pick_dtype(dtype, "cpu") if dtype != "auto" else torch.float32
        ids = self.encode(text, truncate=truncate)
        wanted = self._check_points(points)
        states: dict[str, torch.Tensor] = {}
        last = wanted[-1]

        def keep(name: str, x: torch.Tensor) -> None:
            states[name] = x[0].detach().to(device="cpu", dtype=store_dtype)
            if name == last:
                raise _Stop

        handles = []
        if "embed" in wanted:
            handles.append(self._layers[0].register_forward_pre_hook(
                lambda m, a, kw: keep("embed", a[0] if a else kw["hidden_states"]), with_kwargs=True))
        for i, layer in enumerate(self._layers):
            if f"layer.{i}" in wanted:
                handles.append(layer.register_forward_hook(
                    lambda m, a, o, n=f"layer.{i}": keep(n, o[0] if isinstance(o, tuple) else o)))
        if "final" in wanted:
            handles.append(self._norm.register_forward_hook(lambda m, a, o: keep("final", o)))
        try:
            self.hf(input_ids=ids, use_cache=False, logits_to_keep=1)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        tokens = [self._decode_one(i) for i in ids[0].tolist()]
        return Trace(tokens=tokens, token_ids=ids[0].tolist(), states={p: states[p] for p in wanted},
                     model=self.name, text=text if isinstance(text, str) else
                     (text.reshape(-1).tolist() if isinstance(text, torch.Tensor) else list(text)),
                     meta={"dtype": str(store_dtype).replace("torch.", "")})

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

    # -- probes -------------------------------------------------------------------------------
    def nearest_tokens(self, vec: Any, k: int = 10, space: str = "output", *, exclude: Sequence[str | int] = (),
                       point: str | None = None, normed: bool | None = None) -> TokenTable | list[TokenTable]:
        """Top-``k`` tokens for a vector (d,) or a batch (n, d). ``space="output"``: probabilities
        through the final norm and unembedding (skipped for vectors already normed — ``point="final"``
        or ``thought.*``, or ``normed=True``); ``space="input"``: cosine to the input embeddings.
        ``exclude``: tokens (strings) or ids to leave out."""
        return self.probe.nearest(vec, k, space, exclude=exclude, point=point, normed=normed, encode=self._ids)

    def annotate(self, traj: Trajectory, k: int = 10) -> Trajectory:
        """Fill a trajectory's probes and scalars (see :meth:`TokenProbe.annotate`)."""
        return self.probe.annotate(traj, k)

    def token_vector(self, text: str, *, reduce: str | None = None) -> torch.Tensor:
        """The input-embedding row of ``text``'s token. Text that is several tokens raises, unless
        ``reduce="mean"`` averages their rows."""
        ids = self._ids(text)
        if not ids:
            raise EmptyInputError("token_vector needs a non-empty token, e.g. ' king' (note the space).")
        if len(ids) > 1 and reduce != "mean":
            raise InputError(f"{text!r} is {len(ids)} tokens ({[self._decode_one(i) for i in ids]}); pick a single "
                             "token (often with a leading space), or pass reduce='mean'.")
        return self._embed.weight[ids].detach().float().mean(0).cpu()

    def think(self, prompt: Text, n_thoughts: int = 6, mode: str = "coconut", **options: Any):
        """Continuous thoughts after ``prompt`` (``mode``: ``"coconut"``, ``"soft"`` or ``"cot"``),
        then the decoded answer: a :class:`explorer.thoughts.ThoughtResult` whose ``trajectory``
        has one step ``thought.k`` per thought. See :mod:`explorer.thoughts.engine`."""
        from .thoughts.engine import think

        return think(self, prompt, n_thoughts, mode, **options)

    def input_embeddings(self) -> np.ndarray:
        """The (V, d) input-embedding matrix as float32 numpy (a background set for maps)."""
        return self._embed.weight.detach().float().cpu().numpy()

    @property
    def token_space(self) -> "EmbeddingSpace":
        """This model's input-embedding space as a vector space for arithmetic and ConceptLab."""
        return EmbeddingSpace(self)

    @torch.inference_mode()
    def logit_lens(self, trace: Trace, k: int = 5, *, target: str | None = None,
                   points: Sequence[str] | None = None) -> LogitLens:
        """The logit lens at every point × position of ``trace``: top-``k`` tokens with their
        probabilities, entropy, and (with ``target``, a single token such as ``" Paris"``) its rank."""
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
        top_tokens = [[[self._decode_one(int(i)) for i in row] for row in plane] for plane in top_ids]
        return LogitLens(names, list(trace.tokens), k, top_ids, top_probs, top_tokens, entropy, target, target_id,
                         rank, tprob)


class EmbeddingSpace:
    """A model's input-embedding space: ``encode`` a token to its row, read vectors back as the
    nearest tokens by cosine. The protocol ConceptLab and :mod:`explorer.arithmetic` use."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.name = f"{model.name} · input embeddings"

    def encode(self, text: str) -> np.ndarray:
        return self.model.token_vector(text, reduce="mean").numpy()

    def nearest(self, vec: Any, k: int = 10, exclude: Sequence[str] = ()) -> TokenTable:
        return self.model.nearest_tokens(np.asarray(vec, np.float32), k, "input", exclude=exclude)  # type: ignore[return-value]
