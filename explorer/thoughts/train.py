"""Training continuous thoughts with the Coconut curriculum (Hao et al. 2024) on ProsQA-style data.

Each problem is ``question + "\\n"``, its reasoning ``steps`` (each + ``"\\n"``), and ``"### " +
answer`` + EOS. Stage 0 is the full chain of thought; stage k replaces the first k steps by
k·c continuous thoughts between ``<bot>`` and ``<eot>`` (stages past ``max_latent_stage`` drop every
step and keep ``max_latent_stage``·c thoughts when ``pad_latent_to_max``). The loss is only on the
language after ``<eot>``. The stage is ``epoch // epochs_per_stage``; the optimizer is reset when
the stage changes; ``uniform_prob`` mixes in examples of a uniformly drawn stage. Baselines:
``method="cot"`` (always stage 0, no markers) and ``method="no_cot"`` (question → answer).

A thought is the last layer's hidden state (after the final norm) at the position before it,
filled in by one forward pass per thought over the KV cache (the "multi-pass" forward); the batch
is left-padded so that every example's first thought sits at the same position.

Runs are seeded, show a tqdm bar, save a checkpoint every ``save_every`` optimizer steps into
``run_dir/latest`` (a Hugging Face folder — ``explorer.load_model(run_dir / "latest")`` works — plus
``trainer_state.json`` and ``optimizer.pt``), and resume from it after an interruption.

Here: the base model (:func:`build_base_model`, :func:`add_thought_tokens`), the settings
(:class:`TrainConfig`), the trainer (:class:`Trainer`) and ``latent-explorer train coconut``
(:func:`main`). The examples, batches and the multi-pass forward are :mod:`.data`; the tokenizer is
the task's (:mod:`explorer.tasks.prosqa.tokenizer`); evaluation is :mod:`.evaluate`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..checkpoint import (RunTrainer, check_same_run, config_from_dict, read_checkpoint, run_epochs, save_checkpoint,
                          training_main)
from ..errors import InputError
from ..tasks.prosqa.tokenizer import build_tokenizer
from .data import build_example, coconut_forward, collate, tokenize_problem
from .engine import BOT, EOT, LATENT

STATE_FORMAT = "latent-explorer.coconut-trainer/1"


# -- the base model ---------------------------------------------------------------------------------
def add_thought_tokens(hf: torch.nn.Module, tokenizer: Any) -> dict[str, int]:
    """Add ``<bot>``, ``<eot>``, ``<latent>`` as special tokens (if missing) and resize the
    embeddings; new rows start as the mean of the old ones. Returns their ids."""
    missing = [t for t in (BOT, EOT, LATENT) if t not in tokenizer.get_vocab()]
    if missing:
        old = hf.get_input_embeddings().weight.shape[0]
        tokenizer.add_tokens(missing, special_tokens=True)
        hf.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            w = hf.get_input_embeddings().weight
            w[old:] = w[:old].mean(0, keepdim=True)
    vocab = tokenizer.get_vocab()
    return {t: int(vocab[t]) for t in (BOT, EOT, LATENT)}


def build_base_model(tokenizer: Any, *, n_layer: int = 4, n_embd: int = 256, n_head: int = 4,
                     n_positions: int = 512, seed: int = 0) -> torch.nn.Module:
    """A small GPT-2 built from scratch for ``tokenizer`` (dropout 0, tied embeddings)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


