"""Concept space: sentences as vectors.

* :mod:`.encoders` — sentence encoders behind one interface (all-MiniLM-L6-v2 offline default, a
  language model's pooled hidden states, SONAR).
* :mod:`.space` — :class:`ConceptSpace`, the arithmetic ``TokenSpace`` over a sentence bank (so
  ``ConceptLab`` takes sentences), concept arithmetic and interpolation as trajectories
  (``concept.{k}``), and :func:`analogy_accuracy` for token spaces.
* :mod:`.bank` — built-in workshop banks and the token analogy set.
* :mod:`.autoencoder` — the shipped MiniLM → text decoder (a small GRU).
* :mod:`.lcm` — a small Base-LCM (MSE next-concept model) for ProsQA chains: the model
  (:mod:`.lcm.model`), its trainer (:mod:`.lcm.train`) and its evaluation (:mod:`.lcm.evaluate`).

Heavy parts (torch models) load lazily: importing this package is cheap.
"""
from .bank import ANALOGIES, BANKS, bank, prosqa_statements
from .encoders import (ConceptEncoder, HiddenStateEncoder, MiniLMEncoder, SonarEncoder, load_encoder, minilm_path,
                       sonar_available)
from .space import ConceptSpace, analogy_accuracy


def load_autoencoder(path=None, encoder=None):
    """The shipped sentence decoder (see :mod:`explorer.concepts.autoencoder`)."""
    from .autoencoder import load_autoencoder as _load

    return _load(path, encoder)


def load_lcm(path=None, encoder=None):
    """The shipped ProsQA Base-LCM (see :mod:`explorer.concepts.lcm`)."""
    from .lcm import load_lcm as _load

    return _load(path, encoder)


__all__ = ["ANALOGIES", "BANKS", "bank", "prosqa_statements", "ConceptEncoder", "MiniLMEncoder", "HiddenStateEncoder",
           "SonarEncoder", "load_encoder", "minilm_path", "sonar_available", "ConceptSpace", "analogy_accuracy",
           "load_autoencoder", "load_lcm"]
