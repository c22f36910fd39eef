"""A generated corpus whose structure is known: topic words crossed with sentence templates.

Every sentence puts one word of a topic (animals, food, weather, …) into one of a set of templates
("I saw the {word} yesterday.") with an adjective; topic and template vary independently, so a map
can show which of the two a layer groups by. Generated here, so it ships with no licence question
and costs nothing to download.
"""
from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np

from ..errors import InputError
from ..validate import whole

TOPICS = {
    "animals": ["cat", "dog", "horse", "rabbit", "fox", "owl", "goat", "whale"],
    "food": ["bread", "soup", "apple", "cheese", "rice", "cake", "onion", "honey"],
    "weather": ["rain", "snow", "wind", "fog", "storm", "sunshine", "frost", "thunder"],
    "music": ["violin", "drum", "piano", "guitar", "flute", "song", "choir", "trumpet"],
    "travel": ["train", "ship", "airport", "map", "ticket", "road", "bridge", "suitcase"],
    "tools": ["hammer", "saw", "drill", "wrench", "ladder", "shovel", "chisel", "rope"],
}
TEMPLATES = [
    "I saw the {adj} {word} yesterday.",
    "Tell me something about the {adj} {word}.",
    "The {adj} {word} was there all morning.",
    "Nobody expected the {adj} {word} to matter.",
    "Why is the {adj} {word} so important?",
    "She wrote a long letter about the {adj} {word}.",
    "We talked about the {adj} {word} for hours.",
    "In the story, the {adj} {word} is a secret.",
]
ADJECTIVES = ["old", "small", "strange", "quiet", "bright", "heavy", "famous", "broken"]


def topic_sentences(n: int | None = None, seed: int = 0) -> Any:
    """A pandas DataFrame of sentences with ``text``, ``topic``, ``template`` (its number), ``word`` and
    ``adjective``: every combination (3,072) or a seeded sample of ``n`` of them, in random order."""
    import pandas as pd

    rows = [{"text": t.format(adj=a, word=w), "topic": topic, "template": i, "word": w, "adjective": a}
            for (topic, words), (i, t), a in itertools.product(TOPICS.items(), enumerate(TEMPLATES), ADJECTIVES)
            for w in words]
    random.Random(seed).shuffle(rows)
    if n is not None:
        n = whole(n, "n", lo=1, hi=len(rows))
        rows = rows[:n]
    return pd.DataFrame(rows)


def neighbour_agreement(vectors: Any, labels: Any, k: int = 10, *, metric: str = "cosine") -> float:
    """The share of each vector's ``k`` nearest others (exact search) that carry its label, averaged: 1.0
    when every neighbourhood is pure, about the label's frequency when the labels are unrelated to place."""
    from ..projection import as_matrix

    x = as_matrix(vectors)
    labels = np.asarray(labels)
    if len(labels) != len(x):
        raise InputError(f"{len(labels)} labels for {len(x)} vectors.")
    k = whole(k, "k", lo=1, hi=max(1, len(x) - 1))
    if metric not in ("cosine", "euclidean"):
        raise InputError(f"metric must be 'cosine' or 'euclidean', got {metric!r}.")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    hits = 0
    for start in range(0, len(x), 2048):
        q = x[start:start + 2048]
        d = -(q @ x.T) if metric == "cosine" else ((q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None])
        d[np.arange(len(q)), np.arange(start, start + len(q))] = np.inf  # not its own neighbour
        idx = np.argpartition(d, k - 1, axis=1)[:, :k]
        hits += int((labels[idx] == labels[start:start + len(q), None]).sum())
    return hits / (len(x) * k)


__all__ = ["topic_sentences", "neighbour_agreement", "TOPICS", "TEMPLATES"]
