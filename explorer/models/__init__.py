"""Named models: the registry, the offline default, and reading a checkpoint into a Hugging Face model.

``cache_dir`` and ``SHIPPED_DIR`` live in :mod:`explorer.paths`; they are re-exported here for old imports.
"""
from ..paths import SHIPPED_DIR, cache_dir
from .registry import DEFAULT_MODEL, ModelSpec, register, registered, resolve

__all__ = ["DEFAULT_MODEL", "ModelSpec", "SHIPPED_DIR", "cache_dir", "register", "registered", "resolve"]
