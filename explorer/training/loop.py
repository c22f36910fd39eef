"""The training loop every method shares: :class:`Trainer` runs a :class:`~explorer.training.recipe.Recipe`.

The loop owns what is the same for every method: AdamW, gradient clipping, the learning-rate
schedule, bf16 autocast on a GPU, a tqdm bar, ``log.jsonl``, a checkpoint every ``save_every``
steps (and every ``save_minutes``), at the end, on Ctrl-C and when the ``max_minutes`` budget is
spent (a budget per call: re-running goes on), an evaluation after each epoch, a fresh optimizer when the recipe's curriculum stage
changes, and exact resume: batches come from ``(seed, epoch)``, the position inside the epoch and
the optimizer, schedule and RNG states are checkpointed, so a resumed run reaches the same weights
as an uninterrupted one.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..runtime import pick_device
from .checkpoint import append_log, has_checkpoint, read_checkpoint, save_checkpoint
from .recipe import Recipe, check_same_run

SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("fp32", "bf16")


@dataclass
class LoopConfig:
    """The settings of the loop itself (a method's config maps its fields onto these)."""

    num_epochs: int = 1
    batch_size: int = 32
    max_steps: int | None = None         # stop after this many optimizer steps in total (None: all epochs)
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0                # linear warm-up ("constant" and "cosine")
    schedule: str = "constant"           # "constant"; "cosine" (down to 10 % at the last step); "onecycle" (torch's)
    onecycle_pct: float = 0.05
    grad_clip: float | None = 1.0
    save_every: int = 200                # optimizer steps between checkpoints
    save_minutes: float | None = None    # also checkpoint when this many minutes passed since the last one
    max_minutes: float | None = None     # stop (with a checkpoint) once this call has trained this long
    seed: int = 0
    device: str = "auto"
    threads: int | None = None           # torch CPU threads (None: leave as is)
    precision: str = "fp32"              # "bf16": autocast to bfloat16 on CUDA (fp32 on the CPU)

    @classmethod
    def one_cycle(cls, cfg: Any, n_examples: int, pct: float) -> "LoopConfig":
        """AdamW (weight decay 0.01), clip 1.0 and torch's one-cycle schedule (``pct`` of it warming
        up), on the CPU, for a config with ``epochs``, ``batch_size``, ``lr``, ``seed``,
        ``max_minutes`` and ``save_every`` counted in epochs (turned into optimizer steps here)."""
        steps_per_epoch = -(-n_examples // cfg.batch_size)
        return cls(num_epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=0.01,
                   schedule="onecycle", onecycle_pct=pct, grad_clip=1.0,
                   save_every=max(1, cfg.save_every * steps_per_epoch), max_minutes=cfg.max_minutes,
                   seed=cfg.seed, device="cpu")

    def check(self) -> None:
        if self.num_epochs < 0 or self.batch_size < 1 or self.save_every < 1:
            raise InputError("num_epochs must be >= 0, batch_size and save_every >= 1.")
        if self.max_steps is not None and self.max_steps < 0:
            raise InputError(f"max_steps must be >= 0 (or None for every epoch), got {self.max_steps}.")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InputError(f"lr must be a positive number and weight_decay >= 0, got {self.lr} and {self.weight_decay}.")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise InputError(f"grad_clip must be a positive number or None, got {self.grad_clip}.")
        if self.warmup_steps < 0:
            raise InputError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.schedule not in SCHEDULES:
            raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}.")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}.")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1 (or None to leave torch's setting), got {self.threads}.")
        for name in ("save_minutes", "max_minutes"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number of minutes or None, got {v}.")


@dataclass
class TrainState:
    """Where a run is; saved in every checkpoint."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0              # batches of this epoch already done
    stage: int = 0                       # the recipe's curriculum stage (0 without a curriculum)
    losses: list[list[float]] = field(default_factory=list)    # [step, loss, *extra values]
    evals: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0               # wall-clock training time over every call
    cpu_s: float | None = 0.0            # this process's CPU time over every call: a stopped run adds none
                                         # (None: resumed from a checkpoint that did not record it)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt   # a SIGTERM stops the loop as Ctrl-C does: with a checkpoint


def total_steps(n_examples: int, batch_size: int, num_epochs: int, max_steps: int | None) -> int:
    """Optimizer steps of a whole run: ``num_epochs`` epochs of ``ceil(n / batch_size)`` batches,
    capped by ``max_steps``."""
    n = num_epochs * -(-n_examples // batch_size)
    return min(n, max_steps) if max_steps is not None else n


def to_device(x: Any, device: torch.device) -> Any:
    """Tensors in dicts, lists and tuples moved to ``device``; anything else as it is."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x


class Trainer:
    """``Trainer(recipe, run_dir, loop).train()``; resumes from ``run_dir/latest`` when it exists
    (refusing other settings, other data or another recipe format)."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, loop: LoopConfig, *, progress: bool = True) -> None:
        loop.check()
        if recipe.n_examples() < 1:
            raise InputError("no training examples; pass a non-empty training set.")
        if loop.threads:
            torch.set_num_threads(loop.threads)
        self.recipe, self.loop, self.progress = recipe, loop, progress
        self.run_dir = Path(run_dir)
        self.latest = self.run_dir / "latest"
        self.device = pick_device(loop.device)
        saved: dict[str, Any] | None = None
        if has_checkpoint(self.latest):
            saved, blob = read_checkpoint(self.latest, recipe.format, self.device)
            check_same_run(self.latest, {**saved.get("loop", {}), **saved.get("config", {}), "n_train": saved.get("n_train")},
                           {**recipe.settings(), **asdict(loop), "n_train": recipe.n_examples()},
                           (*recipe.resume_keys, "batch_size", "seed", "n_train"))
        else:
            torch.manual_seed(loop.seed)
        self.model = recipe.build(self.latest if saved is not None else None).to(self.device)
        self.state = TrainState()
        self.optimizer, self.scheduler = self._new_optimizer()
        if saved is not None:
            self.state = TrainState(**{k: saved[k] for k in asdict(TrainState()) if k in saved})
            if "cpu_s" not in saved and self.state.global_step:
                self.state.cpu_s = None
            recipe.load_state_dict(saved.get("recipe", {}))
            # the recipe learns the curriculum stage it stopped in, so even a finished run that is
            # re-run (and only saves again) writes the stage it trained, not the first one
            recipe.begin_epoch(min(self.state.epoch, loop.num_epochs - 1))
            self.optimizer.load_state_dict(blob["optimizer"])
            if self.scheduler is not None and "scheduler" in blob:
                self.scheduler.load_state_dict(blob["scheduler"])
            torch.set_rng_state(blob["rng"]["torch"].cpu())
            if "cuda" in blob["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([t.cpu() for t in blob["rng"]["cuda"]])

    # -- pieces ------------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        c = self.loop
        return total_steps(self.recipe.n_examples(), c.batch_size, c.num_epochs, c.max_steps)

    def _new_optimizer(self) -> tuple[torch.optim.Optimizer, Any]:
        c = self.loop
        # on a GPU, the fused AdamW (one kernel for all parameters); the CPU keeps the default implementation
        opt = torch.optim.AdamW(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay, betas=tuple(c.betas),
                                fused=self.device.type == "cuda")
        sched = None
        if c.schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=max(self.total, 1),
                                                        pct_start=c.onecycle_pct)
        return opt, sched

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` for the "constant" and "cosine" schedules."""
        c = self.loop
        f = min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps > 0 else 1.0
        if c.schedule == "cosine":
            span = max(self.total - c.warmup_steps, 1)
            t = min(max(step - c.warmup_steps, 0) / span, 1.0)
            f *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
        return c.lr * f

    def train_step(self, batch: Any) -> tuple[float, dict[str, Any]]:
        """One optimizer step on ``batch``; returns (loss, the recipe's extra values)."""
        self.model.train()
        batch = to_device(batch, self.device)
        if self.scheduler is None:
            for g in self.optimizer.param_groups:
                g["lr"] = self.lr_at(self.state.global_step)
        bf16 = self.loop.precision == "bf16" and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, extra = self.recipe.loss(self.model, batch, self.state.global_step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.loop.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.loop.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(loss.detach()), extra

    # -- the loop ----------------------------------------------------------------------------------
    def train(self) -> TrainState:
        """Run (or continue) to the end; Ctrl-C, or a SIGTERM (``kill``, a closing session), saves a
        checkpoint before stopping."""
        from tqdm.auto import tqdm

        st, c, total = self.state, self.loop, self.total
        bar = tqdm(total=total, initial=min(st.global_step, total), disable=not self.progress, unit="step",
                   desc=f"{self.recipe.name} stage {st.stage}", dynamic_ncols=True)
        started = last_save = time.monotonic()
        t0 = started - st.elapsed_s            # elapsed_s: training time over every call, for the cost
        c0 = time.process_time() - (st.cpu_s or 0.0)   # cpu_s: the same in CPU seconds (a pause costs none)
        # a run in the background ignores Ctrl-C's signal; `kill` is how it is stopped, and it saves too
        on_main = threading.current_thread() is threading.main_thread()   # where Python lets a handler be set
        previous = signal.signal(signal.SIGTERM, _interrupt) if on_main else None
        try:
            while st.epoch < c.num_epochs and st.global_step < total:
                stage = int(self.recipe.begin_epoch(st.epoch))
                if stage != st.stage:           # a new curriculum stage: a fresh optimizer (Coconut's reset)
                    st.stage = stage
                    self.optimizer, self.scheduler = self._new_optimizer()
                bar.set_description(f"{self.recipe.name} stage {stage}")
                batches = self.recipe.epoch_batches(st.epoch)
                while st.batch_in_epoch < len(batches) and st.global_step < total:
                    loss, extra = self.train_step(batches[st.batch_in_epoch])
                    st.batch_in_epoch += 1
                    st.global_step += 1
                    st.losses.append([st.global_step, loss, *extra.values()])
                    st.elapsed_s = time.monotonic() - t0
                    if st.cpu_s is not None:
                        st.cpu_s = time.process_time() - c0
                    bar.update()
                    bar.set_postfix(loss=f"{loss:.3f}", epoch=st.epoch, **extra)
                    due = c.save_minutes is not None and time.monotonic() - last_save > 60 * c.save_minutes
                    if st.global_step % c.save_every == 0 or due:
                        self.save()
                        last_save = time.monotonic()
                    if c.max_minutes is not None and time.monotonic() - started > 60 * c.max_minutes:
                        bar.write(f"stopping at step {st.global_step}: this call's {c.max_minutes} min budget is "
                                  "spent (run the same command to go on)")
                        self.save()
                        bar.close()
                        return st
                if st.batch_in_epoch >= len(batches):
                    st.epoch += 1
                    st.batch_in_epoch = 0
                    self._evaluate()
            self.save()
        except KeyboardInterrupt:
            self.save()
            bar.close()
            raise
        finally:
            if on_main:   # None: a handler not set from Python; the default is the nearest we can restore
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        bar.close()
        return st

    def _evaluate(self) -> None:
        self.model.eval()
        res = self.recipe.evaluate(self.model, self.state.epoch)
        if res is None:
            return
        rec = {"epoch": self.state.epoch, "step": self.state.global_step, "stage": self.state.stage, **res}
        self.state.evals.append(rec)
        append_log(self.run_dir, {"eval": rec})

    def save(self) -> Path:
        """Write ``run_dir/latest`` atomically (see :mod:`explorer.training.checkpoint`)."""
        st = self.state
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        blob: dict[str, Any] = {"optimizer": self.optimizer.state_dict(), "rng": rng}
        if self.scheduler is not None:
            blob["scheduler"] = self.scheduler.state_dict()
        state = {"format": self.recipe.format, "config": self.recipe.settings(), "loop": asdict(self.loop),
                 "n_train": self.recipe.n_examples(), "recipe": self.recipe.state_dict(), **asdict(st)}
        log = {"checkpoint": st.global_step, "epoch": st.epoch, "stage": st.stage,
               "loss": st.losses[-1][1] if st.losses else None, "elapsed_s": round(st.elapsed_s, 1),
               "cpu_s": None if st.cpu_s is None else round(st.cpu_s, 1)}
        return save_checkpoint(self.run_dir, lambda folder: self.recipe.save_model(self.model, folder),
                               blob=blob, state=state, log=log)


class ProblemTrainer(Trainer):
    """A :class:`Trainer` over a list of problems, built from a method's config: subclasses name their
    ``recipe_class`` (called as ``recipe_class(train_data, cfg, base=, eval_data=, eval_limit=)``)
    and ``config_class`` (with ``loop()``); ``hf`` and ``tokenizer`` are the recipe's model and
    tokenizer. ``Sub(train_data, run_dir, cfg).train()`` resumes from ``run_dir/latest`` when it
    exists; ``base`` is a checkpoint folder to start from (its weights only: a curriculum stage)."""

    recipe_class: Any
    config_class: Any
    eval_limit: int = 100

    def __init__(self, train_data: Any, run_dir: str | Path, cfg: Any = None, *, base: str | Path | None = None,
                 eval_data: Any = None, eval_limit: int | None = None, progress: bool = True) -> None:
        self.cfg = cfg if cfg is not None else self.config_class()
        if not train_data:
            raise InputError("no training problems; generate some with explorer.tasks.prosqa.generate().")
        recipe = self.recipe_class(train_data, self.cfg, base=base, eval_data=eval_data,
                                   eval_limit=self.eval_limit if eval_limit is None else eval_limit)
        super().__init__(recipe, run_dir, self.cfg.loop(), progress=progress)

    @property
    def hf(self) -> torch.nn.Module:
        return self.model

    @property
    def tokenizer(self) -> Any:
        return self.recipe.tokenizer

