"""Coconut training data: ProsQA problems as token ids, the curriculum's examples, batches, and the
multi-pass forward that fills in continuous thoughts.

:func:`tokenize_problem` splits a problem into question, steps and answer; :func:`build_example`
writes it at a curriculum stage (stage k: the first k steps replaced by ``<bot>`` k·c thoughts
``<eot>``; ``cot`` / ``no_cot`` baselines); :func:`collate` left-pads a batch so that every example's
first thought sits at the same position; :func:`coconut_forward` fills each ``<latent>`` with the
last hidden state before it (one pass per thought over the KV cache) and returns loss and logits;
:func:`frontier_loss` is the Coconut-BFS term that teaches each thought its BFS frontier.
:func:`collate_grouped` batches several questions on each graph, whose statements
:func:`grouped_forward` then reads once for all of them (the trainer's ``queries``).
The tokenizer is the task's (:func:`explorer.tasks.prosqa.tokenizer.build_tokenizer`); the trainer
is :mod:`.train`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..errors import ExplorerError
from ..training.losses import soft_margin
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
    #: the tokens of every node the root reaches, itself included (what a thought's frontier is held
    #: above with ``separation_weight``); graph tokens only
    reached: list[int] | None = None


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


def collate_grouped(groups: Sequence[Sequence[tuple[list[int], list[int]]]], prefix_lens: Sequence[int],
                    pad_id: int) -> dict[str, torch.Tensor]:
    """A batch of several questions on each graph: group k's examples share their first
    ``prefix_lens[k]`` ids (the statements), which carry no labels. The statements come once per
    group (``prefix_ids``, left-padded, and ``prefix_mask``); each question's own ids after them are
    a row of ``input_ids`` / ``labels`` / ``attention_mask`` (right-padded; rows k·Q … k·Q + Q − 1
    are group k's, Q the largest group, a smaller group's missing rows all padding), so
    :func:`frontier_targets` and :func:`frontier_loss` read them as they read :func:`collate`'s."""
    Q, G = max(len(g) for g in groups), len(groups)
    Lp = max(prefix_lens)
    S = max(len(ids) - n for g, n in zip(groups, prefix_lens) for ids, _ in g)
    prefix_ids = torch.full((G, Lp), pad_id, dtype=torch.long)
    prefix_mask = torch.zeros((G, Lp), dtype=torch.long)
    ids = torch.full((G * Q, S), pad_id, dtype=torch.long)
    labels = torch.full((G * Q, S), -100, dtype=torch.long)
    mask = torch.zeros((G * Q, S), dtype=torch.long)
    for k, (g, n) in enumerate(zip(groups, prefix_lens)):
        head = g[0][0][:n]
        prefix_ids[k, Lp - n:] = torch.tensor(head)
        prefix_mask[k, Lp - n:] = 1
        for i, (x, lab) in enumerate(g):
            if x[:n] != head or any(t != -100 for t in lab[:n + 1]):
                raise ExplorerError("the questions of a group must share their first prefix_lens ids (the statements), "
                                    "and neither those nor the token after them may carry a label.")
            ids[k * Q + i, :len(x) - n] = torch.tensor(x[n:])
            labels[k * Q + i, :len(x) - n] = torch.tensor(lab[n:])
            mask[k * Q + i, :len(x) - n] = 1
    return {"prefix_ids": prefix_ids, "prefix_mask": prefix_mask, "input_ids": ids, "labels": labels,
            "attention_mask": mask}


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


def reached_targets(reached: Sequence[Sequence[int]], n_classes: int) -> torch.Tensor:
    """(B, n_classes) multi-hot: the nodes each example's root reaches (itself included)."""
    out = torch.zeros((len(reached), n_classes), dtype=torch.bool)
    for b, r in enumerate(reached):
        out[b, list(r)] = True
    return out


def frontier_loss(logits: torch.Tensor, input_ids: torch.Tensor, latent_id: int, target: torch.Tensor,
                  reached: torch.Tensor | None = None, separation_weight: float = 0.0) -> torch.Tensor:
    """Coconut-BFS: the cross-entropy between each thought's next-token distribution (the logits at
    the position whose hidden state becomes the thought) and the uniform distribution over its
    frontier (``target`` from :func:`frontier_targets`); the mean over thoughts with a frontier.
    ``separation_weight`` s adds s × a soft margin of each thought's frontier nodes over every node
    its root does not reach (``reached`` from :func:`reached_targets`;
    :func:`~explorer.training.losses.soft_margin`): ProsQA's wrong option is such a node, and the answer
    is read by comparing the two options."""
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
    loss = per[ok].mean()
    if separation_weight:
        if reached is None:
            raise ExplorerError("separation_weight needs the nodes each root reaches (reached_targets).")
        outside = ~reached.to(logits.device)[:, None, :].expand(B, P, K)
        loss = loss + separation_weight * soft_margin(logp[ok], target[ok] > 0, outside[ok])
    return loss


