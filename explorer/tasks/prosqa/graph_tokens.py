"""ProsQA as graph tokens ("Reasoning by Superposition", Zhu, Hao et al. 2025): every node is one token.

A problem in the Coconut format becomes

    <eos> s t | s t | … | s t [Q] a b [R] root        the question: one edge per statement
    n1 n2 … target                                     the reasoning path, one token per hop
    [A] target <eos>                                   the answer

where each node is its per-problem index (the tokens ``"0"`` … ``"39"``), the edges come in the
order the question states them, and the two options in the order it asks them. Every node
embedding is trained by every example, and an edge's source sits right before its target — the two
things that stalled small models reading ProsQA's sentences.

Indices carry no meaning: training draws a fresh relabelling of each problem's nodes onto the 40
node tokens (:func:`relabelling`), so no model can read the answer from index order; every display
maps tokens back to names through ``idx_to_symbol`` (:func:`symbols`). :func:`from_sentences`
turns a small problem typed in ProsQA's sentences into a problem of the same format.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Sequence

from ...errors import InputError
from .generate import statement
from .graph import cycle, distances

MAX_NODES = 40
PAD, EOS, SEP, Q, R, A = "<pad>", "<eos>", "|", "[Q]", "[R]", "[A]"
BOT, EOT, LATENT = "<bot>", "<eot>", "<latent>"  # the thought markers of explorer.thoughts
#: a question's own tokens at the end of its ids, ``[Q] a b [R] root``; the statements come before them
ASK_TOKENS = 5
#: the whole vocabulary, in id order: node indices first, so token id == node label
VOCAB: tuple[str, ...] = (*(str(i) for i in range(MAX_NODES)), PAD, EOS, SEP, Q, R, A, BOT, EOT, LATENT)

_STATEMENT = re.compile(r"(?:Every\s+)?(\S+?)\s+is\s+an?\s+(\S+?)\s*\.")
_QUESTION = re.compile(r"Is\s+(\S+)\s+an?\s+(\S+)\s+or\s+(\S+?)\s*\?\s*$")


def build_graph_tokenizer():
    """The graph-token tokenizer (a ``PreTrainedTokenizerFast``; tokens split on spaces, decoding
    joins them with spaces), thought markers included."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token=PAD))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with spaces
    out = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, bos_token=EOS,
                                  model_max_length=1024, clean_up_tokenization_spaces=False)
    out.add_special_tokens({"additional_special_tokens": [BOT, EOT, LATENT]})
    return out


def _check(problem: Any) -> list[str]:
    if not isinstance(problem, dict) or not isinstance(problem.get("idx_to_symbol"), list):
        raise InputError("a ProsQA problem is a dict with idx_to_symbol, edges, root, target and neg_target "
                         "(the Coconut format); load one with explorer.tasks.prosqa.load(path).")
    sym = problem["idx_to_symbol"]
    if len(sym) > MAX_NODES:
        raise InputError(f"a problem has {len(sym)} nodes but graph tokens name at most {MAX_NODES}; "
                         "split the graph or drop unreachable statements.")
    return sym


def question_edges(problem: dict[str, Any]) -> list[tuple[int, int]]:
    """The edges in the order the question states them (the ``edges`` field's order when the
    question has no statements, e.g. a problem built from edges alone)."""
    sym = _check(problem)
    index = {s: i for i, s in enumerate(sym)}
    stated = [(index.get(a), index.get(b)) for a, b in _STATEMENT.findall(problem.get("question", ""))]
    edges = [(int(a), int(b)) for a, b in problem["edges"]]
    if not stated:
        return edges
    if any(a is None or b is None for a, b in stated) or sorted(set(stated)) != sorted(set(edges)):
        raise InputError("the question's statements and the problem's edges disagree; rebuild the problem with "
                         "explorer.tasks.prosqa.graph_tokens.from_sentences(text).")
    return list(dict.fromkeys(stated))  # type: ignore[arg-type]


def asked_options(problem: dict[str, Any]) -> tuple[int, int]:
    """The two options in the order the question asks them (target first when it does not say)."""
    sym = _check(problem)
    m = _QUESTION.search(problem.get("question", ""))
    pair = (int(problem["target"]), int(problem["neg_target"]))
    if m is None:
        return pair
    index = {s: i for i, s in enumerate(sym)}
    a, b = index.get(m.group(2)), index.get(m.group(3))
    return (a, b) if {a, b} == set(pair) else pair  # type: ignore[return-value]


