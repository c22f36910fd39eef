"""Vector arithmetic over any space: parse ``king - man + woman``, combine, interpolate.

The math here knows nothing about models. A *space* is any object following
:class:`TokenSpace`: it turns text into a vector and finds the nearest entries to a vector.
``model.token_space`` implements it for tokens (input-embedding rows, cosine); a sentence
encoder can implement it for sentences, and the same expressions and widgets work unchanged.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import EmptyInputError, InputError, VectorError
from .trajectory import Step, TokenTable, Trajectory


@runtime_checkable
class TokenSpace(Protocol):
    """What arithmetic and :class:`widgets.ConceptLab` need from a vector space."""

    name: str

    def encode(self, text: str) -> np.ndarray:
        """A (d,) vector for ``text`` (a token, a word or a sentence)."""
        ...

    def nearest(self, vec: np.ndarray, k: int = 10, exclude: Sequence[str] = ()) -> TokenTable:
        """The ``k`` entries nearest to ``vec``, leaving out the texts in ``exclude``."""
        ...


@dataclass(frozen=True)
class Term:
    """One operand of an expression: ``sign * weight * encode(text)``."""

    text: str
    sign: int = 1
    weight: float = 1.0
    quoted: bool = False

    @property
    def coefficient(self) -> float:
        return self.sign * self.weight

    def __str__(self) -> str:
        w = "" if self.weight == 1.0 else f"{self.weight:g}*"
        t = f'"{self.text}"' if self.quoted else self.text
        return f"{'-' if self.sign < 0 else '+'} {w}{t}"


_TERM = re.compile(r"""
    \s*(?P<sign>[+\-−])?\s*                      # optional sign (ASCII or U+2212)
    (?:(?P<weight>\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?  # optional weight: 0.5 * x
    (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s+\-−"'*](?:[^+\-−"'*]*[^\s+\-−"'*])?))  # "sentence" or word(s)
    \s*(?=[+\-−]|$)
