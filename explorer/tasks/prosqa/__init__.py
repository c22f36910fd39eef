"""ProsQA (Coconut's graph-reasoning task): a seeded generator and answer-matching evaluation."""
from pathlib import Path

from .generate import CONCEPTS, PERSONS, GeneratorConfig, generate, generate_problem, load, write

VALIDATION = Path(__file__).resolve().parent / "data" / "prosqa_valid.json"
"""The real ProsQA validation set (Coconut's, MIT): for evaluation only, never for training."""

__all__ = ["VALIDATION", "CONCEPTS", "PERSONS", "GeneratorConfig", "generate", "generate_problem", "load", "write"]
