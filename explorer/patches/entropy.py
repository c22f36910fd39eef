"""Next-byte entropies of any text under a byte-level language model.

For every byte ``x_t`` of the text's UTF-8 encoding: ``H(x_t)``, the entropy (in nats, as the BLT
reference code computes it) of the model's distribution over the byte at ``t`` given the bytes
before it; ``bits``, −log₂ of the probability it gave the actual byte; and the last layer's hidden
state (after the final norm) at ``t``. The context starts afresh at every line (BLT resets the
entropy model at newlines): each line is read as ``<bos>`` + its bytes, so the first byte of a line
is predicted from ``<bos>`` alone. A line longer than the model's window is read in windows that
overlap by half, each byte scored once with at least half a window of context.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .tokenizer import BOS_ID, is_byte_tokenizer


@dataclass(frozen=True)
class ByteEntropies:
    """The per-byte readings of one text (arrays of length ``len(data)``)."""

    text: str
    data: bytes
    entropy: np.ndarray            # nats
    bits: np.ndarray               # −log2 p(actual byte)
    hidden: np.ndarray | None      # (n, d) or None
    logits: np.ndarray | None      # (n, vocab) next-byte logits at each byte's position (predicting the byte after it)

    @property
    def bits_per_byte(self) -> float:
        return float(self.bits.mean()) if len(self.bits) else float("nan")


def _lines(data: bytes, reset: bool) -> list[tuple[int, int]]:
    if not reset:
        return [(0, len(data))]
    out, start = [], 0
    for i, b in enumerate(data):
        if b == 10:
            out.append((start, i + 1))
            start = i + 1
    if start < len(data):
        out.append((start, len(data)))
    return out


@torch.inference_mode()
def byte_entropies(model: Any, text: str, *, window: int | None = None, reset_at_newline: bool = True,
                   hidden: bool = False, logits: bool = False, batch_size: int = 16) -> ByteEntropies:
    """Entropy, bits and (optionally) hidden states and next-byte logits of every byte of ``text``
    (see the module docs). ``model``: an :class:`explorer.Model` with the byte tokenizer."""
    if not isinstance(text, str):
        raise InputError(f"pass text as a str, got {type(text).__name__}.")
    tok = getattr(model, "tokenizer", None)
    if tok is None or not is_byte_tokenizer(tok):
        raise InputError("byte_entropies needs the byte-level entropy model: "
                         "explorer.load_model('byte-entropy') (or a checkpoint of `latent-explorer train bytes`).")
    hf = model.hf
    W = int(window or getattr(hf.config, "max_position_embeddings", 512))
    if W < 4:
        raise InputError(f"window must be at least 4 bytes, got {W}.")
    data = text.encode("utf-8")
    n = len(data)
    ent, bits = np.zeros(n, np.float32), np.zeros(n, np.float32)
    hid = np.zeros((n, hf.config.hidden_size), np.float32) if hidden else None
    lg = np.zeros((n, hf.config.vocab_size), np.float32) if logits else None
    # pieces: (input ids, first byte index scored, number scored, offset of that byte in the input)
    pieces: list[tuple[list[int], int, int, int]] = []
    for a, b in _lines(data, reset_at_newline):
        if b - a <= W - 1:
            pieces.append(([BOS_ID, *data[a:b]], a, b - a, 1))
            continue
        pieces.append(([BOS_ID, *data[a:a + W - 1]], a, W - 1, 1))
        s, half = a + W - 1, W // 2
        while s < b:                       # later windows: half a window of context, then up to W - half new bytes
            m = min(W - half, b - s)
            pieces.append((list(data[s - half:s + m]), s, m, half))
            s += m
    dev = next(hf.parameters()).device
    hf.eval()
    for i in range(0, len(pieces), batch_size):
        chunk = pieces[i:i + batch_size]
        T = max(len(p[0]) for p in chunk)
        ids = torch.full((len(chunk), T), int(tok.pad_token_id), dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for r, (x, *_rest) in enumerate(chunk):
            ids[r, :len(x)] = torch.tensor(x)
            mask[r, :len(x)] = 1
        out = hf(input_ids=ids.to(dev), attention_mask=mask.to(dev), output_hidden_states=hidden)
        logp = out.logits.float().log_softmax(-1)
        H = -(logp.exp() * logp).sum(-1)
        for r, (x, first, m, off) in enumerate(chunk):
            # the byte at input position off + j is predicted at position off + j - 1
            pred = slice(off - 1, off - 1 + m)
            ent[first:first + m] = H[r, pred].cpu().numpy()
            actual = ids[r, off:off + m].to(dev)
            bits[first:first + m] = (-logp[r, pred].gather(-1, actual[:, None])[:, 0] / np.log(2)).cpu().numpy()
            here = slice(off, off + m)     # each byte's own position
            if hid is not None:
                hid[first:first + m] = out.hidden_states[-1][r, here].float().cpu().numpy()
            if lg is not None:
                lg[first:first + m] = out.logits[r, here].float().cpu().numpy()
    return ByteEntropies(text, data, ent, bits, hid, lg)
