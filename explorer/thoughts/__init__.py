"""Continuous thoughts: Coconut, Soft Thinking and a CoT baseline (:mod:`.engine`), the ProsQA
frontier probe (:mod:`.frontier`), and the Coconut curriculum trainer (:mod:`.train`)."""
from .engine import MODES, ThoughtResult, ThoughtSession, recompute, think

__all__ = ["MODES", "ThoughtResult", "ThoughtSession", "recompute", "think"]
