"""Resumable training runs, shared by every trainer (Coconut, recurrent depth).

A run lives in ``RUN_DIR``: ``RUN_DIR/latest`` is a Hugging Face folder (safetensors weights,
tokenizer, config) plus ``trainer_state.json`` and ``optimizer.pt`` (read back with
``weights_only=True``), swapped in atomically so an interruption never leaves half a checkpoint;
``RUN_DIR/log.jsonl`` gets one line per checkpoint. :func:`training_main` is the command-line
glue: one flag per field of a trainer's config dataclass, ``--train``/``--generate``/``--valid``.
:func:`ship_checkpoint` copies a run's weights into the package as a registered model.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .errors import ExplorerError, InputError, SaveFileError
from .io import atomic_dir


def pick_device(device: str) -> torch.device:
    """``"auto"``: CUDA when present, else CPU; anything else as torch reads it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_hf(src: str | Path, latest: Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a checkpoint folder, float32; a clear error if it is not one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return (AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32), AutoTokenizer.from_pretrained(src))
    except (OSError, ValueError) as e:
        raise SaveFileError(f"cannot load a checkpoint from {src} ({e}); delete {latest} to start over, or point at "
                            "a folder saved by save_pretrained.") from e


class RunTrainer:
    """What every trainer does first: check its config and data, set threads and device, and get
    its model — from ``run_dir/latest`` when resuming, else from ``base`` (a curriculum stage),
    else from ``build()``."""

    def _open(self, train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: Any, *,
              base: str | Path | None, eval_data: Sequence[dict[str, Any]] | None, eval_limit: int,
              progress: bool, build: Callable[[], tuple[Any, Any]]) -> bool:
        """Set the run's attributes and ``hf``/``tokenizer``; returns whether the run resumes."""
        cfg.check()
        if not train_data:
            raise InputError("no training problems; generate some with explorer.tasks.prosqa.generate().")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.latest = self.run_dir / "latest"
        self.data = list(train_data)
        self.eval_data, self.eval_limit, self.progress = eval_data, eval_limit, progress
        self.device = pick_device(cfg.device)
        resume = (self.latest / "trainer_state.json").is_file()
        src = self.latest if resume else base
        self.hf, self.tokenizer = load_hf(src, self.latest) if src is not None else build()
        return resume


