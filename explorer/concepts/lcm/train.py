"""Training the ProsQA Base-LCM (:mod:`.model`) on generated problems, and ``python -m
explorer.concepts.lcm train``.

:func:`train` encodes every sentence of ``n_problems`` generated problems once with MiniLM (cached
in ``run_dir``), fits the robust normaliser on them, and regresses each next step's normalised
concept (MSE) with a one-cycle schedule; it saves ``run_dir/checkpoint.pt`` every ``save_every``
epochs (read back with ``weights_only=True``), resumes from it, and writes the weights to ``out``
(the shipped ``explorer/concepts/weights/prosqa-lcm.*`` by default). The real validation set is
never trained on; evaluation is :mod:`.evaluate`.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import SaveFileError
from ...io import atomic_path
from .model import DEFAULT_PATH, BaseLCM, LCMConfig, RobustNormalizer, _sequence, parse_problem


@dataclass
class LCMTrainConfig:
    seed: int = 0
    n_problems: int = 4000
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    max_minutes: float = 20.0
    save_every: int = 1


def _prepare(problems: Sequence[dict[str, Any]], enc: Any, progress: bool) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    parsed = [parse_problem(p) for p in problems]
    texts = sorted({t for p in parsed for t in (*p["statements"], p["question"], *p["steps"])})
    vecs = enc.encode(texts, batch_size=64, progress=progress)
    return parsed, dict(zip(texts, vecs))


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


def train(out: str | Path = DEFAULT_PATH, run_dir: str | Path = "runs/lcm", cfg: LCMTrainConfig | None = None,
          *, progress: bool = True) -> dict[str, Any]:
    """Train on ``cfg.n_problems`` generated problems (seeded), resuming from ``run_dir``; save to ``out``."""
    from tqdm.auto import tqdm

    from ...tasks.prosqa.generate import generate
    from ..encoders import load_encoder

    cfg = cfg or LCMTrainConfig()
    torch.manual_seed(cfg.seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    enc = load_encoder("minilm")
    problems = generate(cfg.n_problems, seed=1000 + cfg.seed)
    cache = run_dir / f"concepts-{cfg.n_problems}-{cfg.seed}.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        table = dict(zip(z["texts"].tolist(), z["vecs"]))
        parsed = [parse_problem(p) for p in problems]
    else:
        parsed, table = _prepare(problems, enc, progress)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(list(table)), vecs=np.stack(list(table.values())))
    norm = RobustNormalizer.fit(np.stack(list(table.values())))
    model = BaseLCM(LCMConfig(dim=enc.dim), norm)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    items = list(range(len(parsed)))
    spe = math.ceil(len(items) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * spe, pct_start=0.05)
    ck = run_dir / "checkpoint.pt"
    start = 0
    if ck.is_file():
        st = torch.load(ck, weights_only=True)
        same = lambda d: {k: v for k, v in d.items() if k != "max_minutes"}  # noqa: E731
        if same(st.get("config", {})) != same(asdict(cfg)):
            raise SaveFileError(f"{ck} was written with other settings; delete {run_dir} to start over.")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["sched"])
        start = st["epoch"]
    t0 = time.time()
    epoch = start
    bar = tqdm(range(start, cfg.epochs), desc="base-lcm", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = list(items)
        random.Random(cfg.seed * 7919 + epoch).shuffle(order)
        tot = 0.0
        for s in range(0, len(order), cfg.batch_size):
            x, types, sidx, pad, y, tmask = _batch(parsed, table, norm, order[s:s + cfg.batch_size])
            loss = nn.functional.mse_loss(model(x, types, sidx, pad)[tmask], y[tmask])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item()
        bar.set_postfix(mse=f"{tot / spe:.4f}")
        print(f"epoch {epoch + 1}: mse {tot / spe:.4f} ({(time.time() - t0) / 60:.1f} min)", file=sys.stderr, flush=True)
        if (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs:
            with atomic_path(ck) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "sched": sched.state_dict(),
                            "epoch": epoch + 1, "config": asdict(cfg)}, tmp)
            model.save(out, extra={"train": asdict(cfg), "epochs_done": epoch + 1})
        if (time.time() - t0) / 60 > cfg.max_minutes:
            print(f"stopping after {epoch + 1} epochs: the {cfg.max_minutes} min budget is spent", file=sys.stderr)
            break
    model.eval()
    path = model.save(out, extra={"train": asdict(cfg), "epochs_done": epoch + 1})
    return {"path": str(path), "epochs_done": epoch + 1, "minutes": round((time.time() - t0) / 60, 2),
            "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """``python -m explorer.concepts.lcm train [--epochs N] [--n-problems N] [--max-minutes M] [--seed S]
    [--run-dir DIR] [--model OUT.safetensors]`` (``eval`` is :func:`explorer.concepts.lcm.main`'s)."""
    from ...cli import report

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
