"""A seeded generator of ProsQA problems (Hao et al. 2024, "Coconut"), in the Coconut JSON format.

Each problem is a directed acyclic graph whose edges run from lower to higher node index. Nodes
0 and 1 are people; one of them is the ``root`` X, the other a distractor. Every node without a
parent is a person ("Tom is a terpus."), every other node a made-up concept ("Every terpus is a
brimpus."). The question "Is X a A or B?" names two leaves: the ``target`` (reachable from X in
3–6 hops, not from the distractor) and the ``neg_target`` (reachable from the distractor, not from
X). ``steps`` are the statements along one shortest path from X to the target; ``answer`` is
"X is a A.". The statements of the question are all edges, shuffled.

The graphs are as dense as the validation set's (``layout="split"``, :func:`_split_graph`): two
regions that barely mix, each concept with 1–5 parents in the validation set's proportions. ``latent-explorer prosqa audit --graphs`` compares any file with the real set; the
first generator (``layout="sparse"``, 3 people and 1.5 parents per concept against the real 2.5
and 1.8) gave graphs with a quarter fewer statements, and a recurrent model trained on them scored
0.65 on generated problems but 0.45 on the real ones (docs/recurrent.md).

Counting names does not give the answer away: a fair draw per question decides whether the wrong
option has more parents than the right one, as many, or fewer (:func:`uninformative_pairs`), so
the option named more often is right about half the time. Without that draw it was right in ~80 %
of generated problems, while in the real validation set it is wrong in 75 %; models trained on the
old data learned the rule and fell below chance on the real set. ``latent-explorer prosqa audit``
measures this and other surface rules on any file.

With ``queries=k`` a problem also carries ``queries``: k more questions about the same graph
(:func:`reachability_queries`: any person, any concept reachable from them in 1–6 hops against one
that is not), each with its answer. Models answering without a chain of thought get k + 1 answers
to learn from per graph instead of one, and the 1- and 2-hop ones are an easy start; the ProsQA
question itself and its evaluation are unchanged. ``lookups=k`` adds k one-hop questions
("What is Tom?" → "Tom is a terpus.", :func:`lookup_queries`) to the same list. :func:`graph_questions`
draws such questions as node indices (from any node with statements, leaves as the options), for a
graph-token trainer to ask several questions of one graph in a pass.

The names come from the vocabulary of the public ProsQA validation set (:data:`PERSONS`,
:data:`CONCEPTS`; :func:`vocabulary_from` re-reads them from such a file). That file is for
validation only: nothing here trains on it.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ...errors import InputError, SaveFileError
from ...io import atomic_write_text
from .graph import adjacency, distances

#: people's names in the ProsQA validation set (they head "X is a Y." statements)
PERSONS: tuple[str, ...] = ("Alex", "Bob", "Carol", "Davis", "Eva", "Fae", "Gabriel", "Jack", "Max", "Oliver",
                            "Polly", "Rex", "Sally", "Sam", "Stella", "Tom", "Wren")
#: made-up concept names in the ProsQA validation set
CONCEPTS: tuple[str, ...] = (
    "bompus", "boompus", "brimpus", "chorpus", "dumpus", "felpus", "fompus", "gerpus", "gorpus", "grimpus",
    "gwompus", "hilpus", "impus", "jelpus", "jompus", "kerpus", "lempus", "lorpus", "numpus", "quimpus", "rempus",
    "rompus", "rorpus", "scrompus", "shumpus", "sterpus", "storpus", "terpus", "timpus", "tumpus", "vumpus",
    "worpus", "wumpus", "yerpus", "yimpus", "yumpus", "zhorpus", "zumpus")

#: the hop counts of the validation set's answers (3: 41 %, 4: 44 %, 5: 12 %, 6: 2 %)
HOP_WEIGHTS: dict[int, float] = {3: 0.41, 4: 0.44, 5: 0.12, 6: 0.03}

FIELDS = ("question", "answer", "steps", "idx_to_symbol", "edges", "root", "target", "neg_target")


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of :func:`generate_problem` (defaults close to the validation set's statistics)."""

    min_nodes: int = 14
    max_nodes: int = 28
    min_hops: int = 3
    max_hops: int = 6
    hop_weights: tuple[tuple[int, float], ...] = tuple(HOP_WEIGHTS.items())
    max_extra_persons: int = 1       # people besides nodes 0 and 1 (each a parentless node)
    max_parents: int = 5             # a concept has 1..max_parents parents
    window: int = 6                  # parents are drawn mostly from the last `window` nodes (deeper graphs)
    layout: str = "split"            # two regions, as dense as the validation set (_split_graph); "sparse": the first generator's
    root_share: float = 0.58         # "split": the share of concepts in the root's region
    cross_share: float = 0.1         # "split": chance that a further parent of a root-region concept is from anywhere
    max_tries: int = 10_000
    queries: int = 0                 # extra reachability questions per graph (see reachability_queries)
    lookups: int = 0                 # extra one-hop "What is X?" questions per graph (see lookup_queries)

    def check(self) -> None:
        if not (4 <= self.min_nodes <= self.max_nodes <= 2 + len(CONCEPTS)):
            raise InputError(f"nodes must satisfy 4 <= min_nodes <= max_nodes <= {2 + len(CONCEPTS)}, got "
                             f"{self.min_nodes}..{self.max_nodes}; pick a range inside it.")
        if not (1 <= self.min_hops <= self.max_hops < self.max_nodes - 1):
            raise InputError(f"hops must satisfy 1 <= min_hops <= max_hops < max_nodes - 1, got "
                             f"{self.min_hops}..{self.max_hops}.")
        if self.max_extra_persons + 2 > len(PERSONS):
            raise InputError(f"max_extra_persons can be at most {len(PERSONS) - 2}.")
        if self.layout not in ("split", "sparse") or not 0 < self.root_share < 1 or not 0 <= self.cross_share <= 1:
            raise InputError(f"layout must be 'split' or 'sparse' (got {self.layout!r}), root_share in (0, 1) and "
                             "cross_share in [0, 1].")
        if self.max_parents < 1:
            raise InputError(f"max_parents must be >= 1, got {self.max_parents}.")
        if self.queries < 0 or self.lookups < 0:
            raise InputError(f"queries and lookups must be >= 0, got {self.queries} and {self.lookups}.")


