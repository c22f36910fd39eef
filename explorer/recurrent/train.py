"""Training a recurrent-depth model on ProsQA with Huginn's recipe: the settings (:class:`TrainConfig`),
the trainer (:class:`Trainer`) and ``latent-explorer train recurrent`` (:func:`main`).

Two task formats (``TrainConfig.task``), both without a chain of thought, so the model must do the
multi-hop search inside its core iterations:

``"reach"`` (the default)
    ProsQA in compact form (:mod:`explorer.tasks.prosqa.compact`): the statements as
    ``" Tom wumpus. wumpus yumpus."`` in a fresh order every epoch, then ``queries`` questions
    ``" Is X"`` about nodes of the graph. The loss at each question is the cross-entropy between the
    next-token distribution and the uniform distribution over every concept X reaches (within
    ``max_hops``, 0 = all): one answer names a whole set, a far stronger signal than a yes/no bit. A
    ProsQA question is answered by the option that scores higher after ``" Is <root>"``.
``"answer"``
    ``question + "\\n"`` → ``"### " + answer`` + EOS, the loss on the answer only (the first runs
    in docs/recurrent.md; small models stayed at chance on it).

Per optimizer step the recurrence is drawn as in Huginn (:func:`~explorer.recurrent.model.sample_recurrence`:
a Poisson count with a log-normal rate of mean ``mean_recurrence``), the first ``n`` iterations run
without gradient and the last ``k ≤ backprop_depth`` with it (truncated backprop); the initial state
is random. The draw and the initial state come from a generator seeded by ``(seed, step)``, so a
resumed run repeats an uninterrupted one exactly. The tokenizer is the word-level ProsQA one of
:func:`explorer.tasks.prosqa.tokenizer.build_tokenizer`.

Runs are seeded, show a tqdm bar, save every ``save_every`` steps into ``run_dir/latest`` (a HF
folder — ``explorer.recurrent.load_recurrent(run_dir / "latest")`` works — plus
``trainer_state.json`` and ``optimizer.pt``, read back with ``weights_only=True``), and resume.

The examples and batches are :mod:`.data`, the losses and the recurrence draw :mod:`.losses`;
:func:`~explorer.recurrent.evaluate.evaluate_iterations` measures accuracy at fixed iteration
counts and with adaptive exit (:mod:`.evaluate`).
"""
from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..checkpoint import (RunTrainer, check_same_run, config_from_dict, read_checkpoint, run_epochs, save_checkpoint,
                          training_main)
from ..errors import InputError
from .data import collate_reach, collate_right, encode_problem, encode_reach, task_of
from .evaluate import evaluate_iterations
from .losses import iteration_loss, reach_loss, recurrence_draw
from .model import RecurrentConfig, RecurrentForCausalLM

STATE_FORMAT = "latent-explorer.recurrent-trainer/1"
TASKS = ("reach", "answer")
SUPERVISE = ("final", "iterations")
RECURRENCE = ("sampled", "fixed")


@dataclass
class TrainConfig:
    """Recipe and model size (defaults: a ~0.5M-parameter model that makes progress on a CPU)."""

    mean_recurrence: int = 8
    backprop_depth: int = 4
    num_epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float | None = 1.0
    seed: int = 0
    save_every: int = 50
    max_steps: int | None = None
    n_embd: int = 128
    n_heads: int = 4
    intermediate_size: int = 256
    n_prelude: int = 1
    n_core: int = 2
    n_coda: int = 1
    block_size: int = 512
    device: str = "auto"
    threads: int | None = None
    task: str = "reach"          # "reach" (compact ProsQA, the answer a set) or "answer" (question → text)
    queries: int = 8             # reach: questions per graph
    max_hops: int = 0            # reach: teach the concepts up to this many hops away (0: all)
    supervise: str = "final"     # reach: "final" (the answer after the last iteration, Huginn's recipe) or
    #                              "iterations" (every iteration with gradient, iteration j: the concepts within j hops)
    recurrence: str = "sampled"  # "sampled" (Huginn's draw around mean_recurrence) or "fixed" (always mean_recurrence
    #                              iterations, the last backprop_depth with gradient; fixed 1: the same-size model
    #                              without recurrence, the no-CoT baseline)

    def check(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}.")
        if self.supervise not in SUPERVISE:
            raise InputError(f"supervise must be one of {', '.join(SUPERVISE)}, got {self.supervise!r}.")
        if self.recurrence not in RECURRENCE:
            raise InputError(f"recurrence must be one of {', '.join(RECURRENCE)}, got {self.recurrence!r}.")
        if self.supervise == "iterations" and self.task != "reach":
            raise InputError("supervise='iterations' needs task='reach' (its targets are hop distances).")
        if self.queries < 1 or self.max_hops < 0:
            raise InputError("queries must be >= 1 and max_hops >= 0 (0: every hop count).")
        if self.mean_recurrence < 1 or self.backprop_depth < 1:
            raise InputError("mean_recurrence and backprop_depth must be >= 1.")
        if self.batch_size < 1 or self.save_every < 1:
            raise InputError("batch_size and save_every must be >= 1.")
        if self.n_embd % self.n_heads:
            raise InputError(f"n_embd ({self.n_embd}) must be a multiple of n_heads ({self.n_heads}).")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, d)


