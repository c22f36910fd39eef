"""A small Base-LCM (Meta's "Large Concept Models", 2024): next-concept prediction by MSE
regression in a sentence-embedding space, here all-MiniLM-L6-v2, on ProsQA reasoning chains.

Inputs are concepts (sentence vectors) after the paper's robust normalisation — per dimension,
subtract the median and divide by IQR/1.349 (:class:`RobustNormalizer`, fitted on training
concepts): every statement of the problem (type 0, as a set), the question "Is X a A or B?"
(type 1), and the reasoning steps (type 2, with their step index). A small decoder-only
transformer reads them — the statements and question are a prefix seen whole, the steps are
causal — and regresses, at the question and at every step, the next step's normalised concept.

Reasoning (:meth:`BaseLCM.reason`) predicts a concept, decodes it to the nearest statement of the
problem by cosine (the concepts it can say are the problem's own sentences), feeds that
statement's concept back, and stops when a statement reaches one of the question's two options
(or after ``max_steps``); the answer is "X is a <that option>.". The whole chain is a
:class:`Trajectory` with steps ``concept.{k}``.

Trained only on the generator's problems (:mod:`explorer.tasks.prosqa.generate`); the real
validation set is for evaluation only. The model, its normaliser, reading problems and loading
are :mod:`.model` (and importable from here), the trainer :mod:`.train`, the evaluation
:mod:`.evaluate`; ``python -m explorer.concepts.lcm`` is :mod:`.__main__`. Reproduce the shipped weights::

    python -m explorer.concepts.lcm train            # explorer/concepts/weights/prosqa-lcm.*
    python -m explorer.concepts.lcm eval --data /path/to/prosqa_valid.json --json
"""
from __future__ import annotations

from .model import DEFAULT_PATH, FORMAT, BaseLCM, LCMConfig, RobustNormalizer, load_lcm, parse_problem


__all__ = ["DEFAULT_PATH", "FORMAT", "BaseLCM", "LCMConfig", "RobustNormalizer", "load_lcm", "parse_problem"]
