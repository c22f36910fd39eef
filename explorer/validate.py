"""One place per kind of argument: whole numbers in a range (``k``, counts, widths), finite numbers
(temperatures, thresholds, probabilities). Each check raises :class:`~explorer.errors.InputError`
naming the argument, what it must be, and what it got — before any model runs. Text, chat messages
and token ids are checked by :func:`explorer.protocol.encode_input` and :func:`explorer.protocol.check_text`;
vectors by the probes (:class:`explorer.probes.TokenProbe`)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InputError


def whole(value: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int if it is a whole number (not a bool) within [lo, hi]."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if ok and (lo is None or value >= lo) and (hi is None or value <= hi):
        return int(value)
    span = f" from {lo} to {hi}" if lo is not None and hi is not None else f" >= {lo}" if lo is not None else \
        f" <= {hi}" if hi is not None else ""
    raise InputError(f"{name} must be a whole number{span}, got {value!r}.")


def finite(value: Any, name: str, lo: float | None = None, hi: float | None = None, *, strict_lo: bool = False) -> float:
    """``value`` as a float if it is a finite number within [lo, hi] (``strict_lo``: above ``lo``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and \
        math.isfinite(float(value))
    if ok:
        v = float(value)
        if (lo is None or (v > lo if strict_lo else v >= lo)) and (hi is None or v <= hi):
            return v
    bound = (f" {'>' if strict_lo else '>='} {lo}" if lo is not None else "") + (f" and <= {hi}" if hi is not None else "")
    raise InputError(f"{name} must be a finite number{bound}, got {value!r}.")
