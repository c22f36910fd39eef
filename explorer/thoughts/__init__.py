"""Continuous thoughts: Coconut, Soft Thinking and a CoT baseline (:mod:`.engine`), the ProsQA
frontier probe (:mod:`.frontier`), ProsQA evaluation (:mod:`.evaluate`), and the Coconut
curriculum trainer (:mod:`.train`, its examples and batches in :mod:`.data`)."""
from .engine import MODES, ThoughtResult, ThoughtSession, recompute, think

__all__ = ["MODES", "ThoughtResult", "ThoughtSession", "recompute", "think"]
