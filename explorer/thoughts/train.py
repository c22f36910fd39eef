"""Training continuous thoughts with the Coconut curriculum (Hao et al. 2024) on ProsQA-style data.

Each problem is ``question + "\\n"``, its reasoning ``steps`` (each + ``"\\n"``), and ``"### " +
answer`` + EOS. Stage 0 is the full chain of thought; stage k replaces the first k steps by
k·c continuous thoughts between ``<bot>`` and ``<eot>`` (stages past ``max_latent_stage`` drop every
step and keep ``max_latent_stage``·c thoughts when ``pad_latent_to_max``). The loss is only on the
language after ``<eot>``. The stage is ``start_stage + epoch // epochs_per_stage``; the optimizer is reset when
the stage changes; ``uniform_prob`` mixes in examples of a uniformly drawn stage. Baselines:
``method="cot"`` (always stage 0, no markers) and ``method="no_cot"`` (question → answer).
``frontier_loss`` > 0 (graph tokens) is the Coconut-BFS variant: each thought's next-token
distribution is also taught the uniform distribution over its BFS frontier (the nodes at the end of
a walk of exactly k edges from the root for the k-th thought), instead of only through the language
after ``<eot>``; with ``thought_targets="reach"`` the k-th thought is taught every node within k hops
instead (the recurrent model's targets: a thought then holds all the root has reached so far, and a
thought more than the path needs keeps the answer). Graph tokens lay thoughts out as the
superposition paper does: no markers, the first thought is the root's own hidden state
(``markers``); with ``exact_thoughts`` a problem gets one thought per hop of its path at most, the
token after the last thought is ``[A]``, and so the model learns when to stop (the engine thinks
until it predicts ``[A]``: ``config.coconut["stop_on"]``). With ``queries`` > 1 (graph tokens) each pass
also asks ``queries`` - 1 more questions on every graph's statements
(:func:`~explorer.tasks.prosqa.generate.graph_questions`), all reading one pass over the statements.

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

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import training
from ..errors import InputError
from ..tasks.prosqa import graph_tokens
from ..tasks.prosqa.graph_tokens import build_graph_tokenizer
from ..tasks.prosqa.tokenizer import build_tokenizer
from ..models.build import ARCHS, build_base_model
from ..training import LoopConfig, config_from_dict, load_pretrained, training_main
from ..tasks.prosqa.generate import graph_questions
from ..tasks.prosqa.graph import hop_sets
from .data import (Tokenized, build_example, coconut_forward, collate, collate_grouped, frontier_loss, frontier_targets,
                   reached_targets, tokenize_problem)
from .engine import BOT, EOT, LATENT

THOUGHT_TARGETS = ("frontier", "reach")
"""What the frontier loss teaches thought k (``TrainConfig.thought_targets``)."""

STATE_FORMAT = "latent-explorer.coconut-trainer/2"


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


# -- configuration ------------------------------------------------------------------------------------
ENCODINGS = ("words", "graph")


@dataclass
class TrainConfig:
    """The curriculum and optimisation settings (defaults: Coconut's ProsQA run, on a small GPT-2)."""

    method: str = "coconut"            # "coconut", "cot", "no_cot"
    c_thought: int = 1
    max_latent_stage: int = 6
    epochs_per_stage: int = 5
    start_stage: int = 0                # the stage of epoch 0: a run from a --base that already went through the
                                        # earlier stages goes on at its last one instead of starting again at CoT
    num_epochs: int = 50
    pad_latent_to_max: bool = True
    uniform_prob: float = 0.0
    frontier_loss: float = 0.0          # Coconut-BFS: weight of each thought's frontier loss (graph tokens)
    thought_targets: str = "frontier"   # what frontier_loss teaches thought k: "frontier" (the nodes exactly k hops
                                        # from the root, Coconut-BFS) or "reach" (every node within k hops)
    separation_weight: float = 0.0      # Coconut-BFS: weight of a soft margin of each thought's targets over every
                                        # node the root does not reach (data.frontier_loss)
    exact_thoughts: bool = False        # graph tokens: as many thoughts as the path has hops, then "[A]": the model
                                        # learns when to stop thinking (the superposition paper's layout)
    markers: str = "auto"               # <bot>/<eot> around the thoughts: "yes", "no", or "auto" (words: yes, as
                                        # in Coconut; graph tokens: no, as in the superposition paper)
    queries: int = 1                    # graph tokens: questions per graph in one pass, the problem's own and
                                        # queries - 1 more drawn on its statements (the batch counts graphs)
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
    encoding: str = "words"             # "words" (ProsQA's sentences) or "graph" (graph tokens, relabelled per epoch)
    arch: str = "gpt2"                  # "gpt2" (absolute positions) or "llama" (rotary positions)
    warmup_steps: int = 0
    schedule: str = "constant"          # "constant" or "cosine" (see explorer.training.LoopConfig)
    group_by_length: bool = True        # batches of problems of similar length (less padding; explorer.training.recipe)
    precision: str = "fp32"             # "bf16": autocast on CUDA
    save_minutes: float | None = None   # also checkpoint every this many minutes
    max_minutes: float | None = None    # stop (resumably) after this many minutes of training

    def check(self) -> None:
        if self.method not in ("coconut", "cot", "no_cot"):
            raise InputError(f"method must be 'coconut', 'cot' or 'no_cot', got {self.method!r}.")
        if self.c_thought < 1 or self.max_latent_stage < 0 or self.epochs_per_stage < 1 or self.start_stage < 0:
            raise InputError("c_thought and epochs_per_stage must be >= 1, and max_latent_stage and start_stage >= 0.")
        if not 0.0 <= self.uniform_prob <= 1.0:
            raise InputError(f"uniform_prob must be in [0, 1], got {self.uniform_prob}.")
        if self.frontier_loss < 0 or (self.frontier_loss and (self.method != "coconut" or self.encoding != "graph")):
            raise InputError(f"frontier_loss (got {self.frontier_loss}) is a weight >= 0 and teaches continuous "
                             "thoughts their BFS frontier in graph tokens: use it with --method coconut "
                             "--encoding graph, or set it to 0.")
        if self.thought_targets not in THOUGHT_TARGETS:
            raise InputError(f"thought_targets must be one of {', '.join(THOUGHT_TARGETS)}, "
                             f"got {self.thought_targets!r}.")
        if self.separation_weight < 0 or (self.separation_weight and not self.frontier_loss):
            raise InputError(f"separation_weight (got {self.separation_weight}) is a weight >= 0 of a margin between "
                             "each thought's frontier and the nodes its root does not reach; give the frontier loss a "
                             "weight too (--frontier-loss 1), or set it to 0.")
        if self.thought_targets != "frontier" and not self.frontier_loss:
            raise InputError(f"thought_targets={self.thought_targets!r} says what the frontier loss teaches each "
                             "thought; give it a weight (--frontier-loss 1) or leave thought_targets at 'frontier'.")
        if self.arch not in ARCHS:
            raise InputError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}.")
        if self.exact_thoughts and (self.method != "coconut" or self.encoding != "graph"):
            raise InputError("exact_thoughts (one thought per hop, then [A]) is for --method coconut --encoding graph; "
                             "leave it off for other runs.")
        if self.queries < 1 or (self.queries > 1 and (self.encoding != "graph" or self.uses_markers())):
            raise InputError(f"queries (got {self.queries}) asks more questions of each graph in graph tokens without "
                             "thought markers: use it with --encoding graph, or leave it at 1.")
        if self.markers not in ("auto", "yes", "no"):
            raise InputError(f"markers must be 'auto', 'yes' or 'no', got {self.markers!r}.")
        if self.encoding not in ENCODINGS:
            raise InputError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}.")
        if self.n_layer < 1 or self.n_head < 1 or self.n_embd % self.n_head:
            raise InputError(f"n_layer and n_head must be >= 1 and n_embd ({self.n_embd}) a multiple of n_head "
                             f"({self.n_head}).")
        self.loop().check()

    def loop(self) -> LoopConfig:
        """The settings of the shared training loop."""
        return LoopConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, max_steps=self.max_steps,
                          lr=self.lr, weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                          schedule=self.schedule, grad_clip=self.grad_clip, save_every=self.save_every,
                          save_minutes=self.save_minutes, max_minutes=self.max_minutes, seed=self.seed,
                          device=self.device, threads=self.threads, precision=self.precision)

    def uses_markers(self) -> bool:
        """Whether thoughts sit between ``<bot>`` and ``<eot>`` (Coconut's layout) or follow the question
        directly, the first one fed the hidden state of the question's last token (the superposition
        paper's layout for graph tokens: that state already holds the root's children)."""
        return self.markers == "yes" or (self.markers == "auto" and self.encoding == "words")

    def stage(self, epoch: int) -> int:
        return self.start_stage + epoch // self.epochs_per_stage if self.method == "coconut" else 0

    def n_thoughts(self, stage: int) -> int:
        if self.method != "coconut":
            return 0
        return self.c_thought * min(stage, self.max_latent_stage)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, d)


