"""ProsQA prompts and answer checking as in the Coconut repository, whatever the method.

The prompt is ``question + "\\n"`` (:func:`prompt_of`, Coconut's format); a trained model continues
with its chain of thought (CoT), or with ``<bot>`` thoughts ``<eot>`` (Coconut), and then
``### <answer>``. The answer is the text after the last ``#`` (commas removed, stripped), and it
must equal the reference answer string exactly (:func:`is_correct`).

The compact format of the recurrent-depth models is :mod:`.compact`; the methods' evaluators are
:mod:`explorer.thoughts.evaluate`, :mod:`explorer.recurrent.evaluate` and
:mod:`explorer.concepts.lcm.evaluate`.
"""
from __future__ import annotations

from typing import Any


def parse_answer(text: str) -> str:
    """Coconut's answer extraction: the text after the last '#', without commas, stripped."""
    return text.split("#")[-1].replace(",", "").strip()


def parse_cot(text: str) -> str:
    """Coconut's chain-of-thought extraction: the text before the first '#', stripped."""
    return text.split("#")[0].strip()


def is_correct(text: str, answer: str) -> bool:
    return parse_answer(text) == answer.replace(",", "").strip()


def prompt_of(problem: dict[str, Any]) -> str:
    return problem["question"] + "\n"
