"""Device and dtype picking: the one place that decides where a model runs and in what precision.

A leaf module (torch and the error types only); model loading and every trainer call it.
"""
from __future__ import annotations

import torch

from .errors import InputError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; anything else as torch reads it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from e


def pick_dtype(dtype: str | torch.dtype, device: str | torch.device) -> torch.dtype:
    """``"auto"``: bf16 (or fp16) on CUDA, fp32 on CPU; else one of :data:`DTYPES` or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if str(device).startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return DTYPES[dtype]
    except (KeyError, TypeError):
        raise InputError(f"dtype must be 'auto', 'float32', 'float16' or 'bfloat16', got {dtype!r}.") from None
