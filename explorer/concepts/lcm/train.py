"""Training the ProsQA Base-LCM (:mod:`.model`) on generated problems: :class:`LCMRecipe` (the
recipe of the one trainer, :mod:`explorer.training`), :func:`train` and ``python -m
explorer.concepts.lcm train`` (:func:`main`).

:func:`train` encodes every sentence of ``n_problems`` generated problems once with MiniLM (cached
as ``run_dir/concepts-N-SEED.npz``, read back with ``allow_pickle=False``), fits the robust
normaliser on them, and regresses each next step's normalised concept (MSE) with AdamW and a
one-cycle schedule, on the CPU. The loop checkpoints into ``run_dir/latest`` every ``save_every``
epochs (the model as ``model.safetensors`` + ``model.json``, the optimizer, schedule and RNG
states in ``optimizer.pt``, read with ``weights_only=True``), on Ctrl-C and when the
``max_minutes`` budget of one call is spent, and resumes from it
exactly; a resume with other settings or data is an :class:`~explorer.errors.InputError`. The
old ``run_dir/checkpoint.pt`` of earlier versions is not read at all. At the end the weights go
to ``out`` (the shipped ``explorer/concepts/weights/prosqa-lcm.*`` by default). The real
validation set is never trained on; evaluation is :mod:`.evaluate`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...io import atomic_path
from ...training import LoopConfig, RecipeDefaults, Trainer, shuffled_batches
from .model import DEFAULT_PATH, BaseLCM, LCMConfig, RobustNormalizer, _sequence, load_lcm, parse_problem

STATE_FORMAT = "latent-explorer.lcm-trainer/1"


@dataclass
class LCMTrainConfig:
    """The Base-LCM's training settings (``max_minutes`` may change between resumed runs)."""

    seed: int = 0
    n_problems: int = 4000
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    max_minutes: float = 20.0     # training-time budget of one call (running it again goes on)
    save_every: int = 1           # epochs between checkpoints


