"""Bytes as tokens: id ``b`` is the byte ``b`` (0‥255), then ``<bos>`` 256, ``<eos>`` 257, ``<pad>`` 258.

A Hugging Face fast tokenizer (a byte-level BPE with no merges), so the entropy model is a plain
checkpoint folder: :func:`explorer.load_model` loads it like any other model, and its tokens decode
back to text (bytes of a multi-byte character decode to the character once all are there).
"""
from __future__ import annotations

from typing import Any

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
BOS_ID, EOS_ID, PAD_ID = 256, 257, 258
VOCAB_SIZE = 259


def _byte_chars() -> list[str]:
    """The printable stand-in of each byte used by byte-level BPE (GPT-2's table)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def build_byte_tokenizer() -> Any:
    """The byte tokenizer (``transformers.PreTrainedTokenizerFast``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: b for b, c in enumerate(_byte_chars())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([BOS, EOS, PAD])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    return fast


def is_byte_tokenizer(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is this module's (every byte one token, ids = byte values)."""
    try:
        return len(tokenizer) == VOCAB_SIZE and tokenizer.convert_tokens_to_ids(BOS) == BOS_ID and \
            tokenizer("é", add_special_tokens=False)["input_ids"] == list("é".encode())
    except Exception:  # noqa: BLE001 — any other tokenizer
        return False