def save_checkpoint(run_dir: Path, hf: Any, tokenizer: Any, *, blob: dict[str, Any], state: dict[str, Any],
                    log: dict[str, Any]) -> Path:
    """Write ``run_dir/latest`` (a new folder swapped in) and append ``log`` to ``log.jsonl``."""
    latest = run_dir / "latest"
    with atomic_dir(latest) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        torch.save(blob, tmp / "optimizer.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(log) + "\n")
    return latest


def total_steps(cfg: Any, n_examples: int) -> int:
    """Optimizer steps of a whole run: ``num_epochs`` epochs of ``ceil(n / batch_size)`` batches,
    capped by ``max_steps``."""
    n = cfg.num_epochs * -(-n_examples // cfg.batch_size)
    return min(n, cfg.max_steps) if cfg.max_steps is not None else n


def run_epochs(trainer: Any, *, desc: str, step: Callable[[Any], tuple[float, list[Any], dict[str, Any]]],
               begin_epoch: Callable[[int, Any], None] | None = None) -> Any:
    """The resumable loop every trainer shares: epochs of ``trainer.epoch_batches(epoch)``, one
    ``step(batch) -> (loss, extra values to log, progress-bar fields)`` per optimizer step, a
    checkpoint every ``cfg.save_every`` steps, at the end and on Ctrl-C, an evaluation after each
    epoch when there is ``eval_data``. ``trainer.state`` counts where it is, so a resumed run goes
    on from the same batch. ``begin_epoch(epoch, bar)`` runs first in every epoch (e.g. a new
    curriculum stage)."""
    from tqdm.auto import tqdm

    st, cfg = trainer.state, trainer.cfg
    total = total_steps(cfg, len(trainer.data))
    bar = tqdm(total=total, initial=min(st.global_step, total), disable=not trainer.progress, unit="step",
               desc=desc, dynamic_ncols=True)
    t0 = time.monotonic() - st.elapsed_s
    try:
        while st.epoch < cfg.num_epochs and st.global_step < total:
            if begin_epoch is not None:
                begin_epoch(st.epoch, bar)
            batches = trainer.epoch_batches(st.epoch)
            while st.batch_in_epoch < len(batches) and st.global_step < total:
                loss, extra, postfix = step(batches[st.batch_in_epoch])
                st.batch_in_epoch += 1
                st.global_step += 1
                st.losses.append([st.global_step, loss, *extra])
                st.elapsed_s = time.monotonic() - t0
                bar.update()
                bar.set_postfix(loss=f"{loss:.3f}", epoch=st.epoch, **postfix)
                if st.global_step % cfg.save_every == 0:
                    trainer.save()
            if st.batch_in_epoch >= len(batches):
                st.epoch += 1
                st.batch_in_epoch = 0
                if trainer.eval_data:
                    trainer._evaluate()
        trainer.save()
    except KeyboardInterrupt:
        trainer.save()
        bar.close()
        raise
    bar.close()
    return st


def read_checkpoint(latest: Path, fmt: str, device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainer_state, optimizer blob) of ``latest``; :class:`SaveFileError` for anything incomplete."""
    try:
        state = json.loads((latest / "trainer_state.json").read_text(encoding="utf-8"))
        if state.get("format") != fmt:
            raise KeyError(f"format {state.get('format')!r}, expected {fmt!r}")
        blob = torch.load(latest / "optimizer.pt", weights_only=True, map_location=device)
    except Exception as e:  # truncated JSON, a corrupt optimizer.pt (pickle/struct errors) …
        raise SaveFileError(f"{latest} is not a complete trainer checkpoint ({e!r}); delete it to start over.") from e
    return state, blob


def check_same_run(latest: Path, saved: Any, cfg: Any, keys: Sequence[str], n_saved: Any, n_now: int) -> None:
    """Refuse to resume with other settings or other data than the run was started with."""
    diff = [k for k in keys if getattr(saved, k) != getattr(cfg, k)]
    if diff:
        raise InputError(f"{latest} was trained with other settings "
                         f"({', '.join(f'{k}={getattr(saved, k)!r}' for k in diff)}); resume with the same settings, "
                         "or use another run_dir.")
    if n_saved != n_now:
        raise InputError(f"{latest} was trained on {n_saved} problems, not {n_now}; resume with the same data, or use "
                         "another run_dir.")


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
    """A config dataclass from a dict, ignoring keys it does not know (older or newer runs)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _arg_type(f: Field) -> Callable[[str], Any]:
    if isinstance(f.default, bool):
        return lambda s: s.lower() in ("1", "true", "yes", "on")
    if f.default is None or f.default is MISSING:  # "int | None" and friends: read the annotation
        t = str(f.type)
        return float if "float" in t else int if "int" in t else str
    return type(f.default)


def training_main(argv: list[str] | None, *, prog: str, description: str, config_cls: type,
                  train: Callable[..., Any], eval_limit: int, done: Callable[[Any], str]) -> int:
    """``PROG RUN_DIR --train train.json [--generate N] [--valid valid.json] [--base FOLDER] [--<config field> ...]``."""
    from .tasks.prosqa.generate import generate, load, write

    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("run_dir")
    ap.add_argument("--train", help="training JSON (Coconut format); with --generate N it is written first")
    ap.add_argument("--generate", type=int, default=0, help="generate N training problems (seeded) into --train")
    ap.add_argument("--valid", help="evaluation JSON, evaluated after each epoch")
    ap.add_argument("--eval-limit", type=int, default=eval_limit)
    ap.add_argument("--base", help="start from this checkpoint folder's weights (a fresh optimizer and step count): "
                                   "a curriculum stage, e.g. RUN_DIR/latest of a run on easier problems")
    for f in fields(config_cls):
        ap.add_argument("--" + f.name.replace("_", "-"), type=_arg_type(f), default=f.default)
    args = ap.parse_args(argv)
    cfg = config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})
    try:
        if not args.train:
            raise InputError("pass --train PATH (and --generate N to create it).")
        if args.generate and not Path(args.train).is_file():
            write(generate(args.generate, seed=cfg.seed + 1), args.train)
        state = train(load(args.train), args.run_dir, cfg, eval_data=load(args.valid) if args.valid else None,
                      eval_limit=args.eval_limit, base=args.base)
    except ExplorerError as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; checkpoint saved in {Path(args.run_dir) / 'latest'} (run the same command to resume)",
              file=sys.stderr)
        return 130
    print(done(state))
    return 0


SHIP_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def ship_checkpoint(src: str | Path, name: str, *, description: str, provenance: dict[str, Any],
                    dest_root: str | Path | None = None) -> Path:
    """Copy the model files of checkpoint folder ``src`` (no optimizer state) into
    ``explorer/models/shipped/<name>`` with a ``provenance.json`` (``description``, the command
    that reproduces it, its cost and measured results), swapped in atomically. At import the
    registry registers every such folder under its name (``explorer.load_model(name)``)."""
    from .paths import SHIPPED_DIR

    src = Path(src)
    if not (src / "config.json").is_file() or not (src / "model.safetensors").is_file():
        raise SaveFileError(f"{src} is not a checkpoint folder (config.json and model.safetensors); "
                            "pass RUN_DIR/latest of a training run.")
    dest = (Path(dest_root) if dest_root is not None else SHIPPED_DIR) / name
    with atomic_dir(dest) as tmp:
        for f in SHIP_FILES:
            if (src / f).is_file():
                shutil.copyfile(src / f, tmp / f)
        (tmp / "provenance.json").write_text(json.dumps({"name": name, "description": description, **provenance},
                                                        indent=1) + "\n", encoding="utf-8")
    return dest
