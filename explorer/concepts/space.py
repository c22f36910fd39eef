"""Sentences as a vector space: :class:`ConceptSpace` follows :class:`explorer.arithmetic.TokenSpace`
(``name``, ``encode``, ``nearest``), so :func:`explorer.arithmetic.evaluate`, ``analogy``,
``interpolate`` and :class:`widgets.ConceptLab` work on sentences unchanged.

``encode`` runs a sentence encoder (default all-MiniLM-L6-v2); ``nearest`` ranks the sentences of a
bank (a built-in workshop bank or your own) by cosine and answers a :class:`TokenTable` with
``space="bank"`` (``ids`` are positions in the bank). With a ``decoder`` (the shipped
autoencoder or SONAR's) points between sentences can also be read back as new text.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..arithmetic import ArithmeticResult, analogy, evaluate, interpolate as _interpolate
from ..errors import EmptyInputError, InputError, VectorError
from ..trajectory import Step, TokenTable, Trajectory
from ..validate import whole
from .bank import ANALOGIES, bank as _bank


class ConceptSpace:
    """A sentence encoder plus a bank of sentences to read vectors back against.

    ``bank``: a built-in bank name (``"stories"``, ``"facts"``, ``"sentiment"``, ``"all"``) or a
    list of sentences; ``encoder``: ``"minilm"`` (default), ``"sonar"``, an :class:`explorer.Model`
    (its pooled hidden states) or any :class:`ConceptEncoder`; ``decoder``: an object with
    ``decode(vectors) -> list[str]`` (``load_autoencoder()``, a ``SonarEncoder``) or ``None``."""

    def __init__(self, bank: str | Sequence[str] = "all", encoder: Any = "minilm", *, decoder: Any = None,
                 batch_size: int = 64, progress: bool = False) -> None:
        from .encoders import load_encoder

        self.encoder = load_encoder(encoder)
        self.bank_name = bank if isinstance(bank, str) else "custom"
        sentences = list(_bank(bank)) if isinstance(bank, str) else list(bank)
        self.sentences: list[str] = []
        self._vecs = np.zeros((0, self.encoder.dim), np.float32)
        self._unit = self._vecs
        self.decoder = decoder
        self.batch_size, self.progress = batch_size, progress
        if sentences:
            self.add(sentences)

    @property
    def name(self) -> str:
        return f"{self.encoder.name} · {self.bank_name} bank ({len(self.sentences)})"

    def __repr__(self) -> str:
        return f"ConceptSpace({self.name!r}, dim={self.dim})"

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def add(self, sentences: str | Iterable[str]) -> "ConceptSpace":
        """Add sentences to the bank (duplicates are kept once)."""
        new = [s for s in dict.fromkeys([sentences] if isinstance(sentences, str) else sentences)
               if s not in set(self.sentences)]
        if not new:
            return self
        v = self.encoder.encode(new, batch_size=self.batch_size, progress=self.progress)
        self.sentences += new
        self._vecs = np.concatenate([self._vecs, v]).astype(np.float32)
        self._unit = self._vecs / np.maximum(np.linalg.norm(self._vecs, axis=1, keepdims=True), 1e-12)
        return self

    def vectors(self) -> np.ndarray:
        """The bank's (n, d) vectors (a background set for maps)."""
        return self._vecs.copy()

    # -- the TokenSpace protocol ----------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        if not isinstance(text, str) or not text.strip():
            raise EmptyInputError("encode needs a non-empty sentence.")
        return self.encoder.encode([text])[0]

    def nearest(self, vec: Any, k: int = 10, exclude: Sequence[str] = ()) -> TokenTable:
        k = whole(k, "k", 1)
        if not self.sentences:
            raise InputError("the bank is empty; add sentences with space.add([...]).")
        v = np.asarray(vec, np.float32).reshape(-1)
        if v.shape[0] != self.dim or not np.isfinite(v).all():
            raise VectorError(f"nearest needs a finite {self.dim}-d vector from {self.encoder.name}, got shape {v.shape}.")
        n = float(np.linalg.norm(v))
        sims = self._unit @ (v / n) if n > 0 else np.zeros(len(self.sentences), np.float32)
        skip = {e.strip() for e in exclude}
        order = [int(i) for i in np.argsort(-sims, kind="stable") if self.sentences[i].strip() not in skip][:k]
        return TokenTable(tuple(self.sentences[i] for i in order), tuple(order), tuple(float(sims[i]) for i in order),
                          space="bank", score_name="cosine")

    # -- decoding -----------------------------------------------------------------------------
    def decode(self, vectors: Any) -> list[str]:
        """New text for vectors (needs a ``decoder``); the bank's nearest sentence is ``nearest``."""
        if self.decoder is None:
            raise InputError("this ConceptSpace has no decoder; pass decoder=load_autoencoder() "
                             "(the shipped MiniLM decoder) or a SonarEncoder.")
        return list(self.decoder.decode(np.atleast_2d(np.asarray(vectors, np.float32))))

    def _step(self, name: str, label: str, vec: np.ndarray, k: int, exclude: Sequence[str] = (),
              meta: dict[str, Any] | None = None) -> Step:
        table = self.nearest(vec, k, exclude)
        m = dict(meta or {})
        if self.decoder is not None:
            m["decoded"] = self.decode(vec)[0]
        return Step(name, label, {name: vec}, probes={"bank": table},
                    scalars={"norm": float(np.linalg.norm(vec)), "top_cosine": table.scores[0] if len(table) else 0.0},
                    meta=m)

    # -- arithmetic and paths -----------------------------------------------------------------
    def evaluate(self, expr: str, k: int = 10, exclude_operands: bool = True) -> ArithmeticResult:
        """:func:`explorer.arithmetic.evaluate` in this space."""
        return evaluate(self, expr, k, exclude_operands)

    def arithmetic(self, expr: str, k: int = 5) -> Trajectory:
        """``expr`` (e.g. ``'"The king sat." - king + queen'``) as a trajectory: one step per operand,
        then the result, named ``concept.{i}``; each step's ``probes["bank"]`` are its nearest
        sentences (operands left out of the result's)."""
        res = evaluate(self, expr, k)
        steps = [self._step(f"concept.{i}", f"{'−' if t.sign < 0 else '+'}{'' if t.weight == 1 else f'{t.weight:g}·'}{t.text}",
                            res.operands[t.text], k, meta={"coefficient": t.coefficient})
                 for i, t in enumerate(res.terms)]
        n = len(steps)
        steps.append(self._step(f"concept.{n}", expr, res.vector, k, [t.text for t in res.terms], {"result": True}))
        return Trajectory(steps, kind="concepts", space=self.encoder.name, title=expr, meta={"expression": expr})

    def analogy(self, a: str, b: str, c: str, k: int = 10) -> TokenTable:
        """Nearest bank sentences to ``a − b + c`` (operands excluded)."""
        return analogy(self, a, b, c, k)

    def interpolate(self, a: str | np.ndarray, b: str | np.ndarray, n: int = 11, method: str = "slerp",
                    k: int = 5) -> Trajectory:
        """``n`` points from ``a`` to ``b`` (texts or vectors), ``"slerp"`` or ``"lerp"``, as steps
        ``concept.{i}`` with their nearest bank sentences (and decoded text, given a decoder)."""
        va = self.encode(a) if isinstance(a, str) else np.asarray(a, np.float32)
        vb = self.encode(b) if isinstance(b, str) else np.asarray(b, np.float32)
        la = a if isinstance(a, str) else "a"
        lb = b if isinstance(b, str) else "b"
        path = _interpolate(va, vb, n, method, labels=(la, lb), space=self.encoder.name)
        steps = [self._step(f"concept.{i}", st.label, st.vector, k, meta=dict(st.meta)) for i, st in enumerate(path)]
        return Trajectory(steps, kind="concepts", space=self.encoder.name, title=path.title, meta=dict(path.meta))

    def trajectory(self, sentences: Sequence[str], k: int = 5) -> Trajectory:
        """A sequence of sentences (a story, a reasoning chain) as steps ``concept.{i}``."""
        if not sentences:
            raise EmptyInputError("trajectory needs at least one sentence.")
        vecs = self.encoder.encode(list(sentences))
        return Trajectory([self._step(f"concept.{i}", s, v, k, [s]) for i, (s, v) in enumerate(zip(sentences, vecs))],
                          kind="concepts", space=self.encoder.name)


