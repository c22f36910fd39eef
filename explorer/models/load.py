"""Reading a checkpoint into a Hugging Face model and its tokenizer: a local folder or a Hub id.

The one place that calls ``from_pretrained`` for a model to explore: :func:`explorer.load_model`
(:mod:`explorer.loading`) and :func:`explorer.recurrent.load_recurrent` both come here. It knows
nothing of the explorer's wrappers; a checkpoint kind that needs its own reader (Huginn-0125) is
passed in as ``loader``.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError

from ..errors import ModelNotFoundError, OfflineError, SaveFileError

#: reads a checkpoint folder itself: ``loader(folder, device=..., dtype=..., trust_remote_code=...)``
Loader = Callable[..., torch.nn.Module]


def folder_model_type(folder: str | os.PathLike) -> str | None:
    """The ``model_type`` in a checkpoint folder's ``config.json`` (None when there is none)."""
    cfg = Path(folder) / "config.json"
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _place(hf: torch.nn.Module, device: torch.device, device_map: str | None) -> torch.nn.Module:
    return (hf if device_map else hf.to(device)).eval()


def load_folder(folder: str | os.PathLike, *, device: torch.device, dtype: torch.dtype, device_map: str | None = None,
                trust_remote_code: bool = False, loader: Loader | None = None,
                need_tokenizer: bool = True) -> tuple[torch.nn.Module, Any]:
    """(model, tokenizer) from a local checkpoint folder: ``AutoModelForCausalLM`` (or ``loader``)
    on ``device`` (or split by ``device_map``) in ``dtype``, in eval mode. Without
    ``need_tokenizer`` a folder without ``tokenizer_config.json`` gives tokenizer ``None``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    try:
        if loader is not None:
            hf = loader(folder, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
            if device_map:
                kwargs["device_map"] = device_map
            hf = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        tok = (AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
               if need_tokenizer or (folder / "tokenizer_config.json").is_file() else None)
    except pickle.UnpicklingError:   # a pickled weights file that holds more than tensors: never run
        raise SaveFileError(f"{folder} holds pickled weights that are not plain tensors; they were not loaded (a "
                            "pickle can run code). Convert the checkpoint to safetensors where you trust it "
                            "(model.save_pretrained(..., safe_serialization=True)), or use another folder.") from None
    except SafetensorError as e:
        raise SaveFileError(f"{folder}: the weights file is truncated or corrupt ({e}); copy or save the "
                            "checkpoint again.") from None
    except (OSError, ValueError) as e:
        raise ModelNotFoundError(f"could not load a causal LM from {folder} ({e}); check that the folder "
                                 "holds config.json, weights and a tokenizer.") from e
    return _place(hf, device, None if loader is not None else device_map), tok


def hub_offline() -> bool:
    """Whether the Hugging Face Hub is switched off (``HF_HUB_OFFLINE``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False


def load_from_hub(hub_id: str, *, device: torch.device, dtype: torch.dtype, device_map: str | None = None,
                  trust_remote_code: bool = False) -> tuple[torch.nn.Module, Any]:
    """(model, tokenizer) of a Hub id: the local HF cache first, then the network (fails fast,
    never hangs); placed and in eval mode like :func:`load_folder`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if device_map:
        kwargs["device_map"] = device_map
    try:
        return (_place(AutoModelForCausalLM.from_pretrained(hub_id, local_files_only=True, **kwargs), device, device_map),
                AutoTokenizer.from_pretrained(hub_id, local_files_only=True))
    except OSError:
        if hub_offline():
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
    return (_place(AutoModelForCausalLM.from_pretrained(hub_id, **kwargs), device, device_map),
            AutoTokenizer.from_pretrained(hub_id))


__all__ = ["folder_model_type", "load_folder", "load_from_hub", "hub_offline", "Loader"]
