"""Where patches start: BLT's entropy rules over per-byte entropies ``H(x_t)``.

* ``"global"`` — a patch starts at byte t when ``H(x_t) > θ`` (the paper's global constraint).
* ``"monotonic"`` — a patch starts at byte t when ``H(x_t) − H(x_{t−1}) > θ`` (the approximate
  monotonic constraint: a rise in entropy, not a high one).

The first byte always starts a patch. Positions follow the BLT reference code
(``bytelatent/data/patcher.py``) and transformers' ``BltPatcher``: they read entropies over
``<bos>`` + bytes, where the entropy at position i is the model's uncertainty about token i + 1;
:func:`patch_lengths` takes entropies in that layout and returns the same patch lengths (the
``<bos>`` patch first, and a last patch of length 0 when the byte after the text would start one).
Two differences from the reference, both about the monotonic rule: the reference also always starts
a patch at the second byte (its mask starts True), and it has no maximum length for that rule; here
the second byte is judged like any other, and ``max_len`` splits long patches for both rules.

:func:`starts` works on the bytes of a text (what the widgets and trajectories use);
:func:`calibrate` finds the threshold that gives a target mean patch size (the paper's 4.5 bytes).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError
from ..validate import finite

RULES = ("global", "monotonic")


def _check(rule: str, max_len: int | None, threshold: float = 0.0) -> None:
    finite(threshold, "the threshold (nats)")
    if rule not in RULES:
        raise InputError(f"rule must be one of {RULES}, got {rule!r}.")
    if max_len is not None and max_len < 1:
        raise InputError(f"max_len must be >= 1 (or None), got {max_len}.")


def starts(entropy: Sequence[float], threshold: float, rule: str = "global", *, max_len: int | None = None) -> np.ndarray:
    """Boolean mask over the bytes: True where a patch starts (``entropy[t]`` = H(x_t))."""
    _check(rule, max_len, threshold)
    H = np.asarray(entropy, dtype=np.float64)
    n = len(H)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if rule == "global":
        mask[1:] = H[1:] > threshold
    else:
        mask[1:] = (H[1:] - H[:-1]) > threshold
    mask[0] = True
    if max_len is not None:
        run = 0
        for t in range(n):
            run = 1 if mask[t] else run + 1
            if run > max_len:
                mask[t], run = True, 1
    return mask


def lengths_of(mask: np.ndarray) -> np.ndarray:
    """Patch lengths from a start mask (the first entry must be True)."""
    idx = np.flatnonzero(mask)
    return np.diff(np.append(idx, len(mask))) if len(idx) else np.zeros(0, dtype=np.int64)


def patch_lengths(entropies: Sequence[float], threshold: float, *, max_len: int | None = None) -> list[int]:
    """The global rule's patch lengths over ``<bos>`` + bytes, laid out as the BLT reference and
    transformers' ``BltPatcher.patch_lengths_from_entropies`` (+ ``process_patch_lengths``) lay
    them out: ``entropies[i]`` is the entropy at position i (about token i + 1); tokens 0 and 1 start
    patches; token i + 1 starts one when ``entropies[i] > threshold`` (for i ≥ 1, including the
    token after the last, which closes the text with a patch of length 0)."""
    _check("global", max_len, threshold)
    e = np.asarray(entropies, dtype=np.float64)
    T = len(e)
    if T < 2:
        raise InputError("entropies over <bos> and at least one byte are needed.")
    begin = [0, 1] + [i + 1 for i in range(1, T) if e[i] > threshold]
    ends = [b - 1 for b in begin[1:]] + [T - 1]
    out = [end - b + 1 for b, end in zip(begin, ends)]
    if max_len is None:
        return out
    split = []
    for n in out:
        while n > max_len:
            split.append(max_len)
            n -= max_len
        if n:
            split.append(n)
    return split


def calibrate(entropies: Sequence[Sequence[float]] | Sequence[float], target: float = 4.5, rule: str = "global", *,
              max_len: int | None = None, iters: int = 60) -> float:
    """The threshold at which the mean patch size (bytes per patch, over every text given) is
    closest to ``target``: a bisection, since patches only get longer as the threshold rises."""
    _check(rule, max_len)
    texts = [np.asarray(entropies, dtype=np.float64)] if np.ndim(entropies[0]) == 0 else \
        [np.asarray(e, dtype=np.float64) for e in entropies]  # type: ignore[index]
    n_bytes = sum(len(e) for e in texts)
    if n_bytes == 0 or target < 1:
        raise InputError(f"calibrate needs entropies of some text and a target >= 1 byte per patch (got {target}).")

    def size(th: float) -> float:
        return n_bytes / sum(int(starts(e, th, rule, max_len=max_len).sum()) for e in texts if len(e))

    vals = np.concatenate([e if rule == "global" else np.diff(e) for e in texts if len(e) > 1] or [np.zeros(1)])
    lo, hi = float(vals.min()) - 1e-6, float(vals.max()) + 1e-6
    if size(hi) < target:
        return hi   # even one patch per text (or max_len) is shorter than the target
    for _ in range(iters):
        mid = (lo + hi) / 2
        if size(mid) < target:
            lo = mid
        else:
            hi = mid
    return hi if abs(size(hi) - target) <= abs(size(lo) - target) else lo