def _reached(problem: dict[str, Any], root: int | None = None) -> set[int]:
    """The nodes the problem's root (or ``root``) reaches, itself included."""
    p = problem if root is None else {**problem, "root": root}
    return {int(p["root"]), *hop_sets(p, 0)[1]}


# -- the recipe ---------------------------------------------------------------------------------------
class CoconutRecipe(training.ProblemRecipe):
    """The Coconut curriculum (and its CoT / no-CoT baselines) as a recipe of the one trainer."""

    format = STATE_FORMAT
    resume_keys = ("method", "c_thought", "max_latent_stage", "epochs_per_stage", "start_stage", "uniform_prob",
                   "encoding", "arch", "frontier_loss", "thought_targets", "markers", "exact_thoughts",
                   "group_by_length", "queries", "separation_weight")

    def __init__(self, data: Sequence[dict[str, Any]], cfg: TrainConfig, **kw: Any) -> None:
        super().__init__(data, cfg, **kw)
        self.name, self.stage = cfg.method, 0
        self.ids: dict[str, int] = {}

    def build(self, resume: Path | None) -> torch.nn.Module:
        src = resume if resume is not None else self.base
        if src is not None:
            self.hf, self.tokenizer = load_pretrained(src)
        else:
            c = self.cfg
            self.tokenizer = build_graph_tokenizer() if c.encoding == "graph" else build_tokenizer()
            self.hf = build_base_model(self.tokenizer, n_layer=c.n_layer, n_embd=c.n_embd, n_head=c.n_head,
                                       n_positions=c.n_positions, seed=c.seed, arch=c.arch)
        self.ids = add_thought_tokens(self.hf, self.tokenizer) if self.cfg.method == "coconut" else {}
        if self.cfg.encoding == "words":
            self.tok = [tokenize_problem(self.tokenizer, p) for p in self.data]
        else:   # graph tokens: read once (a typed error now, not mid-run, for a problem they cannot hold),
            # then relabelled each epoch (_tokenized)
            self.graphs = [graph_tokens.encode(p) for p in self.data]
            self.walks = [self._targets(p) if self.cfg.frontier_loss else [] for p in self.data]
            self.reached = [_reached(p) if self.cfg.separation_weight else [] for p in self.data]
        return self.hf

    def _targets(self, problem: dict[str, Any], root: int | None = None) -> list[set[int]]:
        """Per thought k = 1, 2, …: the nodes its frontier loss teaches (see ``thought_targets``), for the
        problem's question or one from ``root``."""
        walks = hop_sets(problem if root is None else {**problem, "root": root}, self.cfg.max_latent_stage)[0][1:]
        if self.cfg.thought_targets == "reach":
            walks = [set().union(*walks[:k + 1]) for k in range(len(walks))]
        return walks

    def save_model(self, model: torch.nn.Module, folder: Path) -> None:
        self._stamp()
        model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def _stamp(self) -> None:
        """Record in the model config what a reader needs to think with it."""
        self.hf.config.coconut = {"method": self.cfg.method, "c_thought": self.cfg.c_thought,
                                  "max_latent_stage": self.cfg.max_latent_stage, "stage": self.stage,
                                  "n_thoughts": self.cfg.n_thoughts(self.stage), "encoding": self.cfg.encoding,
                                  "markers": self.cfg.uses_markers(),
                                  "stop_on": graph_tokens.A if self.cfg.exact_thoughts else None}

    def begin_epoch(self, epoch: int) -> int:
        self.stage = self.cfg.stage(epoch)
        return self.stage

    def _tokenized(self, j: int, rng: random.Random) -> Tokenized:
        """Problem ``j``'s question (graph tokens: under a relabelling drawn with ``rng``)."""
        return self._questions(j, rng, None)[0]

    def _questions(self, j: int, rng: random.Random, asked: random.Random | None) -> list[Tokenized]:
        """Problem ``j``'s question and, with ``queries``, ``queries - 1`` more on its statements drawn with
        ``asked`` (:func:`~explorer.tasks.prosqa.generate.graph_questions`), all under one relabelling."""
        if self.cfg.encoding == "words":
            return [self.tok[j]]
        g = self.graphs[j]   # graph tokens: a fresh relabelling of the problem's nodes every epoch
        g = g.relabelled(graph_tokens.relabelling(len(g.labels), rng))
        sep = self.cfg.separation_weight
        todo = [(g, self.walks[j], self.reached[j])]
        for q in graph_questions(self.data[j], asked, self.cfg.queries - 1) if asked is not None else ():
            todo.append((g.asking(q["root"], q["options"], q["path"]),
                         self._targets(self.data[j], q["root"]) if self.cfg.frontier_loss else [],
                         _reached(self.data[j], q["root"]) if sep else []))
        return [Tokenized(x.question, x.steps, x.answer,
                          [sorted(g.labels[n] for n in w) for w in walks] if self.cfg.frontier_loss else None,
                          sorted(g.labels[n] for n in reached) if sep else None)
                for x, walks, reached in todo]

    def epoch_batches(self, epoch: int) -> Sequence[dict[str, torch.Tensor]]:
        """The batches of one epoch (a seeded shuffle; per-example stage draws for uniform_prob), each
        collated when the loop reaches it."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        relabel = random.Random(self.cfg.seed * 1_000_003 + epoch)
        asked = random.Random(self.cfg.seed * 1_000_003 + epoch + 500_009) if self.cfg.queries > 1 else None
        order = rng.permutation(len(self.data))
        stage = self.cfg.stage(epoch)
        groups: list[list[tuple[tuple[list[int], list[int]], list[list[int]], int, list[int]]]] = []
        for j in order:
            group = []
            for t in self._questions(int(j), relabel, asked):
                s = stage
                if self.cfg.method == "coconut" and self.cfg.uniform_prob and rng.random() < self.cfg.uniform_prob:
                    s = int(rng.integers(0, len(t.steps) + 1))
                group.append((build_example(t, s, self.cfg, self.ids), t.frontiers or [], len(t.question), t.reached or []))
            groups.append(group)
        return _Batches(self, groups, training.length_grouped_batches(
            [len(g[0][0][0]) for g in groups], self.cfg.batch_size, self.cfg.seed * 1_000_003 + epoch,
            by_length=self.cfg.group_by_length))

    def collate(self, groups: Sequence[Sequence[tuple[tuple[list[int], list[int]], list[list[int]], int, list[int]]]]
                ) -> dict[str, torch.Tensor]:
        """One batch of problems, each a group of (example, frontiers, question length, nodes reached). With ``queries``
        the questions on a graph share its statements, read once (:func:`collate_grouped`)."""
        pad = int(self.tokenizer.pad_token_id)
        if self.cfg.queries > 1:   # every question on a graph is "[Q] a b [R] root" after the same statements
            batch = collate_grouped([[ex for ex, *_ in g] for g in groups],
                                    [g[0][2] - graph_tokens.ASK_TOKENS for g in groups], pad)
            Q = max(len(g) for g in groups)   # row k·Q + i: group k's question i (its ids after the statements)
            exs = [(row, []) for row in batch["input_ids"].tolist()]
            frs = [g[i][1] if i < len(g) else [] for g in groups for i in range(Q)]
            rs = [g[i][3] if i < len(g) else [] for g in groups for i in range(Q)]
        else:
            exs = [ex for g in groups for ex, *_ in g]
            frs = [f for g in groups for _, f, *_ in g]
            rs = [r for g in groups for *_, r in g]
            batch = collate(exs, pad, self.ids.get(LATENT))
        if self.cfg.frontier_loss:
            batch["frontier"] = frontier_targets(exs, frs, self.ids[LATENT], self.cfg.c_thought, graph_tokens.MAX_NODES)
        if self.cfg.separation_weight:
            batch["reached"] = reached_targets(rs, graph_tokens.MAX_NODES)
        return batch

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        loss, logits = coconut_forward(model, batch, self.ids.get(LATENT))
        if "frontier" not in batch:
            return loss, {}
        f = frontier_loss(logits, batch["input_ids"], self.ids[LATENT], batch["frontier"], batch.get("reached"),
                          self.cfg.separation_weight)
        return loss + self.cfg.frontier_loss * f, {"frontier": round(float(f.detach()), 3)}

    def evaluate(self, model: torch.nn.Module, epoch: int) -> dict[str, Any] | None:
        if not self.eval_data:
            return None
        from ..model import Model
        from .evaluate import evaluate

        self._stamp()
        mode = "coconut" if self.cfg.method == "coconut" else ("no_cot" if self.cfg.method == "no_cot" else "cot")
        scored = Model(model, self.tokenizer, name="training")
        n = self.cfg.n_thoughts(self.stage)
        res = evaluate(scored, self.eval_data, mode, n_thoughts=n, limit=self.eval_limit)
        out = {k: res[k] for k in ("accuracy", "n", "mean_generated_tokens")}
        if mode == "coconut" and n and self.cfg.encoding == "graph":   # and read off the thoughts (--readout peak)
            out["peak_accuracy"] = evaluate(scored, self.eval_data, mode, n_thoughts=n, limit=self.eval_limit,
                                            readout="peak")["accuracy"]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"thought_ids": self.ids}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass  # the stage follows from the epoch; the thought ids from the tokenizer


class _Batches(Sequence[dict[str, torch.Tensor]]):
    """An epoch's batches, collated when the loop reaches each (an epoch of grouped questions is too
    large to hold as tensors at once)."""

    def __init__(self, recipe: CoconutRecipe, groups: list[Any], batches: list[list[int]]) -> None:
        self.recipe, self.groups, self.batches = recipe, groups, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return self.recipe.collate([self.groups[j] for j in self.batches[i]])


class Trainer(training.ProblemTrainer):
    """``Trainer(train_data, run_dir, cfg).train()``; resumes from ``run_dir/latest`` when it exists.

    ``base``: a checkpoint folder to start from (default: a new GPT-2 from :func:`build_base_model`
    with the task's tokenizer: ProsQA words, or graph tokens with ``encoding="graph"``)."""

    recipe_class = CoconutRecipe
    config_class = TrainConfig
    eval_limit = 100


def train(train_data: Sequence[dict[str, Any]], run_dir: str | Path, cfg: TrainConfig | None = None,
          **kw: Any) -> training.TrainState:
    """Train (or resume) a run; see :class:`Trainer`."""
    return Trainer(train_data, run_dir, cfg, **kw).train()


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer train coconut RUN_DIR --train train.json [--generate N] [--valid valid.json] ...``."""
    return training_main(argv, prog="latent-explorer train coconut", description="Train continuous thoughts on ProsQA.",
                         config_cls=TrainConfig, train=train, eval_limit=100,
                         done=lambda st: f"done: {st.global_step} steps, epoch {st.epoch}, stage {st.stage}")


if __name__ == "__main__":
    sys.exit(main())
