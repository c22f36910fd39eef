"""Coconut training data: ProsQA problems as token ids, the curriculum's examples, batches, and the
multi-pass forward that fills in continuous thoughts.

:func:`tokenize_problem` splits a problem into question, steps and answer; :func:`build_example`
writes it at a curriculum stage (stage k: the first k steps replaced by ``<bot>`` k·c thoughts
``<eot>``; ``cot`` / ``no_cot`` baselines); :func:`collate` left-pads a batch so that every example's
first thought sits at the same position; :func:`coconut_forward` fills each ``<latent>`` with the
last hidden state before it (one pass per thought over the KV cache) and returns loss and logits;
:func:`frontier_loss` is the Coconut-BFS term that teaches each thought its BFS frontier.
The tokenizer is the task's (:func:`explorer.tasks.prosqa.tokenizer.build_tokenizer`); the trainer
is :mod:`.train`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..errors import ExplorerError
from .engine import BOT, EOT, LATENT

if TYPE_CHECKING:
    from .train import TrainConfig


@dataclass
class Tokenized:
    question: list[int]
    steps: list[list[int]]
    answer: list[int]
    #: per hop h = 1, 2, …: the tokens of the nodes at the end of a walk of exactly h edges from the
    #: root (the BFS frontier a thought is taught to hold with ``frontier_loss``; with
    #: ``thought_targets="reach"``, of every node within h hops); graph tokens only
    frontiers: list[list[int]] | None = None


def tokenize_problem(tokenizer: Any, problem: dict[str, Any]) -> Tokenized:
    enc = lambda s: list(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    return Tokenized(enc(problem["question"] + "\n"), [enc(s + "\n") for s in problem["steps"]],
                     enc("### " + problem["answer"]) + [int(tokenizer.eos_token_id)])


def build_example(t: Tokenized, stage: int, cfg: TrainConfig, ids: dict[str, int]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one problem at ``stage``; labels are -100 up to and including ``<eot>``
    (up to the last thought when the config has no markers)."""
    if cfg.method == "no_cot":
        rest = t.answer
        return t.question + rest, [-100] * len(t.question) + rest
    if cfg.method == "cot":
        rest = [i for s in t.steps for i in s] + t.answer
        return t.question + rest, [-100] * len(t.question) + rest
    if stage > cfg.max_latent_stage:
        n_skip = len(t.steps)
        n_lat = cfg.max_latent_stage if cfg.pad_latent_to_max else min(len(t.steps), cfg.max_latent_stage)
    else:
        n_skip = n_lat = stage
    if cfg.exact_thoughts:   # never more thoughts than hops: the one after the last thought is "[A]"
        n_skip = n_lat = min(stage, cfg.max_latent_stage, len(t.steps))
    n_lat *= cfg.c_thought
    head = t.question + [ids[BOT]] + [ids[LATENT]] * n_lat + [ids[EOT]] if cfg.uses_markers() else \
        t.question + [ids[LATENT]] * n_lat
    rest = [i for s in t.steps[n_skip:] for i in s] + t.answer
    return head + rest, [-100] * len(head) + rest


def collate(examples: Sequence[tuple[list[int], list[int]]], pad_id: int, latent_id: int | None) -> dict[str, torch.Tensor]:
    """Pad a batch: left padding puts every example's first ``<latent>`` at the same position (so
    thoughts are filled in lock-step), right padding evens the lengths. Position ids skip the pads."""
    firsts = []
    for ids, _ in examples:
        firsts.append(ids.index(latent_id) if latent_id is not None and latent_id in ids else None)
    align = max((f for f in firsts if f is not None), default=None)
    lefts = [0 if (f is None or align is None) else align - f for f in firsts]
    if align is not None:  # examples without thoughts: align their end of question with the others
        lefts = [lf if f is not None else 0 for lf, f in zip(lefts, firsts)]
    T = max(lf + len(ids) for lf, (ids, _) in zip(lefts, examples))
    B = len(examples)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, (lf, (ids, lab)) in enumerate(zip(lefts, examples)):
        input_ids[b, lf:lf + len(ids)] = torch.tensor(ids)
        labels[b, lf:lf + len(lab)] = torch.tensor(lab)
        mask[b, lf:lf + len(ids)] = 1
    pos = (mask.cumsum(1) - 1).clamp_min(0)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask, "position_ids": pos}


