"""A training run's checkpoint on disk: ``RUN_DIR/latest`` and ``RUN_DIR/log.jsonl``.

``latest`` holds the recipe's model files, ``trainer_state.json`` (step, epoch, losses, the
recipe's settings and state) and ``optimizer.pt`` (optimizer, schedule and RNG states: tensors and
plain containers only, read back with ``torch.load(weights_only=True)``, which runs no code). It is
written as a new folder and swapped in (:func:`explorer.io.atomic_dir`), so an interruption never
leaves half a checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import SaveFileError
from ..io import atomic_dir, recover_dir

STATE_FILE = "trainer_state.json"
BLOB_FILE = "optimizer.pt"


def save_checkpoint(run_dir: Path, write_model: Callable[[Path], None], *, blob: dict[str, Any],
                    state: dict[str, Any], log: dict[str, Any]) -> Path:
    """Write ``run_dir/latest`` (``write_model(folder)`` writes the model's files) and append
    ``log`` to ``log.jsonl``."""
    latest = run_dir / "latest"
    with atomic_dir(latest) as tmp:
        write_model(tmp)
        torch.save(blob, tmp / BLOB_FILE)
        (tmp / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    append_log(run_dir, log)
    return latest


def append_log(run_dir: Path, record: dict[str, Any]) -> None:
    """One JSON line in ``run_dir/log.jsonl``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def load_pretrained(src: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a Hugging Face checkpoint folder in float32 (a run's ``latest`` or a
    base to start from); :class:`SaveFileError` naming the fix if it is not one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return (AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32), AutoTokenizer.from_pretrained(src))
    except (OSError, ValueError) as e:
        raise SaveFileError(f"cannot load a checkpoint from {src} ({e}); delete it to start over, or point at "
                            "a folder saved by save_pretrained.") from e


def has_checkpoint(latest: Path) -> bool:
    """Whether ``latest`` holds a checkpoint (after putting back one a killed save left aside)."""
    return (recover_dir(latest) / STATE_FILE).is_file()


def read_checkpoint(latest: Path, fmt: str, device: torch.device | str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainer_state, optimizer blob) of ``latest``; :class:`SaveFileError` for anything incomplete
    or of another format."""
    try:
        state = json.loads((latest / STATE_FILE).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format") != fmt:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise KeyError(f"format {got!r}, expected {fmt!r}")
        blob = torch.load(latest / BLOB_FILE, weights_only=True, map_location=device)
    except Exception as e:  # truncated JSON, a corrupt or pickled optimizer.pt …
        raise SaveFileError(f"{latest} is not a complete trainer checkpoint ({e!r}); delete it to start over.") from e
    return state, blob
