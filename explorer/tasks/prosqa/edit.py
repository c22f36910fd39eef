"""Edit a ProsQA problem by name: add or remove a statement, swap or change the options.

Every edit returns a new problem in the Coconut format, rebuilt from ProsQA sentences by
:func:`~explorer.tasks.prosqa.graph_tokens.from_sentences`, so an edited problem is checked like a
typed one: no cycle, both options stated, exactly one option reachable from the root (that one
becomes the target, and ``steps`` follow a shortest path to it). A name the problem does not have
is a typed error listing the names it has. :func:`to_sentences` is the inverse of
``from_sentences``: a problem as the sentences a person would edit.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from ...errors import InputError
from .generate import statement
from .graph_tokens import asked_options, from_sentences, question_edges


def to_sentences(problem: dict[str, Any]) -> str:
    """The problem as ProsQA sentences: its statements in the question's order, then the question."""
    sym = problem["idx_to_symbol"]
    a, b = asked_options(problem)
    lines = [statement(sym, x, y) for x, y in question_edges(problem)]
    return " ".join(lines + [f"Is {sym[int(problem['root'])]} a {sym[a]} or {sym[b]}?"])


def _index(problem: dict[str, Any], name: str) -> int:
    sym = problem["idx_to_symbol"]
    if name not in sym:
        raise InputError(f"{name!r} is not a node of this problem; its nodes are {', '.join(sym)}. "
                         "To bring in a new name, type the problem as sentences (graph_tokens.from_sentences).")
    return sym.index(name)


def edit(problem: dict[str, Any], *, add: Iterable[Sequence[str]] = (), remove: Iterable[Sequence[str]] = (),
         swap_options: bool = False, options: Sequence[str] | None = None) -> dict[str, Any]:
    """A new problem: ``problem`` with the statements ``add`` ((child, parent) name pairs: "child is
    a parent") added, ``remove`` removed, the options asked in swapped order or replaced by
    ``options`` (two names). The target is recomputed (the option the root reaches)."""
    sym = problem["idx_to_symbol"]
    edges = [tuple(e) for e in question_edges(problem)]
    for pair in remove:
        e = tuple(_index(problem, n) for n in _pair(pair))
        if e not in edges:
            raise InputError(f"there is no statement {statement(sym, *e)!r} to remove; the statements are: "
                             + " ".join(statement(sym, a, b) for a, b in edges))
        edges.remove(e)
    for pair in add:
        e = tuple(_index(problem, n) for n in _pair(pair))
        if e[0] == e[1]:
            raise InputError(f"{sym[e[0]]!r} cannot be a {sym[e[0]]}; add a statement between two different names.")
        if e not in edges:
            edges.append(e)
    a, b = asked_options(problem)
    if options is not None:
        a, b = (_index(problem, n) for n in _pair(options))
    if swap_options:
        a, b = b, a
    if a == b:
        raise InputError("the two options must be different names.")
    root = int(problem["root"])
    if root in (a, b):
        raise InputError(f"{sym[root]!r} is the one asked about; pick two other names as options.")
    used = {v for e in edges for v in e}
    text = " ".join([statement(sym, x, y) for x, y in edges] + [f"Is {sym[root]} a {sym[a]} or {sym[b]}?"])
    if root not in used:
        raise InputError(f"no statement is left about {sym[root]!r}; keep at least one edge from it.")
    return from_sentences(text, sym)


def _pair(pair: Sequence[str]) -> tuple[str, str]:
    if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2 or \
            not all(isinstance(n, str) for n in pair):
        raise InputError(f"an edge or the options are two names, e.g. ('Tom', 'wumpus'); got {pair!r}.")
    return str(pair[0]), str(pair[1])
