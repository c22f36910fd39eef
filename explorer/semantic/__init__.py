"""Semantic decoding ("The Era of Semantic Decoding", Peyrard, Josifoski & West, 2024): language
models, tools and people are *processors* that exchange *thoughts*; decoding algorithms search the
space of thoughts rather than of tokens.

* :mod:`.core` — :class:`Thought` (text, concept vector, where it came from, what it cost), the one
  :class:`Processor` protocol, the :class:`SearchTree` every algorithm grows (with its call log).
* :mod:`.processors` — the Base-LCM proposing next concepts (snapped to the problem's statements),
  random proposals, the default LM proposing sentences, a fact checker (a tool), an LM judge, and a
  person.
* :mod:`.search` — greedy, best-of-n, beam search and Tree-of-Thoughts BFS over thoughts.
* :mod:`.prosqa` — ProsQA as a semantic-decoding task: solve a problem, evaluate an algorithm on the
  validation set, ``latent-explorer semantic eval``.
* :mod:`.open` — the open-ended mode: any question, the default LM proposing, the judge scoring.
"""
from .core import Context, Processor, SearchTree, Thought

__all__ = ["Thought", "Processor", "Context", "SearchTree"]
