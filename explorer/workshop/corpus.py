"""Exercises of ``notebooks/07_corpus_map.ipynb``, checked against the capture the notebook made."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import Exercise, ExerciseSet, Feedback, feedback

NEW_SENTENCE = "The tired kitten slept by the fire."


def exercises(model: Any, capture: Any, sentences: Any, *, k: int = 10) -> ExerciseSet:
    """The three exercises on ``capture`` (a :class:`explorer.corpus.CorpusCapture` of ``sentences``,
    the DataFrame of :func:`explorer.corpus.sample.topic_sentences`)."""
    from ..corpus.sample import neighbour_agreement

    labels = sentences.reset_index(drop=True)
    cache: dict[str, Any] = {}

    def agreement() -> dict[str, dict[str, float]]:
        if "a" not in cache:
            out = {}
            for p in capture.points:
                rows = capture.frame(points=p, vectors=False).doc.to_numpy()
                v = capture.vectors(p)
                out[p] = {by: neighbour_agreement(v, labels[by].to_numpy()[rows], k) for by in ("topic", "template")}
            cache["a"] = out
        return cache["a"]

    def groups_by(answer: Any) -> Feedback:
        if answer not in ("topic", "template"):
            return Feedback("groups_by", False, "answer 'topic' or 'template'.")
        a = agreement()
        mid = capture.points[len(capture.points) // 2]
        want = "template" if a[mid]["template"] > a[mid]["topic"] else "topic"
        what = (f"at {mid}, {a[mid]['template']:.0%} of each sentence's {k} nearest neighbours share its template "
                f"and {a[mid]['topic']:.0%} its topic (chance: {1 / labels.template.nunique():.0%} and "
                f"{1 / labels.topic.nunique():.0%})")
        return feedback("groups_by", answer == want,
                        f"Yes: {what}. The mean over a sentence's tokens is mostly its template's tokens; the one "
                        "topic word is outvoted. Colour the map by template, then by topic, to see it.",
                        f"Not here: {what}. Colour the map by each column and compare.")

    def topic_layer(answer: Any) -> Feedback:
        a = agreement()
        if answer not in a:
            return Feedback("topic_layer", False, f"answer one of the captured points: {list(a)}.")
        best = max(a, key=lambda p: a[p]["topic"])
        table = ", ".join(f"{p} {a[p]['topic']:.0%}" for p in a)
        return feedback("topic_layer", a[answer]["topic"] >= a[best]["topic"] - 0.02,
                        f"Right: topic agreement per point is {table}.",
                        f"Compute neighbour_agreement(capture.vectors(p), topics, {k}) for each point p; you "
                        f"should find {table}.")

    def nearest_topic(answer: Any) -> Feedback:
        if not isinstance(answer, str) or answer not in set(labels.topic):
            return Feedback("nearest_topic", False, f"answer a topic: one of {sorted(set(labels.topic))}.")
        if "n" not in cache:
            last = capture.points[-1]
            tr = model.trace(NEW_SENTENCE, points=[last])
            near = capture.nearest(tr[last].float().mean(0).numpy(), point=last, k=k)
            topics = labels.topic.to_numpy()[near.doc.to_numpy()]
            values, counts = np.unique(topics, return_counts=True)
            cache["n"] = (values[np.argmax(counts)], dict(zip(values.tolist(), counts.tolist())))
        want, counts = cache["n"]
        return feedback("nearest_topic", answer == want,
                        f"Yes: of the {k} nearest captured sentences, {counts}. A new text is placed among the "
                        "corpus by the same vectors the map is drawn from.",
                        f"Count again: the {k} nearest are {counts}.")

    return ExerciseSet("07 · maps of whole corpora", [
        Exercise("groups_by", "With reduce='mean', do sentences' neighbourhoods at the middle captured point "
                              "follow their template or their topic?", groups_by),
        Exercise("topic_layer", "Which captured point groups sentences by topic best?", topic_layer),
        Exercise("nearest_topic", f"Which topic do most of the nearest captured sentences to {NEW_SENTENCE!r} "
                                  "(mean over its tokens, at the last captured point) have?", nearest_topic),
    ])