def reasoning_path(problem: dict[str, Any]) -> list[int]:
    """The nodes after the root along the problem's reasoning path (its ``steps``; a shortest path
    from the root to the target when there are none), the target last."""
    sym = _check(problem)
    index = {s: i for i, s in enumerate(sym)}
    root, target = int(problem["root"]), int(problem["target"])
    path = [index.get(b) for _, b in (_STATEMENT.findall(" ".join(problem.get("steps", []))))]
    if path and None not in path and path[-1] == target:
        return path  # type: ignore[return-value]
    edges = [(int(a), int(b)) for a, b in problem["edges"]]
    dist = distances(len(sym), edges, root)
    if target not in dist:
        raise InputError(f"{sym[target]!r} is not reachable from {sym[root]!r}; the target must be reachable "
                         "from the root.")
    out = [target]
    while dist[out[-1]] > 1:  # walk back along predecessors one hop closer, the lowest index first
        out.append(min(a for a, b in edges if b == out[-1] and dist.get(a) == dist[out[-1]] - 1))
    return out[::-1]


def relabelling(n: int, rng: random.Random | None = None) -> list[int]:
    """Node index → graph token: the identity without ``rng``, else ``n`` distinct tokens of the
    40 drawn with ``rng`` (the training augmentation)."""
    if n > MAX_NODES:
        raise InputError(f"{n} nodes; graph tokens name at most {MAX_NODES}.")
    return list(range(n)) if rng is None else rng.sample(range(MAX_NODES), n)


@dataclass(frozen=True)
class GraphProblem:
    """One problem as graph-token ids: ``question``, ``steps`` (one list per hop: the path's node),
    ``answer`` ([A] target <eos>) and the ``labels`` used (node index → token)."""

    question: list[int]
    steps: list[list[int]]
    answer: list[int]
    labels: list[int]

    def relabelled(self, labels: Sequence[int]) -> "GraphProblem":
        """The same problem under other node tokens (``labels``: node index → token, as in
        :func:`encode`) without reading the problem again: the training augmentation, once an epoch."""
        if len(labels) != len(self.labels) or len(set(labels)) != len(labels) or \
                not all(0 <= t < MAX_NODES for t in labels):
            raise InputError(f"labels must be {len(self.labels)} distinct node tokens in 0..{MAX_NODES - 1}.")
        new = dict(zip(self.labels, labels))

        def move(ids: list[int]) -> list[int]:
            return [new.get(t, t) if t < MAX_NODES else t for t in ids]
        return GraphProblem(move(self.question), [move(s) for s in self.steps], move(self.answer), list(labels))

    def asking(self, root: int, options: Sequence[int], path: Sequence[int]) -> "GraphProblem":
        """Another question on the same statements, under the same labels: ``[Q] a b [R] root`` for
        ``options`` (a, b) and ``root``, the reasoning ``path`` (its nodes after the root, the target
        last, as :func:`explorer.tasks.prosqa.generate.graph_questions` draws them). All in node
        indices of the problem. The ids before ``[Q]`` are this problem's, so the two share them."""
        v = {t: i for i, t in enumerate(VOCAB)}
        if len(options) != 2 or not path or len(self.question) < ASK_TOKENS or self.question[-ASK_TOKENS] != v[Q]:
            raise InputError("asking() takes two options and a path of at least one node, on a problem encoded "
                             "by encode() (its question ends in [Q] a b [R] root).")
        lab = self.labels
        a, b = options
        return GraphProblem(self.question[:-ASK_TOKENS] + [v[Q], lab[a], lab[b], v[R], lab[root]],
                            [[lab[n]] for n in path], [v[A], lab[path[-1]], v[EOS]], list(lab))


def encode(problem: dict[str, Any], labels: Sequence[int] | None = None) -> GraphProblem:
    """``problem`` as graph-token ids (token id == node label, see :data:`VOCAB`)."""
    sym = _check(problem)
    lab = list(labels) if labels is not None else relabelling(len(sym))
    if len(lab) != len(sym) or len(set(lab)) != len(lab) or not all(0 <= t < MAX_NODES for t in lab):
        raise InputError(f"labels must be {len(sym)} distinct node tokens in 0..{MAX_NODES - 1}.")
    v = {t: i for i, t in enumerate(VOCAB)}
    q = [v[EOS]]
    for k, (a, b) in enumerate(question_edges(problem)):
        q += ([v[SEP]] if k else []) + [lab[a], lab[b]]
    x, y = asked_options(problem)
    q += [v[Q], lab[x], lab[y], v[R], lab[int(problem["root"])]]
    path = reasoning_path(problem)
    return GraphProblem(q, [[lab[n]] for n in path], [v[A], lab[int(problem["target"])], v[EOS]], lab)


def to_text(problem: dict[str, Any], labels: Sequence[int] | None = None) -> str:
    """The question as graph-token text, e.g. ``"<eos> 0 2 | 1 3 [Q] 16 13 [R] 1"``."""
    return " ".join(VOCAB[i] for i in encode(problem, labels).question)