# -- token analogies ----------------------------------------------------------------------------
def analogy_accuracy(space: Any, items: Sequence[tuple[str, str, str, str]] = ANALOGIES, *, k: int = 10,
                     leading_space: bool = True) -> dict[str, Any]:
    """Accuracy of ``a − b + c → d`` in a token space (``model.token_space``), via
    :func:`explorer.arithmetic.analogy`. Words get a leading space (``" king"``) as they appear
    mid-sentence. ``accuracy``: the first answer that is not an operand again (any case or
    spacing) is ``d``; ``strict``: the very first answer is ``d``; ``top5``: ``d`` among the first
    five non-operands. Items whose ``d`` is not one token in the model are counted in ``skipped``."""
    pre = " " if leading_space else ""
    rows, skipped = [], []
    model = getattr(space, "model", None)
    for a, b, c, d in items:
        if model is not None and len(model._ids(pre + d)) != 1:
            skipped.append((a, b, c, d))
            continue
        table = analogy(space, pre + a, pre + b, pre + c, k=k)
        ops = {a.lower(), b.lower(), c.lower()}
        clean = [t.strip() for t in table.tokens]
        rest = [t for t in clean if t.lower() not in ops]
        rows.append({"a": a, "b": b, "c": c, "d": d, "top": rest[0] if rest else "", "raw_top": clean[0] if clean else "",
                     "ok": bool(rest) and rest[0].lower() == d.lower(),
                     "strict": bool(clean) and clean[0].lower() == d.lower(),
                     "top5": d.lower() in [t.lower() for t in rest[:5]]})
    n = len(rows)
    return {"accuracy": sum(r["ok"] for r in rows) / max(1, n), "strict": sum(r["strict"] for r in rows) / max(1, n),
            "top5": sum(r["top5"] for r in rows) / max(1, n), "n": n, "skipped": skipped, "items": rows,
            "space": getattr(space, "name", "")}


__all__ = ["ConceptSpace", "analogy_accuracy"]