""", re.X)


def parse_expression(expr: str) -> list[Term]:
    """Parse ``"king - man + woman"``, ``'"a sentence" - "another" + word'`` or ``"0.5*a + 0.5*b"``.

    Bare operands run to the next ``+``/``-``; quote an operand that contains ``+``, ``-`` or
    needs its surrounding spaces. Raises :class:`InputError` pointing at the first bad spot.
    """
    if not isinstance(expr, str):
        raise InputError(f"write the expression as a str, e.g. 'king - man + woman'; got {type(expr).__name__}.")
    if not expr.strip():
        raise EmptyInputError("the expression is empty; write e.g. king - man + woman.")
    terms: list[Term] = []
    pos, s = 0, expr.rstrip()
    while pos < len(s):
        m = _TERM.match(s, pos)
        if not m or m.end() == pos:
            raise InputError(f"cannot parse the expression at {s[pos:pos + 20]!r} (char {pos}); "
                             "write operands separated by + or -, sentences in quotes.")
        if terms and not m.group("sign"):
            raise InputError(f"missing + or - before {s[pos:].strip()[:20]!r}.")
        quoted = m.group("dq") is not None or m.group("sq") is not None
        text = m.group("dq") if m.group("dq") is not None else m.group("sq") if quoted else m.group("bare").strip()
        if not text.strip():
            raise InputError(f"empty operand at char {pos}; remove the stray sign or fill the quotes.")
        terms.append(Term(text, -1 if m.group("sign") in ("-", "−") else 1,
                          float(m.group("weight")) if m.group("weight") else 1.0, quoted))
        pos = m.end()
    return terms


def _check(v: Any, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if a.size == 0 or not np.isfinite(a).all():
        raise VectorError(f"{what} is empty or not finite; check the space's encode().")
    return a


def combine(space: TokenSpace, expr: str | Sequence[Term]) -> np.ndarray:
    """The vector ``Σ coefficient · encode(text)`` of an expression (string or parsed terms)."""
    terms = parse_expression(expr) if isinstance(expr, str) else list(expr)
    if not terms:
        raise EmptyInputError("no terms to combine.")
    out: np.ndarray | None = None
    for t in terms:
        v = _check(space.encode(t.text), f"encode({t.text!r})")
        if out is not None and v.shape != out.shape:
            raise VectorError(f"{t.text!r} encodes to {v.shape[0]} dims, others to {out.shape[0]}.")
        out = t.coefficient * v if out is None else out + t.coefficient * v
    assert out is not None
    return out.astype(np.float32)


@dataclass
class ArithmeticResult:
    expression: str
    terms: list[Term]
    operands: dict[str, np.ndarray]  # text -> vector, in expression order
    vector: np.ndarray
    table: TokenTable

    def __repr__(self) -> str:
        return f"{self.expression}\n{self.table!r}"

    def _repr_html_(self) -> str:
        import html

        return f"<div><code>{html.escape(self.expression)}</code></div>{self.table._repr_html_()}"


def evaluate(space: TokenSpace, expr: str, k: int = 10, exclude_operands: bool = True) -> ArithmeticResult:
    """Parse, combine and look up the nearest ``k`` entries (operands left out by default)."""
    terms = parse_expression(expr)
    operands = {t.text: _check(space.encode(t.text), f"encode({t.text!r})") for t in terms}
    vec = np.zeros_like(next(iter(operands.values())))
    for t in terms:
        vec = vec + t.coefficient * operands[t.text]
    exclude = [t.text for t in terms] if exclude_operands else []
    table = space.nearest(vec.astype(np.float32), k=k, exclude=exclude)
    return ArithmeticResult(expr, terms, operands, vec.astype(np.float32), table)


def analogy(space: TokenSpace, a: str, b: str, c: str, k: int = 10) -> TokenTable:
    """Nearest entries to ``a − b + c`` (``analogy(s, "king", "man", "woman")`` → queen), operands excluded."""
    for name, t in (("a", a), ("b", b), ("c", c)):
        if not t or not str(t).strip():
            raise EmptyInputError(f"analogy operand {name} is empty; give three texts.")
    vec = combine(space, [Term(a, 1), Term(b, -1), Term(c, 1)])
    return space.nearest(vec, k=k, exclude=[a, b, c])


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of direction, linear interpolation of length."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    ua, ub = a / na, b / nb
    omega = math.acos(float(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6:
        u = ua
    else:
        u = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * ub) / math.sin(omega)
    return u * ((1 - t) * na + t * nb)


def interpolate(a: Any, b: Any, n: int = 11, method: str = "slerp", *,
                labels: tuple[str, str] | None = None, space: str = "") -> Trajectory:
    """``n`` points from ``a`` to ``b`` (both ends included) as a trajectory named ``interp.{i}``.

    ``method="slerp"`` turns the direction along the great circle and moves the length linearly
    (vectors keep a realistic norm mid-way); ``"lerp"`` is the straight line.
    """
    va, vb = _check(a, "a"), _check(b, "b")
    if va.shape != vb.shape:
        raise VectorError(f"a and b differ in size ({va.shape[0]} vs {vb.shape[0]}); use one space.")
    if n < 2:
        raise InputError(f"interpolate needs n >= 2 points, got {n}.")
    if method not in ("slerp", "lerp"):
        raise InputError(f"unknown interpolation method {method!r}; use 'slerp' or 'lerp'.")
    la, lb = labels or ("a", "b")
    steps = []
    for i in range(n):
        t = i / (n - 1)
        v = _slerp(va.astype(np.float64), vb.astype(np.float64), t) if method == "slerp" else (1 - t) * va + t * vb
        lab = la if i == 0 else lb if i == n - 1 else f"{t:.2f}"
        steps.append(Step(f"interp.{i}", lab, {f"interp.{i}": np.asarray(v, np.float32)}, meta={"t": t}))
    return Trajectory(steps, kind="concepts", space=space, title=f"{la} → {lb} ({method})",
                      meta={"method": method, "n": n})


__all__ = ["TokenSpace", "Term", "parse_expression", "combine", "evaluate", "ArithmeticResult",
           "analogy", "interpolate"]
