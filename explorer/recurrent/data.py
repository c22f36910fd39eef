"""Recurrent-depth training data from ProsQA problems: the two task formats as token ids and batches.

``"reach"`` (the compact format, :mod:`explorer.tasks.prosqa.compact`): :func:`encode_reach` writes
the statements in a drawn order and questions ``" Is X"``, each with the concepts X reaches and
their hop distances; :func:`collate_reach` batches them with the targets (:func:`within_hops`).
With graph tokens (:mod:`explorer.tasks.prosqa.graph_tokens`) the same task reads
``<eos> s t | … [Q] a b [R] root`` and more questions ``[R] x`` (:func:`encode_reach_graph`, nodes
relabelled per epoch). :func:`reach_prompt` and :func:`option_ids` read any
problem in whichever format a model's tokenizer speaks, for evaluation.
``"answer"``: :func:`encode_problem` writes ``question + "\\n"`` → ``"### " + answer`` + EOS, and
:func:`collate_right` batches them. :func:`task_of` reads which format a model was trained on.

The tokenizer and the names' token ids are the task's (:mod:`explorer.tasks.prosqa.tokenizer`);
the losses are :mod:`.losses`, the trainer :mod:`.train`.
"""
from __future__ import annotations

import random
from typing import Any, Sequence

import torch

from ..errors import InputError
from ..tasks.prosqa import graph_tokens
from ..tasks.prosqa.compact import compact_graph, compact_prompt, options, query, statements
from ..tasks.prosqa.graph import reach_sets
from ..tasks.prosqa.tokenizer import name_token_ids


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


def encode_reach(tokenizer: Any, problem: dict[str, Any], rng: random.Random, queries: int,
                 max_hops: int = 0) -> tuple[list[int], list[tuple[int, list[int], list[int]]]]:
    """(input_ids, [(position, token ids of the concepts reached, their hop distances)]): the
    compact graph in an order drawn with ``rng``, then ``queries`` questions ``" Is X"`` about
    nodes drawn with ``rng``; position is the question's last token, where the answer is read."""
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


def read_reach_graph(problem: dict[str, Any], max_hops: int = 0) -> tuple[graph_tokens.GraphProblem, dict[int, Any]]:
    """What :func:`encode_reach_graph` reads from a problem, the same every epoch: its graph tokens
    (nodes as indexed) and each node's reach set (node → hops, up to ``max_hops``; 0: all)."""
    sets = {s: sorted(r.items()) for s, r in reach_sets(problem, max_hops or None).items() if r}
    return graph_tokens.encode(problem), sets


def encode_reach_graph(problem: dict[str, Any], rng: random.Random, queries: int, max_hops: int = 0, *,
                       read: tuple[graph_tokens.GraphProblem, dict[int, Any]] | None = None,
                       ) -> tuple[list[int], list[tuple[int, list[int], list[int]]]]:
    """:func:`encode_reach` in graph tokens: the problem's question (``… [Q] a b [R] root``) with its
    nodes relabelled by ``rng``, then ``queries - 1`` more questions ``[R] x`` about nodes drawn with
    ``rng`` (each node once before any twice, so more questions cover more of the graph); at each
    question's node token the answer is every node it reaches. ``read``: the
    problem's :func:`read_reach_graph`, when the caller keeps it across epochs."""
    graph, sets = read if read is not None else read_reach_graph(problem, max_hops)
    labels = graph_tokens.relabelling(len(problem["idx_to_symbol"]), rng)
    ids = list(graph.relabelled(labels).question)
    root = int(problem["root"])
    if root not in sets:
        raise InputError("the root of a problem reaches no node; pass ProsQA problems whose root has statements.")
    subjects = sorted(sets)
    drawn: list[int] = []
    while len(drawn) < queries - 1:
        drawn += rng.sample(subjects, len(subjects))
    r_id = graph_tokens.VOCAB.index(graph_tokens.R)
    out = []
    for q, s in enumerate([root, *drawn[:queries - 1]]):
        if q:
            ids += [r_id, labels[s]]
        out.append((len(ids) - 1, [labels[v] for v, _ in sets[s]], [h for _, h in sets[s]]))
    return ids, out


def reach_prompt(tokenizer: Any, problem: dict[str, Any]) -> list[int]:
    """The ids a ``"reach"`` model reads a ProsQA question as: the compact prompt ``… Is <root>``,
    or in graph tokens ``… [Q] a b [R] root``; the answer is read at its last token."""
    if graph_tokens.is_graph_tokenizer(tokenizer):
        return list(graph_tokens.encode(problem).question)
    return list(tokenizer(compact_prompt(problem), add_special_tokens=False)["input_ids"])


def option_ids(tokenizer: Any, problem: dict[str, Any]) -> list[int]:
    """The token ids of the (right, wrong) options of a ProsQA question."""
    if graph_tokens.is_graph_tokenizer(tokenizer):
        return [int(problem["target"]), int(problem["neg_target"])]
    return name_token_ids(tokenizer, options(problem))


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


def collate_right(examples: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(i) for i, _ in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), -100, dtype=torch.long)
    for b, (i, lab) in enumerate(examples):
        ids[b, :len(i)] = torch.tensor(i)
        labels[b, :len(lab)] = torch.tensor(lab)
    return {"input_ids": ids, "labels": labels}
