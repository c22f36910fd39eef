"""Loading a model by name (``explorer.load_model``): the name, the checkpoint, and the wrapper that fits it.

This module sits above both wrappers. It resolves the name (:func:`explorer.models.registry.resolve`:
a registered name, a local checkpoint folder or a Hub id), reads the checkpoint
(:mod:`explorer.models.load`) on the device and in the dtype :mod:`explorer.runtime` picks, and wraps
it in the class that :func:`checkpoint_kinds` names for its ``config.model_type``: the
recurrent-depth types in :class:`explorer.recurrent.RecurrentModel` (Huginn-0125's weights read by
:func:`explorer.recurrent.model.load_huginn`), every other causal LM in :class:`explorer.Model`.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import torch

from .model import Model
from .models import registry
from .models.load import Loader, folder_model_type, load_folder, load_from_hub
from .runtime import pick_device, pick_dtype


class Kind(NamedTuple):
    """How to read and wrap one kind of checkpoint."""

    wrapper: type                 # the explorer class around the HF model
    loader: Loader | None = None  # reads the folder itself; None: AutoModelForCausalLM.from_pretrained


#: every ``model_type`` not in :func:`checkpoint_kinds`: a plain causal LM
DEFAULT_KIND = Kind(Model)


def checkpoint_kinds() -> dict[str, Kind]:
    """``model_type`` → :class:`Kind` for the checkpoints that are not plain causal LMs.

    The recurrent package is imported here, not at the top, so that ``import explorer`` stays
    light; importing it also registers its model types with the transformers Auto classes."""
    from .recurrent.engine import RecurrentModel
    from .recurrent.model import HUGINN_MODEL_TYPE, MODEL_TYPE, load_huginn

    return {MODEL_TYPE: Kind(RecurrentModel), HUGINN_MODEL_TYPE: Kind(RecurrentModel, load_huginn)}


def load_model(name: str | os.PathLike | None = None, device: str = "auto", dtype: str | torch.dtype = "auto",
               *, trust_remote_code: bool = False) -> Any:
    """Load a language model for exploring: an :class:`explorer.Model`, or an
    :class:`explorer.recurrent.RecurrentModel` for a recurrent-depth checkpoint.

    ``name``: ``None`` for the offline default (SmolLM2-135M-Instruct), a registered name
    (``explorer.models.registered()``), a local checkpoint folder, or a Hub id (``org/name``).
    ``device``: ``"auto"`` (CUDA when present, else CPU), or any torch device; with several GPUs
    and ``"auto"`` the model is split across them (accelerate's ``device_map="auto"``).
    ``trust_remote_code`` runs code shipped with a checkpoint: only when you ask for it.
    """
    kinds = checkpoint_kinds()
    kind, where = registry.resolve(name)
    dev = pick_device(device)
    options: dict[str, Any] = {"device": dev, "dtype": pick_dtype(dtype, dev), "trust_remote_code": trust_remote_code,
                               "device_map": "auto" if device == "auto" and torch.cuda.device_count() > 1 else None}
    if kind == "hub":
        hf, tok = load_from_hub(str(where), **options)
    else:
        hf, tok = load_folder(where, loader=kinds.get(folder_model_type(where), DEFAULT_KIND).loader, **options)
    label = registry.lookup(str(name or registry.DEFAULT_MODEL)).name if kind == "registry" else str(name)  # type: ignore[union-attr]
    wrapper = kinds.get(getattr(hf.config, "model_type", None), DEFAULT_KIND).wrapper
    return wrapper(hf, tok, name=label)


__all__ = ["load_model", "checkpoint_kinds", "Kind", "DEFAULT_KIND"]
