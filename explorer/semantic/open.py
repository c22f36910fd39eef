"""The open-ended mode: any question to the default language model; it proposes next thoughts
(sampled sentences), the judge scores each one, and a search grows the tree to a fixed depth. There
is no goal and no accuracy: it shows what the space of candidate thoughts looks like for a question
(and :class:`widgets.ThoughtTree` lets a person steer it)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .core import Context, SearchTree, Thought
from .processors import LMJudge, LMProposer
from .search import run


def _never(path: Sequence[Thought], context: Context) -> bool:
    return False


def explore(question: str, algorithm: str = "beam", width: int = 2, *, depth: int = 3, k: int | None = None,
            model: Any = None, judge: bool = True, proposer: Any = None, seed: int = 0) -> SearchTree:
    """Grow a tree of thoughts for ``question`` to ``depth`` steps (``proposer``: default the
    default LM; ``judge``: score each thought with the LM judge)."""
    import explorer
    from ..concepts.encoders import load_encoder

    model = model if model is not None else explorer.load_model()
    prop = proposer if proposer is not None else LMProposer(model, seed=seed)
    enc = getattr(prop, "encoder", None) or load_encoder("minilm")
    root = Thought(question, np.asarray(enc.encode([question])[0], np.float32), "question")
    valuers = [LMJudge(model)] if judge else []
    return run(algorithm, root, Context(question), prop, goal=_never, valuers=valuers, width=width, k=k,
               max_depth=depth, seed=seed)
