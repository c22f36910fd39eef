"""ThoughtTree: a semantic-decoding search tree you can replay, step through and steer."""
from __future__ import annotations

from typing import Any, Sequence

import anywidget
import numpy as np
import traitlets

from explorer.errors import InputError
from explorer.semantic.core import Context, Processor, SearchTree
from explorer.semantic.processors import Person
from explorer.trajectory import Trajectory

from ._base import esm


class ThoughtTree(anywidget.AnyWidget):
    """A :class:`~explorer.semantic.core.SearchTree` drawn as a tree: nodes are thoughts (colour:
    value; grey: pruned; outlined: the chosen path), edges are proposals. The replay slider shows the
    search in the order it happened (in the browser). Clicking a thought shows its text, source and
    value, and lets a person steer: **expand** it (call the proposer), **prune** it, **accept** it (the
    chosen path now ends there), or **write** a thought of their own under it (the person is a
    processor; the fact checker and judges in ``valuers`` score it like any other).

    ``map``: a :class:`widgets.LatentMap` on which every thought is drawn at its concept vector, the
    chosen path as a line (redrawn after each change)."""

    _esm = esm("tree.js")

    step = traitlets.Int(-1).tag(sync=True)          # events shown (-1: all)
    selected = traitlets.Int(0).tag(sync=True)
    _tree = traitlets.Dict().tag(sync=True)
    _size = traitlets.List([760, 360]).tag(sync=True)

    def __init__(self, tree: SearchTree, *, context: Context | None = None, proposer: Processor | None = None,
                 valuers: Sequence[Processor] = (), k: int = 3, map: Any = None, size: tuple[int, int] = (760, 360),
                 **kwargs: Any) -> None:
        if not isinstance(tree, SearchTree):
            raise InputError(f"ThoughtTree draws a SearchTree, got {type(tree).__name__}; grow one with "
                             "explorer.semantic.search.run(...) or explorer.semantic.prosqa.solve(...).tree.")
        super().__init__(**kwargs)
        self.tree, self.context, self.proposer = tree, context or Context(tree.root.text), proposer
        self.valuers, self.k, self.map = list(valuers), int(k), map
        self.person = Person()
        self._size = [int(size[0]), int(size[1])]
        self.on_msg(self._on_msg)
        self._sync()

    # -- steering (also the widget's buttons) ------------------------------------------------------
    def expand(self, node: int, n: int | None = None) -> list[int]:
        """Ask the proposer for ``n`` (default ``k``) thoughts after ``node``; each is judged by the valuers."""
        if self.proposer is None:
            raise InputError("this tree has no proposer to expand with; pass proposer= (e.g. LCMProposer()).")
        self._check(node)
        ids = [self.tree.add(t, node) for t in self.tree.call(self.proposer, [node], self.context, n or self.k)]
        for i in ids:
            self._judge(i)
        self._sync()
        return ids

    def prune(self, node: int) -> None:
        self._check(node)
        if node == 0:
            raise InputError("the root cannot be pruned; prune one of its children.")
        self.tree.prune(node)
        self._sync()

    def accept(self, node: int) -> None:
        """Make the path to ``node`` the chosen one."""
        self._check(node)
        self.tree.choose(node)
        self._sync()

    def write(self, parent: int, text: str) -> int:
        """A person's thought under ``parent`` (encoded to its concept vector, judged by the valuers)."""
        self._check(parent)
        self.person.say(text)
        (t,) = self.tree.call(self.person, [parent], self.context, 1)
        i = self.tree.add(t, parent)
        self._judge(i)
        self.selected = i
        self._sync()
        return i

    def _judge(self, node: int) -> None:
        v = float(self.tree.nodes[node].meta.get("prior", 1.0))
        for proc in self.valuers:
            out = self.tree.call(proc, [node], self.context, 1)
            v *= float(out[0].value) if out and out[0].value is not None else 1.0
        self.tree.set_value(node, v)
        if v <= 0:
            self.tree.prune(node)

    def _check(self, node: int) -> None:
        if not isinstance(node, (int, np.integer)) or not 0 <= node < len(self.tree):
            raise InputError(f"no thought {node!r} in this tree (ids 0..{len(self.tree) - 1}).")

    def _on_msg(self, _: Any, content: dict[str, Any], buffers: Any) -> None:
        action, node = content.get("action"), int(content.get("node", -1))
        try:
            if action == "expand":
                self.expand(node)
            elif action == "prune":
                self.prune(node)
            elif action == "accept":
                self.accept(node)
            elif action == "write":
                self.write(node, str(content.get("text", "")))
            self.send({"ok": True})
        except InputError as e:
            self.send({"error": str(e)})

    # -- showing ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        d = self.tree.to_dict()
        d["can_expand"] = self.proposer is not None
        self._tree = d
        if self.map is not None:
            self._draw_map()

    def _draw_map(self) -> None:
        vecs = [(t.id, t.vector) for t in self.tree.nodes if t.vector is not None]
        if not vecs:
            return
        for name in ("thoughts", "chosen path"):
            if name in self.map.groups:
                self.map.remove(name)
        traj = Trajectory.from_vectors(np.stack([v for _, v in vecs]), names=[f"thought.{i}" for i, _ in vecs],
                                       labels=[self.tree.nodes[i].text for i, _ in vecs], kind="thoughts")
        self.map.add(traj, name="thoughts", path=False)
        if self.tree.chosen:
            self.map.add(self.tree.trajectory(), name="chosen path")

    def chosen_texts(self) -> list[str]:
        return [self.tree.nodes[i].text for i in self.tree.chosen]

    def __repr__(self) -> str:
        return f"ThoughtTree({self.tree!r})"