def build_recurrent_model(tokenizer: Any, cfg: TrainConfig) -> RecurrentForCausalLM:
    """A new recurrent model for ``tokenizer`` (seeded by ``cfg.seed``)."""
    mc = RecurrentConfig(n_embd=cfg.n_embd, n_heads=cfg.n_heads, intermediate_size=cfg.intermediate_size,
                         vocab_size=len(tokenizer), block_size=cfg.block_size, n_layers_in_prelude=cfg.n_prelude,
                         n_layers_in_recurrent_block=cfg.n_core, n_layers_in_coda=cfg.n_coda,
                         mean_recurrence=cfg.mean_recurrence, mean_backprop_depth=cfg.backprop_depth,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id, prosqa_task=cfg.task)
    torch.manual_seed(cfg.seed)
    return RecurrentForCausalLM(mc)


@dataclass
class TrainState:
    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    losses: list[list[float]] = field(default_factory=list)      # [step, loss, n, k]
    evals: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


class Trainer(RunTrainer):
    """``Trainer(train_data, run_dir, cfg).train()``; resumes from ``run_dir/latest`` when it exists.
    ``base``: a checkpoint folder to start from instead of a new model (a curriculum stage: the
    weights only; the optimizer and step count start afresh)."""

    def __init__(self, train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: TrainConfig | None = None, *,
                 base: str | Path | None = None, eval_data: Sequence[dict[str, Any]] | None = None,
                 eval_limit: int = 50, progress: bool = True) -> None:
        from ..tasks.prosqa.tokenizer import build_tokenizer

        def build() -> tuple[Any, Any]:
            tok = build_tokenizer()
            return build_recurrent_model(tok, self.cfg), tok

        resume = self._open(train_data, run_dir, cfg or TrainConfig(), base=base, eval_data=eval_data,
                            eval_limit=eval_limit, progress=progress, build=build)
        if base is not None and not resume:
            self._check_base(Path(base))
        self.hf.to(self.device)
        if task_of(self.hf) != self.cfg.task:
            raise InputError(f"{self.latest if resume else base} was trained on the {task_of(self.hf)!r} task, not "
                             f"{self.cfg.task!r}; pass --task {task_of(self.hf)}, or start from a model of that task.")
        if self.cfg.task == "reach":
            rng = random.Random(0)
            too_long = max(len(encode_reach(self.tokenizer, p, rng, self.cfg.queries, self.cfg.max_hops)[0])
                           for p in self.data)
        else:
            self.examples = [encode_problem(self.tokenizer, p) for p in self.data]
            too_long = max(len(i) for i, _ in self.examples)
        if too_long > self.hf.config.block_size:
            raise InputError(f"a problem has {too_long} tokens but block_size is {self.hf.config.block_size}; "
                             "raise --block-size.")
        self.state = TrainState()
        self.optimizer = torch.optim.AdamW(self.hf.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay,
                                           betas=(0.9, 0.95))
        if resume:
            self._load_state()

    def _check_base(self, src: Path) -> None:
        """The base must have this run's sizes; its recurrence settings become this run's."""
        c = self.hf.config
        mine = (self.cfg.n_embd, self.cfg.n_heads, self.cfg.n_prelude, self.cfg.n_core, self.cfg.n_coda)
        theirs = (c.n_embd, c.n_heads, c.n_layers_in_prelude, c.n_layers_in_recurrent_block, c.n_layers_in_coda)
        if mine != theirs:
            raise InputError(f"{src} has n_embd, n_heads, n_prelude, n_core, n_coda = {theirs}, but this run asks for "
                             f"{mine}; pass the base run's sizes.")
        c.mean_recurrence, c.mean_backprop_depth = self.cfg.mean_recurrence, self.cfg.backprop_depth

    def epoch_batches(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.data))
        pad = int(self.tokenizer.pad_token_id)
        bs = self.cfg.batch_size
        if self.cfg.task == "reach":  # statement order and questions drawn afresh each epoch, seeded
            rng = random.Random(self.cfg.seed * 1_000_003 + epoch)
            ex = [encode_reach(self.tokenizer, self.data[int(j)], rng, self.cfg.queries, self.cfg.max_hops)
                  for j in order]
            V = self.hf.config.vocab_size
            return [collate_reach(ex[i:i + bs], pad, V) for i in range(0, len(ex), bs)]
        return [collate_right([self.examples[int(j)] for j in order[i:i + bs]], pad) for i in range(0, len(order), bs)]

    def _lr(self, step: int) -> float:
        w = self.cfg.warmup_steps
        return self.cfg.lr * min(1.0, (step + 1) / w) if w > 0 else self.cfg.lr

    def train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, int, int]:
        """One optimizer step; returns (loss, iterations without grad, iterations with grad)."""
        self.hf.train()
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.state.global_step)
        n, k = recurrence_draw(self.cfg, gen)
        batch = {key: v.to(self.device) for key, v in batch.items()}
        if self.cfg.supervise == "iterations":
            loss = iteration_loss(self.hf, batch, n, k, gen)
        elif self.cfg.task == "reach":
            logits = self.hf(batch["input_ids"], num_steps=(n, k), generator=gen).logits
            loss = reach_loss(logits, batch["positions"], batch["target"])
        else:
            loss = self.hf(batch["input_ids"], labels=batch["labels"], num_steps=(n, k), generator=gen).loss
        for g in self.optimizer.param_groups:
            g["lr"] = self._lr(self.state.global_step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.hf.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return float(loss.detach()), n, k

    def train(self) -> TrainState:
        """Run (or continue); checkpoints every ``save_every`` steps and at the end. Ctrl-C saves first."""
        def step(batch: dict[str, torch.Tensor]) -> tuple[float, list[int], dict[str, int]]:
            loss, n, k = self.train_step(batch)
            return loss, [n, k], {"r": n + k}

        return run_epochs(self, desc=f"recurrent r̄={self.cfg.mean_recurrence}", step=step)

    def _evaluate(self) -> None:
        from .engine import RecurrentModel

        self.hf.eval()
        res = evaluate_iterations(RecurrentModel(self.hf, self.tokenizer, name="training"), self.eval_data,
                                  iterations=(1, self.cfg.mean_recurrence, 2 * self.cfg.mean_recurrence),
                                  exit="kl", limit=self.eval_limit)
        rec = {"epoch": self.state.epoch, "step": self.state.global_step,
               "accuracy": res["accuracy"], "adaptive_accuracy": res["adaptive"]["accuracy"],
               "mean_iterations": res["adaptive"]["mean_iterations"], "n": res["n"]}
        self.state.evals.append(rec)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"eval": rec}) + "\n")

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path:
        """Write ``run_dir/latest`` atomically (see :mod:`explorer.checkpoint`)."""
        state = {"format": STATE_FORMAT, "config": asdict(self.cfg), **asdict(self.state), "n_train": len(self.data)}
        last = self.state.losses[-1][1] if self.state.losses else None
        log = {"checkpoint": self.state.global_step, "epoch": self.state.epoch, "loss": last,
               "elapsed_s": round(self.state.elapsed_s, 1)}
        return save_checkpoint(self.run_dir, self.hf, self.tokenizer, blob={"optimizer": self.optimizer.state_dict()},
                               state=state, log=log)

    def _load_state(self) -> None:
        d, blob = read_checkpoint(self.latest, STATE_FORMAT, self.device)
        check_same_run(self.latest, TrainConfig.from_dict({"task": "answer", **d["config"]}), self.cfg,
                       ("mean_recurrence", "backprop_depth", "batch_size", "seed", "n_embd", "n_core", "task",
                        "queries", "max_hops", "supervise", "recurrence"),
                       d.get("n_train"), len(self.data))
        self.state = TrainState(**{k: d[k] for k in ("global_step", "epoch", "batch_in_epoch", "losses", "evals",
                                                      "elapsed_s")})
        self.optimizer.load_state_dict(blob["optimizer"])


def train(train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: TrainConfig | None = None,
          **kw: Any) -> TrainState:
    """Train (or resume) a run; see :class:`Trainer`."""
    return Trainer(train_data, run_dir, cfg, **kw).train()


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer train recurrent RUN_DIR --train train.json [--generate N] [--valid valid.json] ...``."""
    return training_main(argv, prog="latent-explorer train recurrent",
                         description="Train a recurrent-depth model on ProsQA (no chain of thought).",
                         config_cls=TrainConfig, train=train, eval_limit=50,
                         done=lambda st: f"done: {st.global_step} steps, epoch {st.epoch}")

if __name__ == "__main__":
    sys.exit(main())