def statement(symbols: Sequence[str], a: int, b: int) -> str:
    """The sentence of edge a→b: "Tom is a terpus." for a person, "Every terpus is a brimpus." otherwise."""
    head = symbols[a]
    return f"{head} is a {symbols[b]}." if head[:1].isupper() else f"Every {head} is a {symbols[b]}."


def _random_graph(rng: random.Random, n: int, cfg: GeneratorConfig) -> tuple[list[list[int]], set[int]]:
    """Edges (a<b) of a random DAG over n nodes; nodes 0, 1 and a few others are parentless people."""
    extra = rng.randint(0, cfg.max_extra_persons)
    persons = {0, 1} | set(rng.sample(range(3, n - 2), min(extra, max(0, n - 5))))
    edges: list[list[int]] = []
    for v in range(2, n):
        if v in persons:
            continue
        k = rng.choices(range(1, cfg.max_parents + 1), weights=[0.45, 0.35, 0.2][: cfg.max_parents]
                        + [0.1] * max(0, cfg.max_parents - 3))[0]
        pool = list(range(v))
        recent = pool[-cfg.window:]
        parents: set[int] = set()
        for _ in range(k):
            parents.add(rng.choice(recent if rng.random() < 0.8 else pool))
        edges.extend([p, v] for p in sorted(parents))
    return edges, persons


#: parents per concept in the validation set (1: 49 %, 2: 31 %, 3: 14 %, 4: 4 %, 5+: 2 %)
PARENT_WEIGHTS: tuple[float, ...] = (0.49, 0.31, 0.14, 0.04, 0.02)


