"""Shortcut audit of a ProsQA file: how often does a rule that never follows the graph pick the answer?

A model trained without a chain of thought learns whatever predicts the answer most cheaply. If a
surface rule ("pick the option named more often") is right in 70 % of the training problems, the
model learns it instead of the search, and if the same rule is *wrong* in 70 % of the real
validation set the model lands below chance there. This module measures such rules on any
Coconut-format file so that generated data can be compared with the real set:

``latent-explorer prosqa audit FILE.json [FILE.json ...] --json``

With ``--graphs`` it compares how the files' graphs are built instead (:func:`graph_stats`). The
index rules (``larger index``, ``index nearer the root``) are what a model reading graph tokens
(:mod:`.graph_tokens`) could exploit if node indices were not relabelled: they read the indices
as the file gives them (in the real validation set the larger index is right in 60 % of the
problems); ``--relabel SEED`` reads them as graph-token training shows them, relabelled per
problem, where no index rule can tell anything.

For each rule: ``right``, the share of problems where the rule picks the right option among those
where it picks one at all (ties abstain), and ``n``, how many it picks in. 0.5 means the rule tells
nothing; far from 0.5 in either direction is a shortcut. For files with lookup questions ("What
is Tom?"), ``lookup: most-named concept`` is the share a subject-blind guess gets right (see :func:`lookup_guesses`): the level a
model's lookup accuracy must beat before it can be said to find statements by their subject.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from typing import Any, Sequence

from ...errors import ExplorerError, InputError
from .generate import load, parent_counts
from .graph import distances
from .graph_tokens import relabelling

#: rule name → what it compares (the rule picks the option with the larger value)
RULES: dict[str, str] = {
    "named more often": "how many statements name the option (a leaf: its parents)",
    "more ancestors": "how many nodes reach the option",
    "named last": "where the option is last named in the statements",
    "first option": "the option asked first in 'Is X a A or B?'",
    "larger index": "the option's node index (its graph token when nodes are not relabelled)",
    "index nearer the root": "minus the distance between the option's index and the root's",
}
#: the baseline for the lookup questions ("What is Tom?"): a guess that ignores the subject
LOOKUP_RULE = "lookup: most-named concept"


def _options(problem: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(right, wrong, options in question order) of a ProsQA problem."""
    sym = problem["idx_to_symbol"]
    right, wrong = sym[problem["target"]], sym[problem["neg_target"]]
    tail = problem["question"].rsplit(" Is ", 1)[-1].rstrip("?")
    asked = tail.split(" a ", 1)[-1].split(" or ")
    return right, wrong, asked


def rule_scores(problem: dict[str, Any], labels: Sequence[int] | None = None) -> dict[str, tuple[float, float]]:
    """Per rule, (score of the right option, score of the wrong one); the rule picks the larger.
    ``labels``: node index → graph token, as a relabelled training example shows the nodes (the
    index rules then read the tokens)."""
    sym, edges = problem["idx_to_symbol"], problem["edges"]
    n = len(sym)
    right, wrong, asked = _options(problem)
    r, w, root = sym.index(right), sym.index(wrong), int(problem.get("root", 0))
    lab = list(labels) if labels is not None else list(range(n))
    named = parent_counts(n, edges)  # a leaf is named once per parent
    reach = [distances(n, edges, u) for u in range(n)]
    ancestors = [sum(1 for u in range(n) if u != v and v in reach[u]) for v in range(n)]
    statements = problem["question"].rsplit(" Is ", 1)[0]
    last = lambda name: float(statements.rfind(f" {name}."))  # noqa: E731
    return {"named more often": (named[r], named[w]), "more ancestors": (ancestors[r], ancestors[w]),
            "named last": (last(right), last(wrong)),
            "first option": (float(asked[0] == right), float(asked[0] == wrong)),
            "larger index": (float(lab[r]), float(lab[w])),
            "index nearer the root": (-abs(lab[r] - lab[root]), -abs(lab[w] - lab[root]))}


def audit(problems: Sequence[dict[str, Any]], relabel_seed: int | None = None) -> dict[str, dict[str, Any]]:
    """``{rule: {"right": share, "n": problems it decides}}`` over ``problems`` (see the module docs).
    ``relabel_seed``: read the index rules on the nodes relabelled as graph-token training relabels
    them (:func:`~explorer.tasks.prosqa.graph_tokens.relabelling`, seeded)."""
    if not problems:
        raise InputError("no problems to audit; pass a non-empty Coconut-format list.")
    votes: dict[str, list[bool]] = {name: [] for name in [*RULES, LOOKUP_RULE]}
    rng = random.Random(relabel_seed) if relabel_seed is not None else None
    for p in problems:
        if not {"idx_to_symbol", "edges", "target", "neg_target"} <= set(p):
            raise InputError("a problem lacks idx_to_symbol / edges / target / neg_target; the audit needs the "
                             "graph (files written by `latent-explorer prosqa generate` and the real set have it).")
        labels = relabelling(len(p["idx_to_symbol"]), rng) if rng is not None else None
        for name, (a, b) in rule_scores(p, labels).items():
            if a != b:
                votes[name].append(a > b)
        votes[LOOKUP_RULE] += lookup_guesses(p)
    return {name: {"right": (sum(v) / len(v)) if v else None, "n": len(v)} for name, v in votes.items()}


