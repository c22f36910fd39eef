"""Atomic file writing and safe reading of safetensors files.

A file is written to a temporary file beside it and renamed into place (:func:`atomic_path`); a
folder is written beside it and swapped in (:func:`atomic_dir`): the old folder is moved aside to
``.NAME.old`` first and removed only once the new one is in place, so whichever step fails (or is
killed), one complete folder survives — at ``NAME``, or at ``.NAME.old`` until :func:`recover_dir`
(called by every swap, and by readers such as the trainer) moves it back. Temporary files and
folders that a killed save left behind are removed by the next save of the same path once they are
older than :data:`STALE_SECONDS`.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import SaveFileError


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask alone is racy)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: a temporary file or folder of a save older than this (seconds) belongs to a save that was killed
STALE_SECONDS = 600.0


def _clean_stale(path: Path, *, suffix: str = "") -> None:
    """Remove ``.NAME.*`` temporaries beside ``path`` left by killed saves (not ``.NAME.old``)."""
    import shutil
    import time

    now = time.time()
    for p in path.parent.glob(f".{path.name}.*{suffix}"):
        if p.name == f".{path.name}.old":
            continue
        try:
            if now - p.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        except OSError:
            pass


def recover_dir(path: str | Path) -> Path:
    """If a folder swap died between its two renames (``path`` gone, ``.NAME.old`` present), move
    the surviving folder back to ``path``. Returns ``path``."""
    path = Path(path)
    old = path.parent / f".{path.name}.old"
    if not path.exists() and old.is_dir():
        os.replace(old, path)
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(path, suffix=".tmp")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; if the block succeeds it replaces ``path``
    (the old folder is moved aside first and removed only after the new one is in place; if that
    last rename fails the old folder is put back), otherwise it is removed. Readers never see a
    half-written folder, and a complete one always survives (see the module docs)."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    _clean_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        old = path.parent / f".{path.name}.old"
        if old.exists():           # path exists too (recover_dir ran): .old is a leftover copy
            shutil.rmtree(old)
        moved = path.exists()
        if moved:
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if moved and not path.exists():
                os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str]) -> Path:
    """Save numpy arrays or torch tensors to ``path`` atomically."""
    from safetensors.numpy import save_file

    arrays = {}
    for k, v in tensors.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu()
            v = v.float().numpy() if str(v.dtype) == "torch.bfloat16" else v.numpy()
        arrays[k] = np.ascontiguousarray(v)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=metadata)
    return Path(path)


def read_safetensors(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read every tensor (as numpy) and the metadata; raise SaveFileError for anything unreadable."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SaveFileError(f"{path} does not exist; check the path, or save it first.")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise SaveFileError(f"{path} is not a readable safetensors file ({e}); it may be truncated or "
                            "corrupted: write it again.") from e
    return tensors, meta
