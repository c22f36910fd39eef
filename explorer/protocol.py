"""The model protocol: what every engine needs from a loaded model, and the pieces both wrappers share.

:class:`LanguageModel` is the protocol (``name``, ``hf``, ``tokenizer``, ``device``, ``max_length``,
``probe``, ``encode``, ``decode_one``, ``nearest_tokens``) that :class:`explorer.Model` (any causal
LM) and :class:`explorer.recurrent.RecurrentModel` (a recurrent-depth model) both implement; the
engines (:mod:`explorer.thoughts`, :mod:`explorer.recurrent`) take anything that does.
:func:`encode_input` is the one place where text, chat messages or token ids become input ids.
:class:`TokenAccess` is the shared implementation of the token side of the protocol (decoding,
probes, the input-embedding space); :class:`EmbeddingSpace` is a model's input-embedding space as a
vector space for arithmetic and ConceptLab.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .errors import ContextLengthError, EmptyInputError, InputError
from .probes import TokenProbe
from .trajectory import TokenTable, Trajectory

#: what :func:`encode_input` accepts: plain text, chat messages, or token ids (a list or a tensor)
Text = str | Sequence[dict[str, str]] | Sequence[int] | torch.Tensor


@runtime_checkable
class LanguageModel(Protocol):
    """What every engine needs from a model (checked with ``isinstance(m, LanguageModel)``)."""

    name: str
    hf: torch.nn.Module
    tokenizer: Any
    probe: TokenProbe
    max_length: int | None

    @property
    def device(self) -> torch.device: ...

    def encode(self, text: Text, *, truncate: bool = False) -> torch.Tensor:
        """(1, T) input ids on :attr:`device` (see :func:`encode_input`)."""

    def decode_one(self, i: int) -> str:
        """The text of one token id."""

    def nearest_tokens(self, vec: Any, k: int = 10, space: str = "output", *, exclude: Sequence[str | int] = (),
                       point: str | None = None, normed: bool | None = None) -> TokenTable | list[TokenTable]:
        """Top-``k`` tokens for a vector or a batch (see :meth:`TokenProbe.nearest`)."""


def _is_ids(text: Any) -> bool:
    return isinstance(text, torch.Tensor) or (isinstance(text, (list, tuple)) and bool(text)
                                              and all(isinstance(i, int) for i in text))


def check_text(text: str, what: str = "the text") -> str:
    """``text`` if it can be encoded as UTF-8; a typed error naming the fix for a lone surrogate
    (what Python makes of bytes that are not UTF-8, e.g. in a file name or a command-line argument)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{what} holds {text[e.start:e.end]!r}, which is not a character (bytes that were not "
                         "UTF-8); decode the source with errors='replace', or remove it.") from None
    return text


def _check_messages(messages: Sequence[Any]) -> None:
    for i, m in enumerate(messages):
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InputError(f"chat message {i} needs a string 'role' and a string 'content', got "
                             f"{ {k: type(v).__name__ for k, v in m.items()} }; e.g. {{'role': 'user', 'content': 'Hi'}}.")
        check_text(m["content"], f"chat message {i}")