def _split_graph(rng: random.Random, n: int, cfg: GeneratorConfig) -> tuple[list[list[int]], set[int]]:
    """Edges (a<b) of a random DAG in two regions, as dense as the validation set's graphs: node
    0's and the others' (node 1 and the other people). A concept of the others' region has parents
    only there; a concept of node 0's region has its first parent there and, with chance
    ``cross_share`` each, further parents from anywhere. So node 0 reaches only its own region
    however dense the graph, and the two regions barely mix, as in the validation set (where 5 %
    of the statements lead from outside into the root's region). Either of nodes 0 and 1 may
    become the root (:func:`generate_problem`)."""
    extra = rng.randint(0, cfg.max_extra_persons)
    persons = {0, 1} | set(rng.sample(range(3, n - 2), min(extra, max(0, n - 5))))
    mine = {0}
    others = set(persons) - {0}
    edges: list[list[int]] = []
    weights = list(PARENT_WEIGHTS[: cfg.max_parents]) + [0.01] * max(0, cfg.max_parents - len(PARENT_WEIGHTS))

    def pick(pool: list[int], taken: set[int]) -> int | None:
        free = [u for u in pool if u not in taken]
        recent = free[-cfg.window:]
        return (rng.choice(recent if rng.random() < 0.8 else free)) if free else None

    for v in range(2, n):
        if v in persons:
            continue
        k = rng.choices(range(1, cfg.max_parents + 1), weights=weights)[0]
        home = mine if rng.random() < cfg.root_share else others
        region = sorted(u for u in home if u < v)
        parents: set[int] = set()
        for i in range(k):  # the first parent from the node's own region, the others mostly too
            pool = region if (i == 0 or home is others or rng.random() >= cfg.cross_share) else list(range(v))
            q = pick(pool, parents)
            if q is not None:
                parents.add(q)
        home.add(v)
        edges.extend([q, v] for q in sorted(parents))
    return edges, persons


def parent_counts(n: int, edges: Sequence[Sequence[int]]) -> list[int]:
    """Every node's number of parents; for a leaf, how often it is named in the statements."""
    parents = [0] * n
    for _a, b in edges:
        parents[b] += 1
    return parents


def uninformative_pairs(parents: Sequence[int], rights: Sequence[int], wrongs: Sequence[int],
                        relation: int) -> list[tuple[int, int]]:
    """The (right, wrong) option pairs where the wrong option has more parents than the right one
    (``relation`` 1), as many (0) or fewer (-1). A leaf is named once per parent, so with
    ``relation`` drawn uniformly per question, counting names does not tell the answer (see the
    module docs for what happened without it)."""
    return [(r, w) for r in rights for w in wrongs
            if (parents[w] > parents[r]) - (parents[w] < parents[r]) == relation]


def _shortest_path(n: int, edges: Sequence[Sequence[int]], root: int, target: int, rng: random.Random,
                   dist: dict[int, int] | None = None) -> list[int]:
    """One shortest path root→target (a seeded choice among all shortest ones; ``dist``: the root's
    :func:`~.graph.distances`, where the caller has them)."""
    dist = distances(n, edges, root) if dist is None else dist
    preds: dict[int, list[int]] = {}
    for a, b in edges:
        if a in dist and dist.get(b) == dist[a] + 1:
            preds.setdefault(b, []).append(a)
    path = [target]
    while path[-1] != root:
        path.append(rng.choice(sorted(preds[path[-1]])))
    return path[::-1]