def lookup_guesses(problem: dict[str, Any]) -> list[bool]:
    """For each lookup question of ``problem``: is a guess that ignores the subject right? The guess
    knows the question's kind: for "What is Tom?" the concept most often named after a person
    ("X is a _"), for "What is every terpus?" the one most often named after a concept ("Every X is
    a _"). What a model scores that has not learned to find a statement by its subject."""
    sym, edges = problem["idx_to_symbol"], problem["edges"]
    named = {kind: Counter(sym[b] for a, b in edges if sym[a][:1].isupper() == kind) for kind in (True, False)}
    guess = {kind: max(sorted(c), key=c.__getitem__) if c else None for kind, c in named.items()}
    out = []
    for q in problem.get("queries", ()):
        if q["question"].startswith("What is "):
            subject = q["question"][len("What is "):-1].removeprefix("every ")
            right = {sym[b] for a, b in edges if sym[a] == subject}
            out.append(guess[subject[:1].isupper()] in right)
    return out


#: graph statistic → what it measures (means over a file's problems)
GRAPH_STATS: dict[str, str] = {
    "nodes": "people and concepts",
    "statements": "edges",
    "people": "parentless nodes (named with a capital)",
    "parents per concept": "edges into each concept",
    "concepts with 3+ parents": "their share of the concepts",
    "answer hops": "length of the reference path",
    "nodes the person reaches": "the question's person included",
    "wrong option: hops from its person": "shortest path from the nearest other person",
}


def graph_stats(problems: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means of :data:`GRAPH_STATS` over ``problems``: how a file's graphs are built, so that
    generated training data can be compared with the real validation set (a model trained on
    sparser graphs than it is tested on meets a distribution it never saw)."""
    if not problems:
        raise InputError("no problems to measure; pass a non-empty Coconut-format list.")
    rows: list[list[float]] = []
    for p in problems:
        sym, edges = p["idx_to_symbol"], p["edges"]
        n = len(sym)
        people = [v for v in range(n) if sym[v][:1].isupper()]
        parents = parent_counts(n, edges)
        concepts = [parents[v] for v in range(n) if v not in people]
        other = [distances(n, edges, v).get(p["neg_target"]) for v in people if v != p["root"]]
        rows.append([n, len(edges), len(people), sum(concepts) / max(1, len(concepts)),
                     sum(c >= 3 for c in concepts) / max(1, len(concepts)), len(p.get("steps", ())),
                     len(distances(n, edges, p["root"])), min((d for d in other if d is not None), default=0)])
    return {name: sum(r[i] for r in rows) / len(rows) for i, name in enumerate(GRAPH_STATS)}


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A markdown table: one row per rule, one column per audited file."""
    files = list(results)
    rows = ["| rule | " + " | ".join(files) + " |", "|---|" + "---|" * len(files)]
    for name in [*RULES, LOOKUP_RULE]:
        cells = []
        for f in files:
            r = results[f][name]
            cells.append("–" if r["right"] is None else f"{r['right']:.2f} (n={r['n']})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer prosqa audit FILE.json [FILE.json ...] [--json]``."""
    ap = argparse.ArgumentParser(prog="latent-explorer prosqa audit",
                                 description="How often surface rules pick the answer in ProsQA files "
                                             "(0.5: no shortcut).")
    ap.add_argument("files", nargs="+", help="Coconut-format ProsQA files (generated, or the real validation set)")
    ap.add_argument("--limit", type=int, default=None, help="audit the first N problems of each file")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    ap.add_argument("--relabel", type=int, default=None, metavar="SEED",
                    help="read the index rules on nodes relabelled as graph-token training does (seeded)")
    ap.add_argument("--graphs", action="store_true",
                    help="instead: how the graphs are built (nodes, statements, parents per concept, ...)")
    args = ap.parse_args(argv)
    try:
        if args.graphs:
            stats = {f: graph_stats(load(f)[: args.limit]) for f in args.files}
        else:
            results = {f: audit(load(f)[: args.limit], args.relabel) for f in args.files}
    except ExplorerError as e:
        print(f"latent-explorer prosqa audit: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.graphs:
        rows = ["| statistic (mean) | " + " | ".join(stats) + " |", "|---|" + "---:|" * len(stats)]
        rows += [f"| {name} | " + " | ".join(f"{stats[f][name]:.2f}" for f in stats) + " |" for name in GRAPH_STATS]
        print(json.dumps(stats) if args.json else "\n".join(rows))
        return 0
    print(json.dumps(results) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
