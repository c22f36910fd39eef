"""Where the explorer keeps things on disk: the cache root and the folder of shipped models.

A leaf module (it imports nothing of the explorer): the model registry, projections, converted
checkpoints and the trainers all take their paths from here.
"""
from __future__ import annotations

import os
from pathlib import Path

#: models trained and shipped by the project: one Hugging Face folder each, plus provenance.json
SHIPPED_DIR = Path(__file__).resolve().parent / "models" / "shipped"


def cache_dir() -> Path:
    """Where converted checkpoints and fitted projections live (``$LATENT_EXPLORER_CACHE``,
    default ``~/.cache/latent-explorer``)."""
    return Path(os.environ.get("LATENT_EXPLORER_CACHE", Path.home() / ".cache" / "latent-explorer")).expanduser()