def generate_problem(rng: random.Random, cfg: GeneratorConfig = GeneratorConfig()) -> dict[str, Any]:
    """One ProsQA problem (a dict with :data:`FIELDS`) drawn with ``rng``."""
    cfg.check()
    hops_choices = [h for h, _ in cfg.hop_weights if cfg.min_hops <= h <= cfg.max_hops]
    hop_w = [w for h, w in cfg.hop_weights if cfg.min_hops <= h <= cfg.max_hops]
    if not hops_choices:
        hops_choices, hop_w = list(range(cfg.min_hops, cfg.max_hops + 1)), None
    hops = rng.choices(hops_choices, weights=hop_w)[0]
    relation = rng.choice((1, 0, -1))  # drawn once: retrying graphs must not favour the easier relation
    for _ in range(cfg.max_tries):
        n = rng.randint(cfg.min_nodes, cfg.max_nodes)
        if cfg.layout == "split":  # long answers need deep graphs: parents from a narrower window
            edges, persons = _split_graph(rng, n, replace(cfg, window=max(2, cfg.window - max(0, hops - 4))))
        else:
            edges, persons = _random_graph(rng, n, cfg)
        root = rng.randint(0, 1)
        other = 1 - root
        d_root, d_other = distances(n, edges, root), distances(n, edges, other)
        out_deg = [0] * n
        for a, _b in edges:
            out_deg[a] += 1
        if any(out_deg[p] == 0 for p in persons):  # a person with no statement
            continue
        targets = [v for v, d in d_root.items() if d == hops and out_deg[v] == 0 and v not in d_other]
        negs = [v for v in d_other if v not in d_root and out_deg[v] == 0 and v not in persons]
        if not targets or not negs:
            continue
        pairs = uninformative_pairs(parent_counts(n, edges), sorted(targets), sorted(negs), relation)
        if not pairs:
            continue
        target, neg = rng.choice(pairs)
        names = rng.sample(PERSONS, len(persons))
        concepts = iter(rng.sample(CONCEPTS, n - len(persons)))
        pnames = iter(names)
        symbols = [next(pnames) if v in persons else next(concepts) for v in range(n)]
        path = _shortest_path(n, edges, root, target, rng)
        order = list(edges)
        rng.shuffle(order)
        a_b = [symbols[target], symbols[neg]]
        rng.shuffle(a_b)
        question = " ".join(statement(symbols, a, b) for a, b in order) + \
            f" Is {symbols[root]} a {a_b[0]} or {a_b[1]}?"
        problem = {"question": question, "answer": f"{symbols[root]} is a {symbols[target]}.",
                   "steps": [statement(symbols, a, b) for a, b in zip(path, path[1:])],
                   "idx_to_symbol": symbols, "edges": [list(e) for e in order], "root": root, "target": target,
                   "neg_target": neg}
        if cfg.queries:
            problem["queries"] = reachability_queries(problem, rng, cfg.queries)
        if cfg.lookups:
            problem["queries"] = problem.get("queries", []) + lookup_queries(problem, rng, cfg.lookups)
        return problem
    raise InputError(f"no valid graph in {cfg.max_tries} tries for {hops} hops with {cfg.min_nodes}–{cfg.max_nodes} "
                     "nodes; allow more nodes or fewer hops.")


def reachability_queries(problem: dict[str, Any], rng: random.Random, k: int) -> list[dict[str, str]]:
    """``k`` questions "Is P a A or B?" about ``problem``'s graph, each with its answer "P is a A.":
    P is any person with statements, A a concept P reaches (the person and hop count drawn
    uniformly among those available, so short and long chains are equally common), B a concept P does not reach,
    with more, as many or fewer parents than A (drawn uniformly; see :func:`uninformative_pairs`).
    Fewer than ``k`` come back only when no person and hop count allow such a pair."""
    symbols, edges = problem["idx_to_symbol"], problem["edges"]
    n = len(symbols)
    parents = parent_counts(n, edges)
    persons = [v for v in range(n) if symbols[v][:1].isupper() and any(a == v for a, _ in edges)]
    choices = []  # (person, concepts it reaches in exactly h hops, concepts it does not reach)
    for p in persons:
        dist = distances(n, edges, p)
        unreached = sorted(v for v in range(n) if v not in dist and not symbols[v][:1].isupper())
        for h in sorted({d for d in dist.values() if d > 0}):
            choices.append((p, sorted(v for v, d in dist.items() if d == h), unreached))
    out: list[dict[str, str]] = []
    for _ in range(k):
        relation = rng.choice((1, 0, -1))
        rng.shuffle(choices)
        for p, reached, unreached in choices:
            pairs = uninformative_pairs(parents, reached, unreached, relation)
            if pairs:
                yes, no = rng.choice(pairs)
                a, b = (yes, no) if rng.random() < 0.5 else (no, yes)
                out.append({"question": f"Is {symbols[p]} a {symbols[a]} or {symbols[b]}?",
                            "answer": f"{symbols[p]} is a {symbols[yes]}."})
                break
    return out


