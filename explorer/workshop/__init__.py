"""Exercise checking for the workshop notebooks.

Each notebook has a set of exercises; ``check(name, answer)`` returns a :class:`Feedback` that
renders as a green or orange box in a notebook (never a bare assert) and says what to look at when
the answer is not right. Answers are checked against what the model actually does, computed when
asked, so they stay true for any model a facilitator swaps in.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError


@dataclass(frozen=True)
class Feedback:
    """The result of checking one answer."""

    exercise: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        return f"{'✓' if self.correct else '✗'} {self.exercise}: {self.message}"

    def _repr_html_(self) -> str:
        colour, mark = ("#1b7f3b", "✓ correct") if self.correct else ("#b35900", "✗ not yet")
        return (f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
                f'<b style="color:{colour}">{mark}</b> · <code>{html.escape(self.exercise)}</code><br>'
                f"{html.escape(self.message)}</div>")


@dataclass(frozen=True)
class Exercise:
    name: str
    question: str
    check: Callable[[Any], Feedback]


class ExerciseSet:
    """The exercises of one notebook: ``ex.list()``, ``ex.check(name, answer)``."""

    def __init__(self, title: str, exercises: list[Exercise]) -> None:
        self.title = title
        self._by_name = {e.name: e for e in exercises}

    def list(self) -> list[str]:
        return [f"{e.name}: {e.question}" for e in self._by_name.values()]

    def check(self, name: str, answer: Any) -> Feedback:
        if name not in self._by_name:
            raise InputError(f"no exercise {name!r} in {self.title!r}; the exercises are {list(self._by_name)}.")
        if answer is None:
            return Feedback(name, False, f"no answer yet: set answer = ... above and run the cell again. "
                                         f"The question: {self._by_name[name].question}")
        return self._by_name[name].check(answer)

    def __repr__(self) -> str:
        return f"{self.title}\n" + "\n".join(f"  {line}" for line in self.list())


def feedback(name: str, ok: bool, right: str, wrong: str) -> Feedback:
    return Feedback(name, bool(ok), right if ok else wrong)


__all__ = ["Feedback", "Exercise", "ExerciseSet", "feedback"]