def _batch(parsed: Sequence[dict[str, Any]], table: dict[str, np.ndarray], norm: RobustNormalizer,
           items: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """Whole problems: statements, question, every gold step; targets at the question and at every
    step but the last (``tmask`` marks them)."""
    seqs, tgts = [], []
    for i in items:
        p = parsed[i]
        cand = np.stack([table[s] for s in p["statements"]])
        steps = [table[s] for s in p["steps"]]
        seqs.append(_sequence(norm, cand, table[p["question"]], steps))
        tgts.append(norm.normalize(np.stack(steps)).astype(np.float32))
    L = max(s[0].shape[0] for s in seqs)
    B, D = len(seqs), seqs[0][0].shape[1]
    x = torch.zeros((B, L, D))
    y = torch.zeros((B, L, D))
    tmask = torch.zeros((B, L), dtype=torch.bool)
    types = torch.zeros((B, L), dtype=torch.long)
    sidx = torch.zeros((B, L), dtype=torch.long)
    pad = torch.ones((B, L), dtype=torch.bool)
    for r, ((xs, ts, ss), tg) in enumerate(zip(seqs, tgts)):
        n = xs.shape[0]
        x[r, :n], types[r, :n], sidx[r, :n], pad[r, :n] = xs, ts, ss, False
        q = n - len(tg) - 1                      # the question's position
        y[r, q:q + len(tg)] = torch.from_numpy(tg)
        tmask[r, q:q + len(tg)] = True
    return x, types, sidx, pad, y, tmask


class LCMRecipe(RecipeDefaults):
    """The Base-LCM's next-concept regression as a recipe of the one trainer (:mod:`explorer.training`).

    The problems, their MiniLM concepts and the normaliser are ready once constructed; a batch is
    a list of problem indices (its tensors are built in :meth:`loss`)."""

    name = "base-lcm"
    format = STATE_FORMAT
    resume_keys = ("seed", "n_problems", "epochs", "batch_size", "lr", "data_sha")

    def __init__(self, cfg: LCMTrainConfig, run_dir: str | Path, *, progress: bool = True) -> None:
        from ...tasks.prosqa.generate import generate

        self.cfg, self.progress = cfg, progress
        problems = generate(cfg.n_problems, seed=1000 + cfg.seed)
        self.parsed = [parse_problem(p) for p in problems]
        self.table = _concepts(self.parsed, Path(run_dir) / f"concepts-{cfg.n_problems}-{cfg.seed}.npz", progress)
        self.dim = int(next(iter(self.table.values())).shape[0])
        self.norm = RobustNormalizer.fit(np.stack(list(self.table.values())))
        self.data_sha = hashlib.sha256(json.dumps(self.parsed, sort_keys=True).encode()).hexdigest()[:16]
        self._sum, self._n = 0.0, 0          # this epoch's training MSE so far (checkpointed)

    def settings(self) -> dict[str, Any]:
        return {**asdict(self.cfg), "data_sha": self.data_sha}

    def n_examples(self) -> int:
        return len(self.parsed)

    def build(self, resume: Path | None) -> nn.Module:
        if resume is not None:
            return load_lcm(resume / "model.safetensors")
        return BaseLCM(LCMConfig(dim=self.dim), self.norm)

    def save_model(self, model: nn.Module, folder: Path) -> None:
        model.save(folder / "model.safetensors", extra={"train": asdict(self.cfg)})  # float32: resumes exactly

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        return shuffled_batches(len(self.parsed), self.cfg.batch_size, self.cfg.seed * 7919 + epoch)

    def loss(self, model: nn.Module, batch: list[int], step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        dev = next(model.parameters()).device
        x, types, sidx, pad, y, tmask = (t.to(dev) for t in _batch(self.parsed, self.table, self.norm, batch))
        loss = nn.functional.mse_loss(model(x, types, sidx, pad)[tmask], y[tmask])
        self._sum += float(loss.detach())
        self._n += 1
        return loss, {}

    def evaluate(self, model: nn.Module, epoch: int) -> dict[str, Any] | None:
        """The epoch's mean training MSE (logged; printed when ``progress``)."""
        mse = self._sum / max(self._n, 1)
        self._sum, self._n = 0.0, 0
        if self.progress:
            print(f"epoch {epoch}: mse {mse:.4f}", file=sys.stderr, flush=True)
        return {"train_mse": mse}

    def state_dict(self) -> dict[str, Any]:
        return {"mse_sum": self._sum, "mse_n": self._n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._sum, self._n = float(state.get("mse_sum", 0.0)), int(state.get("mse_n", 0))


def _concepts(parsed: Sequence[dict[str, Any]], cache: Path, progress: bool) -> dict[str, np.ndarray]:
    """Text → MiniLM vector for every sentence of ``parsed``, from ``cache`` (an ``.npz`` of
    strings and floats, no pickles) when it holds them all, else encoded and cached."""
    from ..encoders import load_encoder

    texts = sorted({t for p in parsed for t in (*p["statements"], p["question"], *p["steps"])})
    if cache.is_file():
        try:   # a cache that is corrupt, of another layout or holds pickled objects is a miss (re-encoded)
            with np.load(cache, allow_pickle=False) as z:
                table = dict(zip(z["texts"].tolist(), z["vecs"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            table = {}
        if all(t in table for t in texts):
            return table
    vecs = load_encoder("minilm").encode(texts, batch_size=64, progress=progress)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, texts=np.array(texts), vecs=np.asarray(vecs))
    return dict(zip(texts, vecs))


def loop_config(cfg: LCMTrainConfig, n_examples: int) -> LoopConfig:
    """The loop's settings for ``cfg``: AdamW (weight decay 0.01), clip 1.0, one-cycle (5 % warm-up),
    on the CPU; ``save_every`` epochs as optimizer steps."""
    return LoopConfig.one_cycle(cfg, n_examples, pct=0.05)


def train(out: str | Path = DEFAULT_PATH, run_dir: str | Path = "runs/lcm", cfg: LCMTrainConfig | None = None,
          *, progress: bool = True) -> dict[str, Any]:
    """Train on ``cfg.n_problems`` generated problems (seeded), resuming from ``run_dir/latest``;
    save to ``out``. Returns ``path``, ``epochs_done``, ``minutes`` (training time, over every
    resumed run) and ``bytes``."""
    cfg = cfg or LCMTrainConfig()
    run_dir = Path(run_dir)
    if (run_dir / "checkpoint.pt").is_file() and not (run_dir / "latest").exists():
        print(f"note: {run_dir / 'checkpoint.pt'} is an old-format checkpoint and is not read; starting afresh "
              f"in {run_dir / 'latest'}", file=sys.stderr)
    recipe = LCMRecipe(cfg, run_dir, progress=progress)
    trainer = Trainer(recipe, run_dir, loop_config(cfg, recipe.n_examples()), progress=progress)
    st = trainer.train()
    model = trainer.model.eval()
    path = model.save(out, extra={"train": asdict(cfg), "epochs_done": st.epoch})
    return {"path": str(path), "epochs_done": st.epoch, "minutes": round(st.elapsed_s / 60, 2),
            "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """``python -m explorer.concepts.lcm train [--epochs N] [--n-problems N] [--max-minutes M] [--seed S]
    [--run-dir DIR] [--model OUT.safetensors]`` (``eval`` is :mod:`explorer.concepts.lcm.__main__`'s)."""
    from ...commands import report

    ap = argparse.ArgumentParser(prog="python -m explorer.concepts.lcm", description="ProsQA Base-LCM: train or evaluate.")
    ap.add_argument("action", choices=["train", "eval"],
                    help="eval takes the options of `latent-explorer prosqa eval --engine lcm` (see its --help)")
    ap.add_argument("--model", default=str(DEFAULT_PATH),
                    help="where to write the weights: 'prosqa-lcm' (the shipped file, default) or a .safetensors path")
    ap.add_argument("--run-dir", default="runs/lcm")
    ap.add_argument("--epochs", type=int, default=LCMTrainConfig.epochs)
    ap.add_argument("--n-problems", type=int, default=LCMTrainConfig.n_problems)
    ap.add_argument("--max-minutes", type=float, default=LCMTrainConfig.max_minutes)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.model in ("prosqa-lcm", "lcm"):  # the shipped model's registered name
        args.model = str(DEFAULT_PATH)
    cfg = LCMTrainConfig(seed=args.seed, epochs=args.epochs, n_problems=args.n_problems, max_minutes=args.max_minutes)
    return report(lambda: (train(args.model, args.run_dir, cfg), None), prog="lcm")