def graph_questions(problem: dict[str, Any], rng: random.Random, k: int,
                    cfg: GeneratorConfig = GeneratorConfig()) -> list[dict[str, Any]]:
    """``k`` more questions on ``problem``'s statements, drawn as the generator draws its own but from
    any node with statements: a hop count h by ``cfg``'s weights (the validation set's: 3 to 6 hops) among
    those the graph offers (any it offers when it has none of them), a root that reaches a leaf in exactly
    h hops, that leaf as the target and a leaf the root does not reach as the other option, with more, as
    many or fewer parents than the target (:func:`uninformative_pairs`), the options in a random order.
    Each is ``{"root", "target", "neg_target", "options", "path"}`` (node indices; ``path``: one shortest
    path's nodes after the root, the target last). Fewer than ``k`` come back when the graph has no such
    question. (Drawn uniformly over every hop count instead, two in five were 1 or 2 hops, and a model
    trained on them wrote chains of thought a hop shorter than one trained without them: docs/thoughts.md.)"""
    n, edges = len(problem["idx_to_symbol"]), problem["edges"]
    parents = parent_counts(n, edges)
    leaves = {v for v in range(n)} - {a for a, _ in edges}
    by_hops: dict[int, list[tuple[int, list[int], list[int]]]] = {}   # h -> (root, leaves at h, leaves unreached)
    adj, dists = adjacency(n, edges), {}
    for root in sorted({a for a, _ in edges}):
        dist = dists[root] = distances(n, edges, root, adj)
        unreached = sorted(leaves - set(dist))
        for h in sorted({d for d in dist.values() if d > 0}):
            reached = sorted(v for v, d in dist.items() if d == h and v in leaves)
            if reached and unreached:
                by_hops.setdefault(h, []).append((root, reached, unreached))
    weights = {h: w for h, w in cfg.hop_weights if cfg.min_hops <= h <= cfg.max_hops and h in by_hops}
    hops, w = (list(weights), list(weights.values())) if weights else (sorted(by_hops), None)
    out: list[dict[str, Any]] = []
    for _ in range(4 * k if hops else 0):
        if len(out) == k:
            break
        relation = rng.choice((1, 0, -1))
        choices = by_hops[rng.choices(hops, weights=w)[0]]
        for root, reached, unreached in rng.sample(choices, len(choices)):
            pairs = uninformative_pairs(parents, reached, unreached, relation)
            if pairs:
                target, neg = rng.choice(pairs)
                options = (target, neg) if rng.random() < 0.5 else (neg, target)
                out.append({"root": root, "target": target, "neg_target": neg, "options": options,
                            "path": _shortest_path(n, edges, root, target, rng, dists[root])[1:]})
                break
    return out


def lookup_queries(problem: dict[str, Any], rng: random.Random, k: int) -> list[dict[str, str]]:
    """``k`` one-hop questions about ``problem``'s statements: "What is Tom?" → "Tom is a terpus.",
    "What is every terpus?" → "Every terpus is a brimpus." (one of the statements, drawn at random;
    where a node has several, any of them is right and the label is one of them). The answer names
    one of many concepts, so it teaches finding a statement by its subject far faster than a
    two-way choice does."""
    symbols, edges = problem["idx_to_symbol"], problem["edges"]
    out = []
    for _ in range(k if edges else 0):
        a, b = rng.choice(edges)
        subject = symbols[a] if symbols[a][:1].isupper() else f"every {symbols[a]}"
        out.append({"question": f"What is {subject}?", "answer": statement(symbols, a, b)})
    return out


def generate(n: int, seed: int = 0, cfg: GeneratorConfig = GeneratorConfig()) -> list[dict[str, Any]]:
    """``n`` problems; the same ``seed`` always gives the same list."""
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}.")
    rng = random.Random(seed)
    return [generate_problem(rng, cfg) for _ in range(n)]


