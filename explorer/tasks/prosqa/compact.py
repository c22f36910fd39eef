"""ProsQA in compact form, for models that answer without a chain of thought by searching inside
(the recurrent-depth model).

A problem's statements are written as their two names and a full stop, in the question's order
(``"Tom is a wumpus. Every wumpus is a yumpus."`` → ``" Tom wumpus. wumpus yumpus."``), and the
question "Is Tom a A or B?" becomes the prompt ``... Is Tom``. The words *Every*, *is* and *a*
carry nothing a model needs, and they put two tokens between a statement's subject and its
object, which small models did not learn to read (docs/recurrent.md, "Where small models get
stuck"). The model's next-token distribution after ``Is Tom`` is its answer to "what is Tom?":
trained towards the uniform distribution over every concept Tom reaches
(:func:`~explorer.tasks.prosqa.graph.reach_sets`), it names the right option of the ProsQA
question when that option scores higher than the other (:func:`options`). Nothing about the problems changes: the real validation set is read the same
way, statement by statement.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from ...errors import InputError

_STATEMENT = re.compile(r"(?:Every )?([A-Za-z]+) is a ([A-Za-z]+)\.")


def statements(problem: dict[str, Any]) -> list[tuple[int, int]]:
    """The edges (node indices) in the order the question states them."""
    sym = problem["idx_to_symbol"]
    index = {s: i for i, s in enumerate(sym)}
    body = problem["question"].rsplit("?", 1)[0]
    body = body[: body.rfind(" Is ")] if " Is " in body else body
    try:
        edges = [(index[a], index[b]) for a, b in _STATEMENT.findall(body)]
    except KeyError as e:
        raise InputError(f"the question names {e.args[0]!r}, which is not in idx_to_symbol; "
                         "pass a problem in the Coconut ProsQA format.") from None
    if sorted(edges) != sorted(tuple(e) for e in problem["edges"]):
        raise InputError("the question's statements do not match the problem's edges; pass a problem in the "
                         "Coconut ProsQA format (generate one with explorer.tasks.prosqa.generate).")
    return edges


def compact_graph(problem: dict[str, Any], order: Sequence[tuple[int, int]] | None = None) -> str:
    """``" Tom wumpus. wumpus yumpus. ..."``: the statements in ``order`` (default: the question's)."""
    sym = problem["idx_to_symbol"]
    return "".join(f" {sym[a]} {sym[b]}." for a, b in (order if order is not None else statements(problem)))


def query(subject: str) -> str:
    """The question about one node: ``" Is Tom"``."""
    return f" Is {subject}"


def compact_prompt(problem: dict[str, Any], subject: str | None = None) -> str:
    """The graph then the question about ``subject`` (default: the problem's root person)."""
    return compact_graph(problem) + query(subject if subject is not None else problem["idx_to_symbol"][problem["root"]])


def options(problem: dict[str, Any]) -> tuple[str, str]:
    """(right, wrong): the names of the ProsQA question's two options."""
    sym = problem["idx_to_symbol"]
    return sym[problem["target"]], sym[problem["neg_target"]]