def encode_input(tokenizer: Any, text: Text, *, max_length: int | None = None, truncate: bool = False,
                 name: str = "the model", device: str | torch.device | None = None,
                 vocab_size: int | None = None) -> torch.Tensor:
    """(1, T) input ids of plain text (with the special tokens the tokenizer adds by default, as
    ``tokenizer(text)`` gives them), of chat messages rendered with the chat template (with the
    generation prompt), or of token ids given directly (a list or tensor, taken as they are).

    Raises :class:`EmptyInputError` for empty input, :class:`InputError` for text without a
    tokenizer or messages without a chat template, and :class:`ContextLengthError` for input
    longer than ``max_length`` unless ``truncate=True`` (then the first ``max_length`` tokens are kept).
    """
    if _is_ids(text):
        ids = [int(i) for i in torch.as_tensor(text).reshape(-1).tolist()]
        bad = [i for i in ids if i < 0 or (vocab_size is not None and i >= vocab_size)]
        if bad:
            raise InputError(f"token id {bad[0]} is outside {name}'s vocabulary (0..{(vocab_size or 1) - 1}); "
                             "pass ids the model's tokenizer made, or text.")
    elif isinstance(text, str):
        check_text(text)
        if not text.strip():
            raise EmptyInputError("the text is empty; pass at least one word.")
        if tokenizer is None:
            raise InputError(f"{name} has no tokenizer; pass token ids, or a tokenizer= to encode text.")
        ids = list(tokenizer(text)["input_ids"])
    elif isinstance(text, Sequence) and text and all(isinstance(m, dict) for m in text):
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise InputError(f"{name} has no chat template; pass plain text instead of messages.")
        _check_messages(text)
        if not any(m["content"].strip() for m in text):
            raise EmptyInputError("every message is empty; give at least one message some content.")
        ids = tokenizer.apply_chat_template(list(text), add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ids = list(ids[0] if ids and isinstance(ids[0], list) else ids)
    else:
        raise EmptyInputError("pass a non-empty string, a non-empty list of token ids, or a non-empty list of "
                              "chat messages ({'role': ..., 'content': ...}).")
    if not ids:
        raise EmptyInputError("the text has no tokens; pass at least one word.")
    if max_length and len(ids) > max_length:
        if not truncate:
            raise ContextLengthError(f"the input has {len(ids)} tokens but {name} reads at most {max_length}; "
                                     f"shorten it, or pass truncate=True to keep the first {max_length}.")
        ids = ids[:max_length]
    return torch.tensor([ids], device=device)


class TokenAccess:
    """The token side of :class:`LanguageModel`, shared by :class:`explorer.Model` and
    :class:`explorer.recurrent.RecurrentModel`: encoding, decoding, probes and the input
    embeddings. A class using it sets ``name``, ``tokenizer`` and ``max_length`` and calls
    :meth:`_setup_tokens` once."""

    name: str
    tokenizer: Any
    max_length: int | None
    probe: TokenProbe
    _embed: torch.nn.Module

    def _setup_tokens(self, *, embed: torch.nn.Module, final_norm: torch.nn.Module, unembed: torch.Tensor,
                      softcap: float | None = None) -> None:
        self._embed = embed
        self._decode_cache: dict[int, str] = {}
        self.probe = TokenProbe(final_norm=final_norm, unembed=unembed, embed=embed.weight, decode=self.decode_one,
                                softcap=softcap)

    @property
    def device(self) -> torch.device:
        return self._embed.weight.device

    # -- tokens -------------------------------------------------------------------------------
    def decode_one(self, i: int) -> str:
        """The text of token ``i`` (cached; the id itself when there is no tokenizer)."""
        i = int(i)
        s = self._decode_cache.get(i)
        if s is None:
            s = self._decode_cache[i] = self.tokenizer.decode([i]) if self.tokenizer is not None else str(i)
        return s

    _decode_one = decode_one  # the older name, still used by explorer.thoughts.engine

    def _ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (for single tokens and exclusions)."""
        if self.tokenizer is None:
            raise InputError(f"{self.name} has no tokenizer; pass token ids instead of text.")
        if not isinstance(text, str):
            raise InputError(f"pass a token as a str (e.g. ' king'), got {type(text).__name__}.")
        return list(self.tokenizer(check_text(text), add_special_tokens=False)["input_ids"])

    def encode(self, text: Text, *, truncate: bool = False) -> torch.Tensor:
        """(1, T) input ids of plain text, of chat messages rendered with the chat template
        (with the generation prompt), or of token ids given directly (a list or tensor). Raises for
        empty input and for input longer than the context unless ``truncate=True`` (then the first
        ``max_length`` tokens are kept). See :func:`encode_input`."""
        return encode_input(self.tokenizer, text, max_length=self.max_length, truncate=truncate, name=self.name,
                            device=self.device, vocab_size=int(self._embed.weight.shape[0]))

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

    # -- the input-embedding space ------------------------------------------------------------
    def token_vector(self, text: str, *, reduce: str | None = None) -> torch.Tensor:
        """The input-embedding row of ``text``'s token. Text that is several tokens raises, unless
        ``reduce="mean"`` averages their rows."""
        if reduce not in (None, "mean"):
            raise InputError(f"reduce must be None (one token) or 'mean', got {reduce!r}.")
        ids = self._ids(text)
        if not ids:
            raise EmptyInputError("token_vector needs a non-empty token, e.g. ' king' (note the space).")
        if len(ids) > 1 and reduce != "mean":
            raise InputError(f"{text!r} is {len(ids)} tokens ({[self.decode_one(i) for i in ids]}); pick a single "
                             "token (often with a leading space), or pass reduce='mean'.")
        return self._embed.weight[ids].detach().float().mean(0).cpu()

    def input_embeddings(self) -> np.ndarray:
        """The (V, d) input-embedding matrix as float32 numpy (a background set for maps)."""
        return self._embed.weight.detach().float().cpu().numpy()

    @property
    def token_space(self) -> "EmbeddingSpace":
        """This model's input-embedding space as a vector space for arithmetic and ConceptLab."""
        return EmbeddingSpace(self)


class EmbeddingSpace:
    """A model's input-embedding space: ``encode`` a token to its row, read vectors back as the
    nearest tokens by cosine. The protocol ConceptLab and :mod:`explorer.arithmetic` use."""

    def __init__(self, model: TokenAccess) -> None:
        self.model = model
        self.name = f"{model.name} · input embeddings"

    def encode(self, text: str) -> np.ndarray:
        return self.model.token_vector(text, reduce="mean").numpy()

    def nearest(self, vec: Any, k: int = 10, exclude: Sequence[str] = ()) -> TokenTable:
        return self.model.nearest_tokens(np.asarray(vec, np.float32), k, "input", exclude=exclude)  # type: ignore[return-value]


__all__ = ["LanguageModel", "Text", "encode_input", "TokenAccess", "EmbeddingSpace"]
