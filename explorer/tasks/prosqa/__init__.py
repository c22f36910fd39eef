"""ProsQA (Coconut's graph-reasoning task): everything about it that does not depend on a method.

* :mod:`.generate` — the seeded generator (Coconut JSON), :func:`load` and :func:`write`.
* :mod:`.graph` — the one breadth-first search: distances, hop sets, reach sets.
* :mod:`.prompts` — the prompt and Coconut's answer check; :mod:`.compact` — the compact format.
* :mod:`.tokenizer` — the word-level ProsQA tokenizer and names as token ids.
* :mod:`.audit` — how often surface rules pick the answer.

Nothing here imports a method: the evaluators are the methods' own (:mod:`explorer.thoughts.evaluate`,
:mod:`explorer.recurrent.evaluate`, :mod:`explorer.concepts.lcm.evaluate`), and
``latent-explorer prosqa eval`` is :mod:`explorer.cli`'s.
"""
from pathlib import Path

from .generate import CONCEPTS, PERSONS, GeneratorConfig, generate, generate_problem, load, write

VALIDATION = Path(__file__).resolve().parent / "data" / "prosqa_valid.json"
"""The real ProsQA validation set (Coconut's, MIT): for evaluation only, never for training."""

__all__ = ["VALIDATION", "CONCEPTS", "PERSONS", "GeneratorConfig", "generate", "generate_problem", "load", "write"]