def fixed_hop_sets(n: int = 100, hops: Sequence[int] = (1, 2, 3, 4), seed: int = 990) -> dict[int, list[dict[str, Any]]]:
    """{h: n problems whose answer is exactly h hops away}, on small graphs of the first generator
    (8–14 nodes, sparse), seeded ``seed + h``: the sets that ask whether hop h needs h iterations
    (docs/recurrent.md). The same as ``python -m explorer.tasks.prosqa.generate OUT --n N --seed
    SEED+h --min-nodes 8 --max-nodes 14 --min-hops h --max-hops h --layout sparse
    --max-extra-persons 3 --max-parents 3``."""
    return {h: generate(n, seed + h, GeneratorConfig(min_nodes=8, max_nodes=14, min_hops=h, max_hops=h, layout="sparse",
                                                     max_extra_persons=3, max_parents=3)) for h in hops}


def write(problems: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write problems as Coconut JSON (a list of dicts) atomically."""
    return atomic_write_text(path, json.dumps(list(problems), indent=1) + "\n")


def load(path: str | Path) -> list[dict[str, Any]]:
    """Read a Coconut-format ProsQA file, checking that every problem has the needed fields."""
    path = Path(path)
    if not path.is_file():
        raise SaveFileError(f"{path} does not exist; generate one with `python -m explorer.tasks.prosqa.generate`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise SaveFileError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8.") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise SaveFileError(f"{path} is not valid JSON of a sane depth ({type(e).__name__}: {str(e)[:80]}); "
                            "write it again.") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and {"question", "answer", "steps"} <= set(d)
                                             for d in data):
        raise SaveFileError(f"{path} is not a Coconut dataset (a list of {{question, answer, steps}}); "
                            "generate one with `python -m explorer.tasks.prosqa.generate`.")
    return data


def vocabulary_from(path: str | Path) -> tuple[list[str], list[str]]:
    """(people, concepts): the sorted names used in a ProsQA file (people are capitalised)."""
    names = {s for d in load(path) for s in d.get("idx_to_symbol", [])}
    return sorted(s for s in names if s[:1].isupper()), sorted(s for s in names if not s[:1].isupper())


def main(argv: list[str] | None = None) -> int:
    """``python -m explorer.tasks.prosqa.generate OUT.json --n 17000 --seed 0``."""
    ap = argparse.ArgumentParser(prog="prosqa-generate", description="Generate ProsQA problems (Coconut JSON).")
    ap.add_argument("out", help="output .json path")
    ap.add_argument("--n", type=int, default=1000, help="number of problems")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-nodes", type=int, default=14)
    ap.add_argument("--max-nodes", type=int, default=28)
    ap.add_argument("--min-hops", type=int, default=3)
    ap.add_argument("--max-hops", type=int, default=6)
    ap.add_argument("--queries", type=int, default=0,
                    help="extra reachability questions per graph, for models that answer without CoT")
    ap.add_argument("--lookups", type=int, default=0, help="extra one-hop 'What is X?' questions per graph")
    ap.add_argument("--layout", default=GeneratorConfig.layout, choices=["split", "sparse"],
                    help="'split' (default): graphs as dense as the validation set's; 'sparse': the first generator's "
                         "(with --max-extra-persons 3 --max-parents 3 it reproduces files written before the change)")
    ap.add_argument("--max-extra-persons", type=int, default=GeneratorConfig.max_extra_persons)
    ap.add_argument("--max-parents", type=int, default=GeneratorConfig.max_parents)
    args = ap.parse_args(argv)
    cfg = GeneratorConfig(min_nodes=args.min_nodes, max_nodes=args.max_nodes, min_hops=args.min_hops,
                          max_hops=args.max_hops, queries=args.queries, lookups=args.lookups, layout=args.layout,
                          max_extra_persons=args.max_extra_persons, max_parents=args.max_parents)
    try:
        path = write(generate(args.n, args.seed, cfg), args.out)
    except (InputError, SaveFileError) as e:
        print(f"prosqa-generate: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} problems to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