# -- configuration ------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """The curriculum and optimisation settings (defaults: Coconut's ProsQA run, on a small GPT-2)."""

    method: str = "coconut"            # "coconut", "cot", "no_cot"
    c_thought: int = 1
    max_latent_stage: int = 6
    epochs_per_stage: int = 5
    num_epochs: int = 50
    pad_latent_to_max: bool = True
    uniform_prob: float = 0.0
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    seed: int = 0
    save_every: int = 200               # optimizer steps between checkpoints
    max_steps: int | None = None        # stop after this many optimizer steps in total (None: all epochs)
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_positions: int = 512
    device: str = "auto"
    threads: int | None = None          # torch CPU threads (None: leave as is)

    def check(self) -> None:
        if self.method not in ("coconut", "cot", "no_cot"):
            raise InputError(f"method must be 'coconut', 'cot' or 'no_cot', got {self.method!r}.")
        if self.c_thought < 1 or self.max_latent_stage < 0 or self.epochs_per_stage < 1:
            raise InputError("c_thought and epochs_per_stage must be >= 1 and max_latent_stage >= 0.")
        if not 0.0 <= self.uniform_prob <= 1.0:
            raise InputError(f"uniform_prob must be in [0, 1], got {self.uniform_prob}.")
        if self.batch_size < 1 or self.save_every < 1:
            raise InputError("batch_size and save_every must be >= 1.")

    def stage(self, epoch: int) -> int:
        return epoch // self.epochs_per_stage if self.method == "coconut" else 0

    def n_thoughts(self, stage: int) -> int:
        if self.method != "coconut":
            return 0
        return self.c_thought * min(stage, self.max_latent_stage)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, d)


# -- the trainer --------------------------------------------------------------------------------------
@dataclass
class TrainState:
    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0            # batches of this epoch already done
    stage: int = 0
    losses: list[list[float]] = field(default_factory=list)   # [step, loss]
    evals: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


