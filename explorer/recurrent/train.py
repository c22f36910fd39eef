"""Training a recurrent-depth model on ProsQA with Huginn's recipe, and evaluating it per iteration count.

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
:func:`explorer.thoughts.train.build_tokenizer`.

Runs are seeded, show a tqdm bar, save every ``save_every`` steps into ``run_dir/latest`` (a HF
folder — ``explorer.recurrent.load_recurrent(run_dir / "latest")`` works — plus
``trainer_state.json`` and ``optimizer.pt``, read back with ``weights_only=True``), and resume.

:func:`evaluate_iterations` measures accuracy at fixed iteration counts and with adaptive exit.
"""
from __future__ import annotations

import argparse
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
from ..errors import ExplorerError, InputError
from .model import RecurrentConfig, RecurrentForCausalLM, sample_recurrence

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


def recurrence_draw(cfg: TrainConfig, generator: torch.Generator | None = None) -> tuple[int, int]:
    """``(n, k)``: iterations without and with gradient for one training step."""
    if cfg.recurrence == "fixed":
        return max(cfg.mean_recurrence - cfg.backprop_depth, 0), min(cfg.mean_recurrence, cfg.backprop_depth)
    return sample_recurrence(cfg.mean_recurrence, cfg.backprop_depth, generator)


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


