"""The same text in a subword tokenizer's tokens, as byte spans, to compare patches with tokens."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import InputError


@lru_cache(maxsize=1)
def default_tokenizer() -> Any:
    """The offline default model's tokenizer (SmolLM2's BPE), without loading its weights; loaded
    once per process (every PatchView and exercise check shares it)."""
    from transformers import AutoTokenizer

    from ..models.registry import DEFAULT_MODEL, resolve

    _, folder = resolve(DEFAULT_MODEL)
    return AutoTokenizer.from_pretrained(folder)


def token_spans(tokenizer: Any, text: str) -> list[tuple[int, int, str]]:
    """(start byte, end byte, token text) of every token of ``text`` (UTF-8 byte offsets; the
    tokenizer's character offsets converted), in order, covering the text."""
    if not isinstance(text, str):
        raise InputError(f"pass text as a str, got {type(text).__name__}.")
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)   # a model: its tokenizer
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    byte_at = [0]
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
    out = []
    for a, b in enc["offset_mapping"]:
        if b > a:
            out.append((byte_at[a], byte_at[b], text[a:b]))
    return out
