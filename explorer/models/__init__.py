"""Named models: the registry, the offline default, and where converted checkpoints are cached."""
from .registry import DEFAULT_MODEL, ModelSpec, cache_dir, register, registered, resolve

__all__ = ["DEFAULT_MODEL", "ModelSpec", "cache_dir", "register", "registered", "resolve"]
