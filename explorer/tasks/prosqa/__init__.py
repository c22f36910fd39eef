"""ProsQA (Coconut's graph-reasoning task): a seeded generator and answer-matching evaluation."""
from .generate import CONCEPTS, PERSONS, GeneratorConfig, generate, generate_problem, load, write

__all__ = ["CONCEPTS", "PERSONS", "GeneratorConfig", "generate", "generate_problem", "load", "write"]
