"""Command-line glue shared by the ProsQA trainers: one flag per field of a method's config dataclass.

``PROG RUN_DIR --train train.json [--generate N] [--valid valid.json] [--base FOLDER] [--<field> ...]``;
errors print one line and exit 2; Ctrl-C leaves a checkpoint and says how to resume.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Callable

from ..errors import ExplorerError, InputError


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


def add_config_flags(ap: argparse.ArgumentParser, config_cls: type) -> None:
    """One ``--field-name`` flag per field of ``config_cls``, typed from its default."""
    for f in fields(config_cls):
        ap.add_argument("--" + f.name.replace("_", "-"), type=_arg_type(f), default=f.default)


def training_main(argv: list[str] | None, *, prog: str, description: str, config_cls: type,
                  train: Callable[..., Any], eval_limit: int, done: Callable[[Any], str]) -> int:
    """Parse the flags, generate the training file if asked, train (or resume), print ``done(state)``."""
    from ..tasks.prosqa.generate import generate, load, write

    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("run_dir")
    ap.add_argument("--train", help="training JSON (Coconut format); with --generate N it is written first")
    ap.add_argument("--generate", type=int, default=0, help="generate N training problems (seeded) into --train")
    ap.add_argument("--valid", help="evaluation JSON, evaluated after each epoch")
    ap.add_argument("--eval-limit", type=int, default=eval_limit)
    ap.add_argument("--base", help="start from this checkpoint folder's weights (a fresh optimizer and step count): "
                                   "a curriculum stage, e.g. RUN_DIR/latest of a run on easier problems")
    add_config_flags(ap, config_cls)
    args = ap.parse_args(argv)

    def go() -> Any:
        cfg = config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})
        if not args.train:
            raise InputError("pass --train PATH (and --generate N to create it).")
        if args.generate and not Path(args.train).is_file():
            write(generate(args.generate, seed=cfg.seed + 1), args.train)
        return train(load(args.train), args.run_dir, cfg, eval_data=load(args.valid) if args.valid else None,
                     eval_limit=args.eval_limit, base=args.base)

    return run_training(prog, args.run_dir, go, done)


def run_training(prog: str, run_dir: str | Path, go: Callable[[], Any], done: Callable[[Any], str]) -> int:
    """Run ``go()`` (a training run) as a command: a typed error prints one line and exits 2;
    Ctrl-C says where the checkpoint is and exits 130; otherwise print ``done(state)``."""
    try:
        state = go()
    except ExplorerError as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; checkpoint saved in {Path(run_dir) / 'latest'} (run the same command to resume)",
              file=sys.stderr)
        return 130
    print(done(state))
    return 0
