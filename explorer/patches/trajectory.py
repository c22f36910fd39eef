"""Patches as a trajectory: one step per patch, so the map and the stepper show byte patches like
any other trajectory.

A step's vector is the entropy model's last-layer hidden state (after the final norm) at the
patch's last byte (``vector="last"``, the default: causally it has read the whole patch, and what
it predicts is what comes after the patch), or the mean over the patch's bytes (``"mean"``, closer
to how BLT's local encoder pools a patch). Its label is the patch's text; its scalars the patch's
length in bytes and the entropy of its first byte (what opened it) and its mean; its probes the
most likely next bytes (``output``) and, with ``strings`` > 0, the most likely next strings
(``strings``: greedy continuations of the top next bytes, scored by their probability).

Patch starts inside a multi-byte UTF-8 character move back to the character's first byte, so every
patch holds whole characters (``whole_chars=False`` keeps the raw byte boundaries).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..trajectory import Step, TokenTable, Trajectory
from .entropy import ByteEntropies, byte_entropies
from .patching import calibrate, lengths_of, starts
from .tokenizer import BOS_ID

VECTORS = ("last", "mean")


@dataclass(frozen=True)
class Patches:
    """A text cut into patches: ``bounds`` [(start, end) byte offsets], the rule and threshold used,
    and the per-byte readings they came from."""

    readings: ByteEntropies
    bounds: list[tuple[int, int]]
    rule: str
    threshold: float
    max_len: int | None

    @property
    def texts(self) -> list[str]:
        d = self.readings.data
        return [d[a:b].decode("utf-8", errors="replace") for a, b in self.bounds]

    @property
    def bytes_per_patch(self) -> float:
        return len(self.readings.data) / max(1, len(self.bounds))


def char_starts(data: bytes) -> np.ndarray:
    """True at every byte that begins a UTF-8 character (not a continuation byte 10xxxxxx)."""
    a = np.frombuffer(data, dtype=np.uint8)
    return (a & 0xC0) != 0x80


def cut(readings: ByteEntropies, threshold: float | None = None, rule: str = "global", *, target: float = 4.5,
        max_len: int | None = None, whole_chars: bool = True) -> Patches:
    """Cut the text of ``readings`` into patches (``threshold`` None: calibrated to ``target`` bytes
    per patch on this text)."""
    if len(readings.data) == 0:
        raise InputError("the text is empty; there is nothing to patch.")
    th = calibrate(readings.entropy, target, rule, max_len=max_len) if threshold is None else float(threshold)
    mask = starts(readings.entropy, th, rule, max_len=max_len)
    if whole_chars:
        ok = char_starts(readings.data)
        for t in np.flatnonzero(mask & ~ok):
            s = t
            while s > 0 and not ok[s]:
                s -= 1
            mask[t] = False
            mask[s] = True
    idx = np.flatnonzero(mask)
    ends = np.append(idx[1:], len(mask))
    assert lengths_of(mask).sum() == len(mask)
    return Patches(readings, [(int(a), int(b)) for a, b in zip(idx, ends)], rule, th, max_len)


def _show(b: int) -> str:
    return {10: "\\n", 32: " "}.get(b, chr(b) if 32 < b < 127 else f"<{b:02x}>")


@torch.inference_mode()
def _continuations(model: Any, context: list[int], first: list[int], length: int) -> list[tuple[str, float]]:
    hf = model.hf
    dev = next(hf.parameters()).device
    out = []
    lp0 = hf(input_ids=torch.tensor([context], device=dev)).logits[0, -1].float().log_softmax(-1)
    for b in first:
        ids = torch.tensor([context + [b]], device=dev)
        logp, seq = float(lp0[b]), [b]
        for _ in range(length - 1):
            lp = hf(input_ids=ids).logits[0, -1].float().log_softmax(-1)
            nxt = int(lp[:256].argmax())
            logp += float(lp[nxt])
            seq.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]], device=dev)], 1)
        out.append((bytes(seq).decode("utf-8", errors="replace"), float(np.exp(logp))))
    return out


def patch_trajectory(model: Any, text: str, threshold: float | None = None, rule: str = "global", *,
                     target: float = 4.5, max_len: int | None = None, vector: str = "last", k: int = 8,
                     strings: int = 3, string_len: int = 6, whole_chars: bool = True) -> Trajectory:
    """``text`` cut into patches by ``model`` (the byte entropy model) as a :class:`Trajectory`;
    see the module docs. ``meta`` keeps the rule, threshold, bounds and bytes per patch."""
    if vector not in VECTORS:
        raise InputError(f"vector must be one of {VECTORS}, got {vector!r}.")
    readings = byte_entropies(model, text, hidden=True, logits=True)
    p = cut(readings, threshold, rule, target=target, max_len=max_len, whole_chars=whole_chars)
    data, H = readings.data, readings.entropy
    assert readings.hidden is not None and readings.logits is not None
    W = int(getattr(model.hf.config, "max_position_embeddings", 512))
    steps = []
    for i, (a, b) in enumerate(p.bounds):
        vec = readings.hidden[b - 1] if vector == "last" else readings.hidden[a:b].mean(0)
        probs = torch.from_numpy(readings.logits[b - 1]).float().softmax(-1).numpy()
        top = np.argsort(-probs[:256])[:k]
        probes = {"output": TokenTable(tuple(_show(int(t)) for t in top), tuple(int(t) for t in top),
                                       tuple(float(probs[t]) for t in top), "output", "prob")}
        if strings:
            line_start = data.rfind(b"\n", 0, b - 1) + 1 if b > 1 else 0
            ctx = [BOS_ID, *data[max(line_start, b - (W - 1 - string_len)):b]]
            conts = _continuations(model, ctx, [int(t) for t in top[:strings]], string_len)
            probes["strings"] = TokenTable(tuple(s for s, _ in conts), tuple(int(t) for t in top[:strings]),
                                           tuple(q for _, q in conts), "strings", "prob")
        label = data[a:b].decode("utf-8", errors="replace")
        steps.append(Step(f"patch.{i}", label, {f"patch.{i}": np.asarray(vec, np.float32)},
                          {"bytes": float(b - a), "entropy_first": float(H[a]), "entropy_mean": float(H[a:b].mean())},
                          probes, {"start": a, "end": b}))
    return Trajectory(steps, kind="patches", space=getattr(model, "name", "byte-entropy"),
                      title=f"byte patches ({rule}, θ={p.threshold:.3g}, {p.bytes_per_patch:.2f} bytes/patch)",
                      meta={"rule": rule, "threshold": p.threshold, "max_len": max_len, "vector": vector,
                            "bounds": p.bounds, "bytes_per_patch": p.bytes_per_patch})