def symbols(problem: dict[str, Any], labels: Sequence[int] | None = None) -> dict[int, str]:
    """Graph token id → the name it stands for in ``problem`` (``idx_to_symbol`` through ``labels``)."""
    sym = _check(problem)
    lab = list(labels) if labels is not None else relabelling(len(sym))
    return {t: sym[i] for i, t in enumerate(lab)}


def names(problem: dict[str, Any], ids: Sequence[int], labels: Sequence[int] | None = None) -> list[str]:
    """Token ids read back as names (node tokens) or as the markers they are."""
    table = symbols(problem, labels)
    return [table.get(int(i), VOCAB[int(i)] if 0 <= int(i) < len(VOCAB) else f"<{int(i)}>") for i in ids]


def prompt(problem: dict[str, Any]) -> str:
    """What a graph-token model reads: the question as graph-token text, nodes as indexed."""
    return to_text(problem)


def parse_answer(text: str) -> str | None:
    """The node token a model names after the last ``[A]`` (``None`` when it names none)."""
    rest = str(text).rsplit(A, 1)
    words = rest[1].split() if len(rest) == 2 else []
    return words[0] if words and words[0].isdigit() else None


def is_correct(text: str, problem: dict[str, Any]) -> bool:
    """Whether ``text`` (a graph-token model's output, nodes as indexed) names the target."""
    return parse_answer(text) == str(int(problem["target"]))


def read_walk(text: str, problem: dict[str, Any]) -> dict[str, Any]:
    """A chain of thought in graph tokens (the node tokens before ``[A]``, nodes as indexed) read as a
    walk from the root: ``hops`` taken, ``edges`` (how many of them follow an edge of the graph) and
    whether it ``reaches`` the target. A CoT model that has learned the lookup but not the search
    walks along real edges and still takes the branch that leads elsewhere."""
    words = str(text).split(A, 1)[0].split()
    path = [int(w) for w in words if w.isdigit()]
    edges = {(int(a), int(b)) for a, b in problem["edges"]}
    steps = list(zip([int(problem["root"]), *path], path))
    return {"hops": len(steps), "edges": sum(e in edges for e in steps),
            "reaches": bool(path) and path[-1] == int(problem["target"])}


def is_graph_tokenizer(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` reads graph tokens (its vocabulary has ``[Q]`` and ``[R]``)."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    return Q in vocab and R in vocab


def from_sentences(text: str, symbols: Sequence[str] = ()) -> dict[str, Any]:
    """A problem in the Coconut format from ProsQA sentences: statements ("Every cat is a mammal.",
    "Tom is a cat.") and one question "Is Tom a mammal or reptile?", e.g. typed by a person. The
    option the root reaches is the target (exactly one must be reachable); ``steps`` follow a
    shortest path. Nodes are numbered in order of appearance, after ``symbols`` (an edited
    problem keeps its numbering)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("pass ProsQA sentences, e.g. 'Tom is a cat. Every cat is a mammal. Is Tom a mammal or fish?'")
    m = _QUESTION.search(text.strip())
    if m is None:
        raise InputError("end the text with one question of the form 'Is NAME a A or B?'.")
    stated = _STATEMENT.findall(text[: m.start()])
    if not stated:
        raise InputError("no statements found; write them as 'Every X is a Y.' or 'Name is a Y.'.")
    sym: list[str] = list(symbols)
    for a, b in stated:
        for s in (a, b):
            if s not in sym:
                sym.append(s)
    root_name, x, y = m.groups()
    named = {s for pair in stated for s in pair}
    for s in (root_name, x, y):
        if s not in named:
            raise InputError(f"{s!r} appears in the question but in no statement; state how it is linked.")
    index = {s: i for i, s in enumerate(sym)}
    edges = list(dict.fromkeys((index[a], index[b]) for a, b in stated))
    loop = cycle(len(sym), edges)
    if loop is not None:
        raise InputError("the statements form a cycle (" + " → ".join(sym[v] for v in loop) + "); ProsQA's graphs "
                         f"have none: remove one of these statements, e.g. the one linking {sym[loop[-2]]!r} to "
                         f"{sym[loop[-1]]!r}.")
    root = index[root_name]
    dist = distances(len(sym), edges, root)
    reach = [o for o in (x, y) if index[o] in dist]
    if len(reach) != 1:
        raise InputError(f"exactly one option must be reachable from {root_name!r}; here "
                         f"{'both are' if reach else 'neither is'}. Change a statement or an option.")
    target = index[reach[0]]
    neg = index[y if reach[0] == x else x]
    problem = {"question": text.strip(), "answer": f"{root_name} is a {sym[target]}.", "idx_to_symbol": sym,
               "edges": [list(e) for e in edges], "root": root, "target": target, "neg_target": neg}
    path = reasoning_path({**problem, "steps": []})
    chain = [root, *path]
    problem["steps"] = [statement(sym, a, b) for a, b in zip(chain, chain[1:])]
    return problem
