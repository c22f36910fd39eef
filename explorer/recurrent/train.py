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
    ``unreached_weight`` w adds w × (−log of the mass on the reached concepts), so that mass on a
    concept X does not reach costs 1 + w times as much; ``separation_weight`` s adds s × a soft
    margin between the lowest-scored reached concept and the highest-scored other one.
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

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import training
from ..errors import InputError
from ..tasks.prosqa.graph_tokens import build_graph_tokenizer, is_graph_tokenizer
from ..tasks.prosqa.tokenizer import build_tokenizer
from ..training import LoopConfig, config_from_dict, load_pretrained, training_main
from .data import (collate_reach, collate_right, encode_problem, encode_reach, encode_reach_graph, read_reach_graph,
                   task_of)
from .evaluate import evaluate_iterations
from .losses import iteration_loss, reach_loss, recurrence_draw
from .model import RecurrentConfig, RecurrentForCausalLM

STATE_FORMAT = "latent-explorer.recurrent-trainer/2"
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
    unreached_weight: float = 0.0  # reach: extra weight on −log of the mass on the reached concepts (losses.reach_loss)
    separation_weight: float = 0.0  # reach: weight of the soft margin, reached concepts over the rest (losses.reach_loss)
    supervise: str = "final"     # reach: "final" (the answer after the last iteration, Huginn's recipe) or
    #                              "iterations" (every iteration with gradient, iteration j: the concepts within j hops)
    recurrence: str = "sampled"  # "sampled" (Huginn's draw around mean_recurrence) or "fixed" (always mean_recurrence
    #                              iterations, the last backprop_depth with gradient; fixed 1: the same-size model
    #                              without recurrence, the no-CoT baseline)
    encoding: str = "words"      # "words" (ProsQA's names) or "graph" (graph tokens, relabelled per epoch; task reach)
    schedule: str = "constant"   # after the warm-up: "constant" or "cosine" (see explorer.training.LoopConfig)
    group_by_length: bool = True  # batches of problems of similar length (less padding; explorer.training.recipe)
    precision: str = "fp32"      # "bf16": autocast on CUDA
    save_minutes: float | None = None   # also checkpoint every this many minutes
    max_minutes: float | None = None    # stop (resumably) after this many minutes of training

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
        for name in ("unreached_weight", "separation_weight"):
            w = getattr(self, name)
            if w < 0 or (w and self.task != "reach"):
                raise InputError(f"{name} must be >= 0, and above 0 only with task='reach' (it weighs the scores "
                                 "outside a question's reach set), got {w}.")
        if self.mean_recurrence < 1 or self.backprop_depth < 1:
            raise InputError("mean_recurrence and backprop_depth must be >= 1.")
        if self.encoding not in ("words", "graph"):
            raise InputError(f"encoding must be 'words' or 'graph', got {self.encoding!r}.")
        if self.encoding == "graph" and self.task != "reach":
            raise InputError("encoding='graph' needs task='reach' (the answer is read as the option the root reaches).")
        if min(self.n_embd, self.n_heads, self.intermediate_size, self.n_prelude, self.n_core) < 1 or self.n_coda < 0:
            raise InputError("n_embd, n_heads, intermediate_size, n_prelude and n_core must be >= 1, n_coda >= 0 "
                             "(0: the state is read by the final norm and the tied unembedding alone).")
        if self.n_embd % self.n_heads:
            raise InputError(f"n_embd ({self.n_embd}) must be a multiple of n_heads ({self.n_heads}).")
        self.loop().check()

    def loop(self) -> LoopConfig:
        """The settings of the shared training loop (AdamW with Huginn's betas, warm-up)."""
        return LoopConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, max_steps=self.max_steps,
                          lr=self.lr, weight_decay=self.weight_decay, betas=(0.9, 0.95),
                          warmup_steps=self.warmup_steps, schedule=self.schedule, grad_clip=self.grad_clip,
                          save_every=self.save_every, save_minutes=self.save_minutes, max_minutes=self.max_minutes,
                          seed=self.seed, device=self.device, threads=self.threads, precision=self.precision)

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