def coconut_forward(hf: torch.nn.Module, batch: dict[str, torch.Tensor], latent_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) of a batch whose ``<latent>`` positions are filled by the hidden state (after
    the final norm) at the position before each — one forward pass per thought over the KV cache.
    A batch of :func:`collate_grouped` reads each graph's statements once (:func:`grouped_forward`)."""
    from transformers import DynamicCache

    if "prefix_ids" in batch:
        return grouped_forward(hf, batch, latent_id)
    ids, mask, pos, labels = (batch[k] for k in ("input_ids", "attention_mask", "position_ids", "labels"))
    B, T = ids.shape
    embeds = hf.get_input_embeddings()(ids)
    lat = _thoughts(ids, latent_id)
    n_pass = max((len(x) for x in lat), default=0)
    if n_pass == 0:
        logits = hf(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False).logits
        return _loss(logits, labels), logits
    cache, parts, thought = DynamicCache(), [], None   # thought: (rows, states) that begin the next pass
    for p, (start, end) in enumerate(_passes(lat, T)):
        x = embeds[:, start:end]
        if thought is not None:   # the hidden state before a <latent> is its input embedding
            x = x.clone()
            x[thought[0], 0] = thought[1].to(x.dtype)
        out = hf(inputs_embeds=x, attention_mask=mask[:, :end], position_ids=pos[:, start:end],
                 cache=cache, use_cache=True, output_hidden_states=True)
        cache = out.cache
        parts.append(out.logits)
        rows = [b for b in range(B) if len(lat[b]) > p]
        thought = (rows, out.hidden_states[-1][rows, -1])
    logits = torch.cat(parts, 1)
    return _loss(logits, labels), logits


def grouped_forward(hf: torch.nn.Module, batch: dict[str, torch.Tensor], latent_id: int | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`coconut_forward` of a :func:`collate_grouped` batch: each graph's statements in one pass,
    then its Q questions side by side in one row, each pass appending every question's next columns
    to the cache, a mask letting each question see the statements and its own tokens only, and the
    positions it would have after the statements alone. The same loss and logits as the flat batch
    of the same questions (a test checks), for one pass over the statements instead of Q; the logits
    come back in the rows and columns of ``input_ids``."""
    from transformers import DynamicCache

    pids, pmask = batch["prefix_ids"], batch["prefix_mask"]
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    (G, Lp), (R, S) = pids.shape, ids.shape
    Q, dev = R // G, ids.device
    embed = hf.get_input_embeddings()
    cache = DynamicCache()
    out = hf(inputs_embeds=embed(pids), attention_mask=pmask, position_ids=(pmask.cumsum(1) - 1).clamp_min(0),
             cache=cache, use_cache=True)
    cache = out.cache
    embeds = embed(ids).view(G, Q, S, -1)
    real = mask.view(G, Q, S).bool()
    seen = pmask.bool()[:, None, :]                 # (G, 1, keys): what a query may attend to, statements first
    key_q = torch.zeros(0, dtype=torch.long, device=dev)    # each appended key's question and column
    key_o = torch.zeros(0, dtype=torch.long, device=dev)
    key_real = torch.zeros((G, 0), dtype=torch.bool, device=dev)
    start_pos = pmask.sum(1)[:, None]                # a question's first token follows the statements
    lat = _thoughts(ids, latent_id)
    n_lat = torch.tensor([len(x) for x in lat], device=dev).view(G, Q)
    parts, thought = [], None
    for p, (a, b) in enumerate(_passes(lat, S)):
        w = b - a
        q_of = torch.arange(Q, device=dev).repeat_interleave(w)
        o_of = torch.arange(a, b, device=dev).repeat(Q)
        key_q, key_o = torch.cat([key_q, q_of]), torch.cat([key_o, o_of])
        key_real = torch.cat([key_real, real[:, :, a:b].reshape(G, Q * w)], 1)
        own = (key_q[None, None, :] == q_of[None, :, None]) & (key_o[None, None, :] <= o_of[None, :, None]) & \
            key_real[:, None, :]
        own[:, :, -Q * w:] |= torch.eye(Q * w, dtype=torch.bool, device=dev)   # padding sees itself
        allowed = torch.cat([seen.expand(G, Q * w, Lp), own], 2)[:, None]
        x = embeds[:, :, a:b].reshape(G, Q * w, -1)
        if thought is not None:
            x = x.clone()
            rows = (n_lat > p - 1).view(-1)         # the questions with a thought here, (g, q) flattened
            x.view(G * Q, w, -1)[rows, 0] = thought[rows].to(x.dtype)
        out = hf(inputs_embeds=x, attention_mask=allowed, position_ids=start_pos + o_of[None, :], cache=cache,
                 use_cache=True, output_hidden_states=True)
        cache = out.cache
        parts.append(out.logits.view(G, Q, w, -1))
        thought = out.hidden_states[-1].view(G * Q, w, -1)[:, -1]
    logits = torch.cat(parts, 2).reshape(R, S, -1)
    return _loss(logits, labels), logits


def _thoughts(ids: torch.Tensor, latent_id: int | None) -> list[list[int]]:
    """Each row's ``<latent>`` columns."""
    return [(row == latent_id).nonzero().flatten().tolist() if latent_id is not None else [] for row in ids]


def _passes(lat: Sequence[Sequence[int]], T: int) -> list[tuple[int, int]]:
    """The columns of each forward pass: up to the first thought, then one column per thought (it
    begins the pass after the state it is filled from), then the rest. Every row's thoughts must be
    consecutive from one column on (:func:`collate` aligns them)."""
    n = max((len(x) for x in lat), default=0)
    if n == 0:
        return [(0, T)]
    f = min(x[0] for x in lat if x)
    if any(list(x) != list(range(f, f + len(x))) for x in lat):
        raise ExplorerError("thought positions are not aligned across the batch; build batches with collate().")
    return [(0, f)] + [(f + p, f + p + 1) for p in range(n - 1)] + [(f + n - 1, T)]


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                             labels[:, 1:].reshape(-1), ignore_index=-100)