def encode_problem(tokenizer: Any, problem: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(input_ids, labels): question + "\\n" then "### answer" + EOS; labels -100 on the question.
    A problem's extra ``queries`` (see :func:`~explorer.tasks.prosqa.generate.reachability_queries`)
    follow the same way after the EOS, each answer with its own label, so one pass over the graph
    teaches several answers; evaluation sees the ProsQA question alone and stops at the first EOS."""
    enc = lambda s: list(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    eos = [int(tokenizer.eos_token_id)]
    ids: list[int] = []
    labels: list[int] = []
    for q_text, a_text in [(problem["question"], problem["answer"]),
                           *((x["question"], x["answer"]) for x in problem.get("queries", ()))]:
        q, a = enc(q_text + "\n"), enc("### " + a_text) + eos
        ids += q + a
        labels += [-100] * len(q) + a
    return ids, labels


def task_of(model: Any) -> str:
    """The ProsQA format a recurrent model was trained on (``"answer"`` for runs from before the
    ``task`` setting)."""
    return str(getattr(getattr(model, "hf", model).config, "prosqa_task", "answer"))


def name_token_ids(tokenizer: Any, names: Sequence[str]) -> list[int]:
    """The token of each name as it appears mid-text (``" wumpus"``); an error for a name the
    tokenizer does not know (it would read as ``<unk>``)."""
    from ..thoughts.frontier import node_token_ids

    ids = node_token_ids(tokenizer, names)
    unk = getattr(tokenizer, "unk_token_id", None)
    bad = [n for n, i in zip(names, ids) if unk is not None and i == unk]
    if bad:
        raise InputError(f"the tokenizer has no token for {', '.join(bad)}; build it with "
                         "explorer.thoughts.train.build_tokenizer(names) over the problems' names.")
    return ids


def encode_reach(tokenizer: Any, problem: dict[str, Any], rng: random.Random, queries: int,
                 max_hops: int = 0) -> tuple[list[int], list[tuple[int, list[int], list[int]]]]:
    """(input_ids, [(position, token ids of the concepts reached, their hop distances)]): the
    compact graph in an order drawn with ``rng``, then ``queries`` questions ``" Is X"`` about
    nodes drawn with ``rng``; position is the question's last token, where the answer is read."""
    from ..tasks.prosqa.compact import compact_graph, query, reach_sets, statements

    sym = problem["idx_to_symbol"]
    order = statements(problem)
    rng.shuffle(order)
    enc = lambda s: list(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    ids = enc(compact_graph(problem, order))
    sets = {s: sorted(r.items()) for s, r in reach_sets(problem, max_hops or None).items() if r}
    subjects = sorted(sets)
    if not subjects:
        raise InputError("a problem has no statements; pass ProsQA problems with edges.")
    out = []
    for _ in range(queries):
        s = rng.choice(subjects)
        ids += enc(query(sym[s]))
        out.append((len(ids) - 1, name_token_ids(tokenizer, [sym[v] for v, _ in sets[s]]), [h for _, h in sets[s]]))
    return ids, out


def collate_reach(examples: Sequence[tuple[list[int], list[tuple[int, list[int], list[int]]]]], pad_id: int,
                  vocab: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``positions`` (n_questions, 2: row, position), ``target``
    (n_questions, vocab): each question's uniform distribution over the concepts it reaches, and
    ``hops`` (n_questions, vocab): each concept's hop distance (0: not reached)."""
    T = max(len(i) for i, _ in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    pos, hops = [], []
    for b, (i, qs) in enumerate(examples):
        ids[b, :len(i)] = torch.tensor(i)
        for p, reached, dist in qs:
            pos.append((b, p))
            h = torch.zeros(vocab, dtype=torch.long)
            h[reached] = torch.tensor(dist)
            hops.append(h)
    hops_t = torch.stack(hops)
    return {"input_ids": ids, "positions": torch.tensor(pos, dtype=torch.long), "target": within_hops(hops_t, None),
            "hops": hops_t}


def within_hops(hops: torch.Tensor, j: int | None) -> torch.Tensor:
    """The uniform distribution over the concepts at most ``j`` hops away (``None``: every one reached)."""
    m = (hops > 0) if j is None else (hops > 0) & (hops <= j)
    m = m.float()
    return m / m.sum(-1, keepdim=True).clamp_min(1.0)


def reach_loss(logits: torch.Tensor, positions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the next-token distributions at ``positions`` and ``target``
    (``logits`` (B, T, V), or (n_questions, V) already read at the positions when ``positions`` is None)."""
    lp = (logits if positions is None else logits[positions[:, 0], positions[:, 1]]).float().log_softmax(-1)
    return -(target.to(lp.device) * lp[:, : target.shape[1]]).sum(-1).mean()


def iteration_loss(hf: Any, batch: dict[str, torch.Tensor], n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """``supervise="iterations"``: ``n`` iterations without gradient, then ``k`` with; after
    iteration j (counted from the first) the answer is taught as the concepts within j hops.
    The mean of the ``k`` losses. The same draws as the model's forward (initial state from
    ``generator``)."""
    e = hf.prelude(hf.embed(batch["input_ids"]))
    x = hf.initial_state(e, generator=generator)
    with torch.no_grad():
        for _ in range(n):
            x = hf.core_step(x, e)
    rows, cols = batch["positions"][:, 0], batch["positions"][:, 1]
    losses = []
    for j in range(n + 1, n + k + 1):
        x = hf.core_step(x, e)
        losses.append(reach_loss(hf.coda(x)[rows, cols], None, within_hops(batch["hops"], j)))
    return torch.stack(losses).mean()


def collate_right(examples: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(i) for i, _ in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), -100, dtype=torch.long)
    for b, (i, lab) in enumerate(examples):
        ids[b, :len(i)] = torch.tensor(i)
        labels[b, :len(lab)] = torch.tensor(lab)
    return {"input_ids": ids, "labels": labels}


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
        from ..thoughts.train import build_tokenizer

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


# -- evaluation ---------------------------------------------------------------------------------------
def evaluate_iterations(model: Any, data: Sequence[dict[str, Any]], iterations: Sequence[int] = (1, 2, 4, 8, 16, 32),
                        exit: str | None = "kl", threshold: float | None = None, *, max_iters: int | None = None,
                        limit: int | None = None, max_new_tokens: int = 16, seed: int = 0,
                        progress: bool = False) -> dict[str, Any]:
    """ProsQA accuracy (Coconut's answer check) of a recurrent model at each fixed iteration
    count, and with adaptive exit (``exit``; ``None`` skips it) up to ``max_iters`` (default: the
    largest of ``iterations``). Returns ``accuracy`` ({r: acc}), ``adaptive`` (``accuracy``,
    ``mean_iterations`` per generated token, ``mean_iterations_by_hops`` and ``accuracy_by_hops``,
    hops = the length of the reference reasoning path; ``answer_iterations`` and
    ``answer_iterations_by_hops``: the iterations of the one token that names the answer, where the
    search happens), ``n``, and per-problem ``outputs``."""
    from ..tasks.prosqa.evaluate import is_correct, prompt_of
    from .engine import generate

    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list (e.g. load(path)).")
    iters = sorted({int(r) for r in iterations})
    if not iters or iters[0] < 1:
        raise InputError(f"iterations must be whole numbers >= 1, got {list(iterations)}.")
    cap = int(max_iters or iters[-1])
    if task_of(model) == "reach":
        return _evaluate_reach(model, items, iters, exit, threshold, cap, seed, progress)
    runs: list[tuple[str, int]] = [("none", r) for r in iters] + ([(exit, cap)] if exit else [])
    it: Any = [(p, run) for p in items for run in runs]
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="ProsQA recurrent", unit="run")
    correct: dict[Any, list[bool]] = {run: [] for run in runs}
    outputs: dict[Any, list[str]] = {run: [] for run in runs}
    used: list[float] = []
    at_answer: list[int] = []
    hops: list[int] = []
    for prob, run in it:
        crit, r = run
        res = generate(model, prompt_of(prob), max_new_tokens, exit=crit, max_iters=r, seed=seed,
                       threshold=threshold if crit != "none" else None)
        correct[run].append(is_correct(res.text, prob["answer"]))
        outputs[run].append(res.text)
        if exit and run == runs[-1]:
            used.append(res.mean_iterations)
            at_answer.append(res.iterations[_answer_token(model, res.token_ids)] if res.iterations else 0)
            hops.append(len(prob.get("steps", [])))
    out: dict[str, Any] = {"n": len(items), "iterations": iters,
                           "accuracy": {r: sum(correct[("none", r)]) / len(items) for r in iters},
                           "outputs": {str(r): outputs[("none", r)] for r in iters}}
    if exit:
        ok = correct[runs[-1]]
        by: dict[int, list[int]] = {}
        for i, h in enumerate(hops):
            by.setdefault(h, []).append(i)
        out["adaptive"] = {"exit": exit, "threshold": threshold, "max_iters": cap, "accuracy": sum(ok) / len(ok),
                           "mean_iterations": float(np.mean(used)),
                           "mean_iterations_by_hops": {h: float(np.mean([used[i] for i in ix])) for h, ix in sorted(by.items())},
                           "answer_iterations": float(np.mean(at_answer)),
                           "answer_iterations_by_hops": {h: float(np.mean([at_answer[i] for i in ix]))
                                                         for h, ix in sorted(by.items())},
                           "accuracy_by_hops": {h: sum(ok[i] for i in ix) / len(ix) for h, ix in sorted(by.items())},
                           "outputs": outputs[runs[-1]]}
    return out


@torch.inference_mode()
def reach_logits(model: Any, problems: Sequence[dict[str, Any]], iterations: Sequence[int], *, seed: int = 0,
                 batch_size: int = 32) -> dict[int, torch.Tensor]:
    """{r: (n, vocab) next-token logits after each problem's compact prompt ``... Is <root>``,
    after r core iterations}; the initial states are the engine's (:func:`~explorer.recurrent.engine.initial_states`),
    so these are the logits :func:`~explorer.recurrent.engine.iterate` shows at ``iter.r``."""
    from ..tasks.prosqa.compact import compact_prompt
    from .engine import initial_states

    hf, tok = model.hf, model.tokenizer
    hf.eval()
    seqs = [list(tok(compact_prompt(p), add_special_tokens=False)["input_ids"]) for p in problems]
    dev = hf.transformer.wte.weight.device
    init = initial_states(hf, max(len(s) for s in seqs), seed)
    out: dict[int, list[torch.Tensor]] = {int(r): [] for r in iterations}
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i:i + batch_size]
        T = max(len(s) for s in chunk)
        x = torch.full((len(chunk), T), int(tok.pad_token_id), dtype=torch.long, device=dev)
        for b, s in enumerate(chunk):
            x[b, :len(s)] = torch.tensor(s)
        last = torch.tensor([len(s) - 1 for s in chunk], device=dev)
        for r in out:
            lg = hf(x, num_steps=r, input_states=init[:, :T].expand(len(chunk), -1, -1)).logits
            out[r].append(lg[torch.arange(len(chunk), device=dev), last].float().cpu())
    return {r: torch.cat(v) for r, v in out.items()}


def distance_mass(model: Any, problems: Sequence[dict[str, Any]], max_iters: int = 16, *,
                  seed: int = 0) -> dict[str, Any]:
    """Where a ``"reach"`` model's answer sits after each core iteration: at the question's last
    token, the next-token probability of every graph node summed by the node's shortest hop
    distance from the root (``"1"``, ``"2"``, … and ``"unreachable"``; the root itself is left
    out), averaged over ``problems``. Returns ``iterations`` (1..max_iters), ``mass`` ({group:
    [mean per iteration]}) and ``n``. A model that searches one hop per iteration moves its
    mass outwards as the iterations go on."""
    from ..thoughts.frontier import hop_sets, node_probabilities

    items = list(problems)
    if not items or max_iters < 1:
        raise InputError("pass at least one problem and max_iters >= 1.")
    its = list(range(1, int(max_iters) + 1))
    logits = reach_logits(model, items, its, seed=seed)
    sums: dict[str, np.ndarray] = {}
    for i, p in enumerate(items):
        _, dist = hop_sets(p, 0)
        ids = name_token_ids(model.tokenizer, p["idx_to_symbol"])
        keys = [str(dist[v]) if v in dist else "unreachable" for v in range(len(ids))]
        for j, r in enumerate(its):
            per = node_probabilities(logits[r][i].softmax(-1).numpy(), ids)
            for v, k in enumerate(keys):
                if k != "0":
                    sums.setdefault(k, np.zeros(len(its)))[j] += per[v]
    order = sorted((k for k in sums if k != "unreachable"), key=int) + (["unreachable"] if "unreachable" in sums else [])
    return {"iterations": its, "mass": {k: (sums[k] / len(items)).tolist() for k in order}, "n": len(items)}


def _evaluate_reach(model: Any, items: list[dict[str, Any]], iters: list[int], exit: str | None,
                    threshold: float | None, cap: int, seed: int, progress: bool) -> dict[str, Any]:
    """:func:`evaluate_iterations` for a model of the ``"reach"`` task: the answer is the option
    with the higher logit after ``... Is <root>``; iterations are those of that one position."""
    from ..tasks.prosqa.compact import compact_prompt, options
    from .engine import initial_states, next_token_adaptive
    from .exits import check_criterion

    tok = model.tokenizer
    pairs = [name_token_ids(tok, options(p)) for p in items]
    names = [options(p) for p in items]
    logits = reach_logits(model, items, iters, seed=seed)
    picks = {r: [names[i][0] if logits[r][i, a] > logits[r][i, b] else names[i][1] for i, (a, b) in enumerate(pairs)]
             for r in iters}
    out: dict[str, Any] = {"n": len(items), "iterations": iters, "task": "reach",
                           "accuracy": {r: float(np.mean([c == n[0] for c, n in zip(picks[r], names)])) for r in iters},
                           "outputs": {str(r): picks[r] for r in iters}}
    if not exit:
        return out
    thr = check_criterion(exit, threshold)
    hf = model.hf
    it: Any = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc=f"ProsQA recurrent, exit={exit}", unit="problem")
    ok, used, hops, chosen = [], [], [], []
    for p, (a, b), (right, wrong) in zip(it, pairs, names):
        ids = torch.tensor([tok(compact_prompt(p), add_special_tokens=False)["input_ids"]],
                           device=hf.transformer.wte.weight.device)
        lg, r, _ = next_token_adaptive(hf, ids, initial_states(hf, ids.shape[1], seed), exit, thr, cap)
        chosen.append(right if lg[a] > lg[b] else wrong)
        ok.append(chosen[-1] == right)
        used.append(r)
        hops.append(len(p.get("steps", [])))
    by: dict[int, list[int]] = {}
    for i, h in enumerate(hops):
        by.setdefault(h, []).append(i)
    per_hops = {h: float(np.mean([used[i] for i in ix])) for h, ix in sorted(by.items())}
    out["adaptive"] = {"exit": exit, "threshold": thr, "max_iters": cap, "accuracy": float(np.mean(ok)),
                       "mean_iterations": float(np.mean(used)), "mean_iterations_by_hops": per_hops,
                       "answer_iterations": float(np.mean(used)), "answer_iterations_by_hops": per_hops,
                       "accuracy_by_hops": {h: float(np.mean([ok[i] for i in ix])) for h, ix in sorted(by.items())},
                       "outputs": chosen}
    return out


@torch.inference_mode()
def answer_accuracy(model: Any, data: Sequence[dict[str, Any]], iterations: Sequence[int] = (1, 4, 8, 16), *,
                    limit: int | None = None, seed: int = 0) -> dict[int, dict[str, Any]]:
    """Teacher-forced accuracy of every answer in the training format (the ProsQA question and a
    problem's extra ``queries``), per iteration count: one forward per problem, read at the token
    that names each answer's concept. Two-way questions ("Is P a A or B?") count as right when the
    right option scores higher than the other (``two_way``, and ``two_way_by_hops`` by the answer's
    distance from P); lookups ("What is X?") when the top token is any of X's direct successors
    (``lookup``). A quick gauge of a run long before free-running answers leave chance.
    ``lookup_blind`` is what a guess that ignores the subject scores on the same lookups (the
    concept most often named after a person, or after a concept, by the question's kind;
    :func:`~explorer.tasks.prosqa.audit.lookup_guesses`): a run finds statements by their subject
    only where ``lookup`` is clearly above it."""
    from ..tasks.prosqa.audit import lookup_guesses
    from ..tasks.prosqa.generate import distances

    hf, tok = model.hf, model.tokenizer
    hf.eval()
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list.")
    blind = [g for p in items for g in lookup_guesses(p)]
    out: dict[int, dict[str, Any]] = {}
    for r in sorted({int(x) for x in iterations}):
        two: dict[int, list[bool]] = {}
        look: list[bool] = []
        for p in items:
            ids, _ = encode_problem(tok, p)
            x = torch.tensor([ids], device=hf.transformer.wte.weight.device)
            logits = hf(x, num_steps=(r, 0), generator=torch.Generator().manual_seed(seed)).logits[0].float().cpu()
            sym, edges = p["idx_to_symbol"], p["edges"]
            ends = [i for i, t in enumerate(ids) if t == tok.eos_token_id]
            qas = [("Is " + p["question"].rsplit(" Is ", 1)[-1], p["answer"])]
            qas += [(q["question"], q["answer"]) for q in p.get("queries", ())]
            for (question, _answer), end in zip(qas, ends):
                at = end - 3  # ... " a" <concept> "." EOS: the logits at " a" name the concept
                if question.startswith("What is "):
                    subject = question[len("What is "):-1].removeprefix("every ")
                    ok = {sym[b] for a, b in edges if sym[a] == subject}
                    look.append(tok.decode([int(logits[at].argmax())]).strip() in ok)
                    continue
                person, options = question[len("Is "):-1].split(" a ", 1)
                a, b = options.split(" or ")
                right = tok.decode([ids[at + 1]]).strip()
                wrong = b if right == a else a
                ia, ib = (tok.convert_tokens_to_ids(" " + w) for w in (right, wrong))
                hops = distances(len(sym), edges, sym.index(person)).get(sym.index(right), 0)
                two.setdefault(hops, []).append(bool(logits[at, ia] > logits[at, ib]))
        flat = [v for vs in two.values() for v in vs]
        out[r] = {"two_way": float(np.mean(flat)) if flat else None,
                  "two_way_by_hops": {h: float(np.mean(v)) for h, v in sorted(two.items())},
                  "lookup": float(np.mean(look)) if look else None,
                  "lookup_blind": float(np.mean(blind)) if blind else None,
                  "n_two_way": len(flat), "n_lookup": len(look)}
    return out


def _answer_token(model: Any, ids: Sequence[int]) -> int:
    """Index of the generated token that names the answer's concept (the one after " a"; the last if none)."""
    tok = model.tokenizer
    for i in range(1, len(ids)):
        if tok.decode([int(ids[i - 1])]).strip() == "a":
            return i
    return len(ids) - 1


def eval_main(argv: list[str] | None = None) -> int:
    """``latent-explorer prosqa eval --method recurrent --iterations 1,2,4 --data DATA.json --model FOLDER --json``."""
    from ..tasks.prosqa import VALIDATION
    from ..tasks.prosqa.generate import load
    from .engine import load_recurrent
    from .exits import CRITERIA

    ap = argparse.ArgumentParser(prog="latent-explorer prosqa eval --method recurrent",
                                 description="ProsQA accuracy of a recurrent-depth model per iteration count.")
    ap.add_argument("--method", default="recurrent", choices=["recurrent"])
    ap.add_argument("--data", default=None, help="Coconut-format JSON file (default: the shipped real validation set)")
    ap.add_argument("--model", default="prosqa-recurrent", help="registered name or checkpoint folder")
    ap.add_argument("--iterations", default="1,2,4,8,16,32", help="comma-separated iteration counts")
    ap.add_argument("--exit", default="kl", choices=[*CRITERIA, "off"], help="adaptive exit criterion ('off': skip)")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print only the JSON summary (no progress bar)")
    ap.add_argument("--out", help="also write the full result (per-problem outputs) as JSON here")
    ap.add_argument("--teacher-forced", action="store_true",
                    help="instead: teacher-forced accuracy of every answer in the training format (two-way by hops, "
                         "lookups); pass --data with problems generated with --queries/--lookups")
    args = ap.parse_args(argv)
    try:
        its = [int(x) for x in args.iterations.split(",") if x.strip()]
    except ValueError:
        print(f"latent-explorer prosqa eval: --iterations must be like 1,2,4 (got {args.iterations!r})", file=sys.stderr)
        return 2
    if args.teacher_forced:
        try:
            tf = answer_accuracy(load_recurrent(args.model), load(args.data or VALIDATION), its, limit=args.limit,
                                 seed=args.seed)
        except ExplorerError as e:
            print(f"latent-explorer prosqa eval: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        print(json.dumps({"method": "recurrent", "model": str(args.model), "teacher_forced":
                          {str(r): {k: ({str(h): x for h, x in v.items()} if isinstance(v, dict) else v)
                                    for k, v in d.items()} for r, d in tf.items()}}))
        return 0
    try:
        res = evaluate_iterations(load_recurrent(args.model), load(args.data or VALIDATION), its,
                                  None if args.exit == "off" else args.exit, args.threshold, max_iters=args.max_iters,
                                  limit=args.limit, seed=args.seed, progress=not args.json)
    except ExplorerError as e:
        print(f"latent-explorer prosqa eval: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    summary = {"method": "recurrent", "model": str(args.model), "n": res["n"],
               "accuracy": {str(k): v for k, v in res["accuracy"].items()}}
    if "adaptive" in res:
        summary["adaptive"] = {k: ({str(h): x for h, x in v.items()} if isinstance(v, dict) else v)
                               for k, v in res["adaptive"].items() if k != "outputs"}
    print(json.dumps(summary))
    if args.out:
        from ..io import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(res, indent=1, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer train recurrent RUN_DIR --train train.json [--generate N] [--valid valid.json] ...``."""
    return training_main(argv, prog="latent-explorer train recurrent",
                         description="Train a recurrent-depth model on ProsQA (no chain of thought).",
                         config_cls=TrainConfig, train=train, eval_limit=50,
                         done=lambda st: f"done: {st.global_step} steps, epoch {st.epoch}")

if __name__ == "__main__":
    sys.exit(main())
