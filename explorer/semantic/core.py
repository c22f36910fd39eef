"""Thoughts, processors and the search tree.

A :class:`Thought` is a piece of meaning: its text, its concept vector (MiniLM, 384-d) when one was
computed, the processor that produced it, its parent in the tree, what producing it cost (calls),
and a value when something judged it. A :class:`Processor` takes a path of thoughts (root first)
and a :class:`Context` and returns thoughts: proposers return candidate next thoughts; tools and
judges return one thought that carries their verdict as ``value``. That one method is the whole
protocol, so a new model, tool or person plugs in by implementing it.

Algorithms (:mod:`.search`) grow a :class:`SearchTree`: every thought ever proposed is a node, every
processor call is logged (``calls``), ``events`` keep the order things happened in (so a widget can
replay the search), ``pruned`` the nodes a search dropped, ``chosen`` the path it returned.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import InputError
from ..trajectory import Step, Trajectory

EVENTS = ("root", "propose", "value", "prune", "choose")


@dataclass
class Thought:
    """One semantic token: ``text``, ``vector`` (or None), ``source`` (the processor's name),
    ``parent`` (a node id, None for a root), ``cost`` (processor calls it took), ``value`` (None
    until judged), ``id`` (its node id once in a tree) and ``meta``."""

    text: str
    vector: np.ndarray | None = None
    source: str = ""
    parent: int | None = None
    cost: float = 0.0
    value: float | None = None
    id: int = -1
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What processors may read: the ``question``, the given ``facts`` (may be empty), and ``extra``."""

    question: str
    facts: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Processor(Protocol):
    """Anything that takes thoughts and returns thoughts: a model, a tool, a person."""

    name: str

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        """Given the ``path`` so far (root first), return up to ``n`` thoughts: candidate next
        thoughts (a proposer), or one thought whose ``value`` is a verdict on ``path[-1]`` (a tool or
        a judge)."""


class SearchTree:
    """The thoughts a search produced, as a tree, with the log of every processor call."""

    def __init__(self, root: Thought) -> None:
        self.nodes: list[Thought] = []
        self.children: dict[int, list[int]] = {}
        self.events: list[tuple[str, int]] = []
        self.calls: Counter[str] = Counter()
        self.pruned: set[int] = set()
        self.chosen: list[int] = []
        self.add(root, event="root")

    # -- growing -------------------------------------------------------------------------------
    def add(self, thought: Thought, parent: int | None = None, *, event: str = "propose") -> int:
        """Add ``thought`` under ``parent`` (None: the root); returns its id."""
        if parent is not None and not 0 <= parent < len(self.nodes):
            raise InputError(f"no node {parent} in this tree (it has {len(self.nodes)}).")
        thought.id, thought.parent = len(self.nodes), parent
        self.nodes.append(thought)
        self.children[thought.id] = []
        if parent is not None:
            self.children[parent].append(thought.id)
        self.events.append((event, thought.id))
        return thought.id

    def call(self, processor: Processor, path_ids: Sequence[int], context: Context, n: int = 1) -> list[Thought]:
        """Call ``processor`` on the path ending at ``path_ids[-1]`` and log the call."""
        self.calls[processor.name] += 1
        return processor.process(self.path(path_ids[-1]), context, n)

    def set_value(self, node: int, value: float) -> None:
        self.nodes[node].value = float(value)
        self.events.append(("value", node))

    def prune(self, node: int) -> None:
        if node not in self.pruned:
            self.pruned.add(node)
            self.events.append(("prune", node))

    def choose(self, node: int) -> None:
        """Mark the path from the root to ``node`` as the search's answer."""
        self.chosen = [t.id for t in self.path(node)]
        self.events.append(("choose", node))

    # -- reading -------------------------------------------------------------------------------
    @property
    def root(self) -> Thought:
        return self.nodes[0]

    def path(self, node: int) -> list[Thought]:
        """The thoughts from the root to ``node``."""
        out = []
        cur: int | None = node
        while cur is not None:
            out.append(self.nodes[cur])
            cur = self.nodes[cur].parent
        return out[::-1]

    def depth(self, node: int) -> int:
        return len(self.path(node)) - 1

    @property
    def total_calls(self) -> int:
        return int(sum(self.calls.values()))

    def trajectory(self, node: int | None = None) -> Trajectory:
        """The path to ``node`` (default: the chosen path) as a trajectory of concept vectors
        (thoughts without a vector are left out), for the map and the stepper."""
        ids = [t.id for t in self.path(node)] if node is not None else self.chosen
        if not ids:
            raise InputError("the search chose no path; pass a node id.")
        steps = []
        for i in ids:
            t = self.nodes[i]
            if t.vector is None:
                continue
            name = f"thought.{t.id}"
            steps.append(Step(name, t.text, {name: np.asarray(t.vector, np.float32)},
                              {"value": float(t.value) if t.value is not None else float("nan"), "depth": float(self.depth(i))},
                              meta={"source": t.source, "id": t.id}))
        if not steps:
            raise InputError("no thought on this path has a concept vector.")
        return Trajectory(steps, kind="thoughts", space="minilm", title=self.root.text,
                          meta={"calls": dict(self.calls)})

    def to_dict(self) -> dict[str, Any]:
        """Everything but the vectors, JSON-ready (for widgets and logs)."""
        return {"nodes": [{"id": t.id, "text": t.text, "source": t.source, "parent": t.parent, "cost": t.cost,
                           "value": t.value, "depth": self.depth(t.id), "meta": {k: v for k, v in t.meta.items()
                                                                                  if isinstance(v, (str, int, float, bool))}}
                          for t in self.nodes],
                "events": [list(e) for e in self.events], "calls": dict(self.calls), "pruned": sorted(self.pruned),
                "chosen": list(self.chosen)}

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"SearchTree({len(self.nodes)} thoughts, calls={dict(self.calls)}, chosen depth {max(0, len(self.chosen) - 1)})"