class RecurrentRecipe(training.ProblemRecipe):
    """Huginn's recipe on ProsQA (either task, words or graph tokens) as a recipe of the one trainer."""

    format = STATE_FORMAT
    resume_keys = ("mean_recurrence", "backprop_depth", "n_embd", "n_core", "task", "queries", "max_hops",
                   "unreached_weight", "separation_weight", "supervise", "recurrence", "encoding", "group_by_length")

    def __init__(self, data: Sequence[dict[str, Any]], cfg: TrainConfig, **kw: Any) -> None:
        super().__init__(data, cfg, **kw)
        self.name = f"recurrent r̄={cfg.mean_recurrence}"
        self.weights = {"unreached_weight": cfg.unreached_weight, "separation_weight": cfg.separation_weight}

    def build(self, resume: Path | None) -> torch.nn.Module:
        src = resume if resume is not None else self.base
        if src is not None:
            self.hf, self.tokenizer = load_pretrained(src)
            if resume is None:
                self._check_base(Path(src))
        else:
            self.tokenizer = build_graph_tokenizer() if self.cfg.encoding == "graph" else build_tokenizer()
            self.hf = build_recurrent_model(self.tokenizer, self.cfg)
        if task_of(self.hf) != self.cfg.task:
            raise InputError(f"{src} was trained on the {task_of(self.hf)!r} task, not {self.cfg.task!r}; pass "
                             f"--task {task_of(self.hf)}, or start from a model of that task.")
        if is_graph_tokenizer(self.tokenizer) != (self.cfg.encoding == "graph"):
            raise InputError(f"{src} reads {'graph tokens' if is_graph_tokenizer(self.tokenizer) else 'words'}, but "
                             f"this run asks for encoding={self.cfg.encoding!r}; pass the base's encoding.")
        if self.cfg.task == "reach":
            # graph tokens: each problem read once (its tokens and reach sets), relabelled each epoch
            graph = self.cfg.encoding == "graph"
            self.read = [read_reach_graph(p, self.cfg.max_hops) for p in self.data] if graph else []
            rng = random.Random(0)
            too_long = max(len(self._encode_reach(j, rng)[0]) for j in range(len(self.data)))
        else:
            self.examples = [encode_problem(self.tokenizer, p) for p in self.data]
            too_long = max(len(i) for i, _ in self.examples)
        if too_long > self.hf.config.block_size:
            raise InputError(f"a problem has {too_long} tokens but block_size is {self.hf.config.block_size}; "
                             "raise --block-size.")
        return self.hf

    def _check_base(self, src: Path) -> None:
        """The base must have this run's sizes; its recurrence settings become this run's."""
        c = self.hf.config
        mine = (self.cfg.n_embd, self.cfg.n_heads, self.cfg.n_prelude, self.cfg.n_core, self.cfg.n_coda)
        theirs = (c.n_embd, c.n_heads, c.n_layers_in_prelude, c.n_layers_in_recurrent_block, c.n_layers_in_coda)
        if mine != theirs:
            raise InputError(f"{src} has n_embd, n_heads, n_prelude, n_core, n_coda = {theirs}, but this run asks for "
                             f"{mine}; pass the base run's sizes.")
        c.mean_recurrence, c.mean_backprop_depth = self.cfg.mean_recurrence, self.cfg.backprop_depth

    def save_model(self, model: torch.nn.Module, folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def _encode_reach(self, j: int, rng: random.Random) -> Any:
        if self.cfg.encoding == "graph":
            return encode_reach_graph(self.data[j], rng, self.cfg.queries, self.cfg.max_hops, read=self.read[j])
        return encode_reach(self.tokenizer, self.data[j], rng, self.cfg.queries, self.cfg.max_hops)

    def epoch_batches(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.data))
        pad = int(self.tokenizer.pad_token_id)
        if self.cfg.task == "reach":  # statement order (or node labels) and questions drawn afresh each epoch, seeded
            rng = random.Random(self.cfg.seed * 1_000_003 + epoch)
            ex = [self._encode_reach(int(j), rng) for j in order]
            V = self.hf.config.vocab_size
            return [collate_reach([ex[i] for i in b], pad, V) for b in self._batches([len(e[0]) for e in ex], epoch)]
        ex = [self.examples[int(j)] for j in order]
        return [collate_right([ex[i] for i in b], pad) for b in self._batches([len(e[0]) for e in ex], epoch)]

    def _batches(self, lengths: list[int], epoch: int) -> list[list[int]]:
        return training.length_grouped_batches(lengths, self.cfg.batch_size, self.cfg.seed * 1_000_003 + epoch,
                                               by_length=self.cfg.group_by_length)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """The recurrence drawn from ``(seed, step)``: ``n`` iterations without gradient, ``k`` with."""
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        n, k = recurrence_draw(self.cfg, gen)
        if self.cfg.supervise == "iterations":
            loss = iteration_loss(model, batch, n, k, gen, **self.weights)
        elif self.cfg.task == "reach":
            logits = model(batch["input_ids"], num_steps=(n, k), generator=gen).logits
            loss = reach_loss(logits, batch["positions"], batch["target"], **self.weights)
        else:
            loss = model(batch["input_ids"], labels=batch["labels"], num_steps=(n, k), generator=gen).loss
        return loss, {"n": n, "k": k}

    def evaluate(self, model: torch.nn.Module, epoch: int) -> dict[str, Any] | None:
        if not self.eval_data:
            return None
        from .engine import RecurrentModel

        res = evaluate_iterations(RecurrentModel(model, self.tokenizer, name="training"), self.eval_data,
                                  iterations=(1, self.cfg.mean_recurrence, 2 * self.cfg.mean_recurrence),
                                  exit="kl", limit=self.eval_limit)
        return {"accuracy": res["accuracy"], "adaptive_accuracy": res["adaptive"]["accuracy"],
                "mean_iterations": res["adaptive"]["mean_iterations"], "n": res["n"]}


class Trainer(training.ProblemTrainer):
    """``Trainer(train_data, run_dir, cfg).train()``; resumes from ``run_dir/latest`` when it exists.
    ``base``: a checkpoint folder to start from instead of a new model (a curriculum stage: the
    weights only; the optimizer and step count start afresh)."""

    recipe_class = RecurrentRecipe
    config_class = TrainConfig
    eval_limit = 50


def train(train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: TrainConfig | None = None,
          **kw: Any) -> training.TrainState:
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