def frontier_targets(examples: Sequence[tuple[list[int], list[int]]], frontiers: Sequence[Sequence[Sequence[int]]],
                     latent_id: int, c_thought: int, n_classes: int) -> torch.Tensor:
    """(B, P, n_classes) multi-hot targets: row p of example b holds the frontier its p-th thought is
    taught (hop ``p // c_thought + 1``); rows past the example's thoughts or its graph's depth are 0."""
    P = max((ids.count(latent_id) for ids, _ in examples), default=0)
    out = torch.zeros((len(examples), P, n_classes))
    for b, ((ids, _), fr) in enumerate(zip(examples, frontiers)):
        for p in range(ids.count(latent_id)):
            h = p // c_thought
            if h < len(fr) and fr[h]:
                out[b, p, list(fr[h])] = 1.0
    return out


def frontier_loss(logits: torch.Tensor, input_ids: torch.Tensor, latent_id: int, target: torch.Tensor) -> torch.Tensor:
    """Coconut-BFS: the cross-entropy between each thought's next-token distribution (the logits at
    the position whose hidden state becomes the thought) and the uniform distribution over its
    frontier (``target`` from :func:`frontier_targets`); the mean over thoughts with a frontier."""
    B, P, K = target.shape
    idx = torch.zeros((B, P), dtype=torch.long)
    valid = torch.zeros((B, P), dtype=torch.bool)
    for b in range(B):
        pos = (input_ids[b] == latent_id).nonzero().flatten()[:P]
        idx[b, :len(pos)] = pos - 1
        valid[b, :len(pos)] = True
    idx, valid, target = idx.to(logits.device), valid.to(logits.device), target.to(logits.device)
    logp = logits[torch.arange(B, device=logits.device)[:, None], idx].float().log_softmax(-1)[..., :K]
    mass = target.sum(-1)
    ok = valid & (mass > 0)
    if not ok.any():
        return logits.sum() * 0.0
    per = -(target * logp).sum(-1) / mass.clamp_min(1.0)
    return per[ok].mean()


def coconut_forward(hf: torch.nn.Module, batch: dict[str, torch.Tensor], latent_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) of a batch whose ``<latent>`` positions are filled by the hidden state (after
    the final norm) at the position before each — one forward pass per thought over the KV cache."""
    from transformers import DynamicCache

    ids, mask, pos, labels = (batch[k] for k in ("input_ids", "attention_mask", "position_ids", "labels"))
    B, T = ids.shape
    embeds = hf.get_input_embeddings()(ids)
    lat = [(ids[b] == latent_id).nonzero().flatten().tolist() if latent_id is not None else [] for b in range(B)]
    n_pass = max((len(x) for x in lat), default=0)
    if n_pass == 0:
        out = hf(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False)
        logits = out.logits
    else:
        cache = DynamicCache()
        start, end = 0, min(x[0] for x in lat if x)
        parts = []
        for p in range(n_pass + 1):
            out = hf(inputs_embeds=embeds[:, start:end], attention_mask=mask[:, :end], position_ids=pos[:, start:end],
                     cache=cache, use_cache=True, output_hidden_states=True)
            cache = out.cache
            parts.append(out.logits)
            if p == n_pass:
                break
            h = out.hidden_states[-1]
            rows = [b for b in range(B) if len(lat[b]) > p]
            cols = [lat[b][p] for b in rows]
            if any(c < end or c - 1 - start < 0 for c in cols):
                raise ExplorerError("thought positions are not aligned across the batch; build batches with collate().")
            embeds = embeds.clone()
            embeds[rows, cols] = h[rows, [c - 1 - start for c in cols]]
            start, end = end, (end + 1 if p + 1 < n_pass else T)
        logits = torch.cat(parts, 1)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                             labels[:, 1:].reshape(-1), ignore_index=-100)
    return loss, logits