class Trainer(RunTrainer):
    """``Trainer(train_data, run_dir, cfg).train()``; resumes from ``run_dir/latest`` when it exists.

    ``base``: a checkpoint folder to start from (default: a new GPT-2 from :func:`build_base_model`
    with the :func:`build_tokenizer` vocabulary)."""

    def __init__(self, train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: TrainConfig | None = None, *,
                 base: str | Path | None = None, eval_data: Sequence[dict[str, Any]] | None = None,
                 eval_limit: int = 100, progress: bool = True) -> None:
        def build() -> tuple[Any, Any]:
            tok = build_tokenizer()
            c = self.cfg
            return build_base_model(tok, n_layer=c.n_layer, n_embd=c.n_embd, n_head=c.n_head,
                                    n_positions=c.n_positions, seed=c.seed), tok

        resume = self._open(train_data, run_dir, cfg or TrainConfig(), base=base, eval_data=eval_data,
                            eval_limit=eval_limit, progress=progress, build=build)
        self.ids = add_thought_tokens(self.hf, self.tokenizer) if self.cfg.method == "coconut" else {}
        self.hf.to(self.device)
        self.tok = [tokenize_problem(self.tokenizer, p) for p in self.data]
        self.state = TrainState()
        self.optimizer = self._new_optimizer()
        if resume:
            self._load_state()

    # -- pieces --------------------------------------------------------------------------------
    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.hf.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def epoch_batches(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        """The batches of one epoch (a seeded shuffle; per-example stage draws for uniform_prob)."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order = rng.permutation(len(self.data))
        stage = self.cfg.stage(epoch)
        out = []
        for i in range(0, len(order), self.cfg.batch_size):
            exs = []
            for j in order[i:i + self.cfg.batch_size]:
                t = self.tok[int(j)]
                s = stage
                if self.cfg.method == "coconut" and self.cfg.uniform_prob and rng.random() < self.cfg.uniform_prob:
                    s = int(rng.integers(0, len(t.steps) + 1))
                exs.append(build_example(t, s, self.cfg, self.ids))
            out.append(collate(exs, int(self.tokenizer.pad_token_id), self.ids.get(LATENT)))
        return out

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        self.hf.train()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        loss, _ = coconut_forward(self.hf, batch, self.ids.get(LATENT))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.hf.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> TrainState:
        """Run (or continue) the curriculum; checkpoints every ``save_every`` steps and at the end.
        Ctrl-C saves a checkpoint before stopping."""
        def begin_epoch(epoch: int, bar: Any) -> None:
            stage = self.cfg.stage(epoch)
            if stage != self.state.stage:      # a new stage: a new optimizer (Coconut's reset_optimizer)
                self.state.stage = stage
                self.optimizer = self._new_optimizer()
            bar.set_description(f"{self.cfg.method} stage {stage}")

        return run_epochs(self, desc=f"{self.cfg.method} stage {self.state.stage}",
                          step=lambda batch: (self.train_step(batch), [], {}), begin_epoch=begin_epoch)

    def _evaluate(self) -> None:
        from ..model import Model
        from .evaluate import evaluate

        self._stamp()
        self.hf.eval()
        method = "coconut" if self.cfg.method == "coconut" else ("no_cot" if self.cfg.method == "no_cot" else "cot")
        res = evaluate(Model(self.hf, self.tokenizer, name="training"), self.eval_data, method,
                       n_thoughts=self.cfg.n_thoughts(self.state.stage), limit=self.eval_limit)
        self.state.evals.append({"epoch": self.state.epoch, "step": self.state.global_step, "stage": self.state.stage,
                                 "accuracy": res["accuracy"], "n": res["n"],
                                 "mean_generated_tokens": res["mean_generated_tokens"]})
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"eval": self.state.evals[-1]}) + "\n")

    # -- checkpoints ---------------------------------------------------------------------------
    def _stamp(self) -> None:
        """Record in the model config what a reader needs to think with it."""
        self.hf.config.coconut = {"method": self.cfg.method, "c_thought": self.cfg.c_thought,
                                  "max_latent_stage": self.cfg.max_latent_stage, "stage": self.state.stage,
                                  "n_thoughts": self.cfg.n_thoughts(self.state.stage)}

    def save(self) -> Path:
        """Write ``run_dir/latest`` atomically (see :mod:`explorer.checkpoint`)."""
        self._stamp()
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {"format": STATE_FORMAT, "config": asdict(self.cfg), **asdict(self.state), "n_train": len(self.data),
                 "thought_ids": self.ids}
        last = self.state.losses[-1][1] if self.state.losses else None
        log = {"checkpoint": self.state.global_step, "epoch": self.state.epoch, "stage": self.state.stage,
               "loss": last, "elapsed_s": round(self.state.elapsed_s, 1)}
        return save_checkpoint(self.run_dir, self.hf, self.tokenizer, blob={"optimizer": self.optimizer.state_dict(),
                                                                            "rng": rng}, state=state, log=log)

    def _load_state(self) -> None:
        d, blob = read_checkpoint(self.latest, STATE_FORMAT, self.device)
        check_same_run(self.latest, TrainConfig.from_dict(d["config"]), self.cfg,
                       ("method", "c_thought", "max_latent_stage", "epochs_per_stage", "batch_size", "seed",
                        "uniform_prob"), d.get("n_train"), len(self.data))
        self.state = TrainState(**{k: d[k] for k in ("global_step", "epoch", "batch_in_epoch", "stage", "losses",
                                                      "evals", "elapsed_s")})
        self.optimizer.load_state_dict(blob["optimizer"])
        torch.set_rng_state(blob["rng"]["torch"].cpu())
        if "cuda" in blob["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([t.cpu() for t in blob["rng"]["cuda"]])


def train(train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: TrainConfig | None = None,
          **kw: Any) -> TrainState:
    """Train (or resume) a run; see :class:`Trainer`."""
    return Trainer(train_data, run_dir, cfg, **kw).train()


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer train coconut RUN_DIR --train train.json [--generate N] [--valid valid.json] ...``."""
    return training_main(argv, prog="latent-explorer train coconut", description="Train continuous thoughts on ProsQA.",
                         config_cls=TrainConfig, train=train, eval_limit=100,
                         done=lambda st: f"done: {st.global_step} steps, epoch {st.epoch}, stage {st.stage}")

if __name__ == "__main__":
    sys.exit(main())
