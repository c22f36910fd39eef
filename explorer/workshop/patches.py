"""Exercises of ``notebooks/05_byte_patches.ipynb``, checked against the byte entropy model's own entropies."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import Exercise, ExerciseSet, Feedback, feedback

TEXT = ("Daenerys Targaryen is in Game of Thrones, a fantasy epic by George R.R. Martin. "
        "The quick brown fox jumps over the lazy dog.\n")
REPEATED = "The quick brown fox jumps over the lazy dog. " * 6
TARGET = 4.5


def word_starts(data: bytes) -> np.ndarray:
    """True at the first byte of every word (a non-space byte after a space or newline)."""
    return np.array([i > 0 and data[i - 1] in b" \n" and data[i] not in b" \n" for i in range(len(data))])


def exercises(model: Any, text: str = TEXT, tokenizer: Any = None) -> ExerciseSet:
    """The four exercises on ``text`` for a byte entropy model; ``tokenizer``: the subword tokenizer
    patches are compared with (default: SmolLM2's)."""
    from ..patches.entropy import byte_entropies
    from ..patches.patching import calibrate, starts
    from ..patches.tokens import default_tokenizer, token_spans

    cache: dict[str, Any] = {}

    def readings() -> Any:
        if "r" not in cache:
            cache["r"] = byte_entropies(model, text)
        return cache["r"]

    def threshold_for_target(answer: Any) -> Feedback:
        try:
            th = float(answer)
        except (TypeError, ValueError):
            return Feedback("threshold_for_target", False, "answer with a threshold in nats, e.g. 1.8.")
        r = readings()
        size = len(r.data) / int(starts(r.entropy, th, "global").sum())
        best = calibrate(r.entropy, TARGET, "global")
        return feedback("threshold_for_target", abs(size - TARGET) <= 0.6,
                        f"Yes: θ = {th:g} cuts this text into {size:.2f} bytes per patch (the paper's 4.5; "
                        f"calibrate() finds θ = {best:.3f}).",
                        f"θ = {th:g} gives {size:.2f} bytes per patch. "
                        + ("Raise θ: fewer bytes are surprising enough to open a patch." if size < TARGET else
                           "Lower θ: more bytes should open a patch.")
                        + " Drag the slider and read the statistics line.")

    def word_start_entropy(answer: Any) -> Feedback:
        if not isinstance(answer, bool):
            return Feedback("word_start_entropy", False, "answer True or False.")
        r = readings()
        ws = word_starts(r.data)
        inside = np.array([b not in b" \n" for b in r.data]) & ~ws
        hi, lo = float(r.entropy[ws].mean()), float(r.entropy[inside].mean())
        what = f"first bytes of words: {hi:.2f} nats on average; other bytes inside words: {lo:.2f}"
        return feedback("word_start_entropy", answer == (hi > lo),
                        f"Right ({what}). " + ("Once a word has begun, its next bytes are easy to guess; which "
                                               "word comes next is not. That is why patches tend to start words."
                                               if hi > lo else "This model finds word starts no harder."),
                        f"Look again: {what}.")

    def fewer_in_repeats(answer: Any) -> Feedback:
        if answer not in ("global", "monotonic"):
            return Feedback("fewer_in_repeats", False, "answer 'global' or 'monotonic'.")
        if "rep" not in cache:
            r, rep = readings(), byte_entropies(model, REPEATED)
            sent = len(REPEATED) // 6
            counts = {}
            for rule in ("global", "monotonic"):
                m = starts(rep.entropy, calibrate(r.entropy, TARGET, rule), rule)
                counts[rule] = int(m[5 * sent:].sum())
            cache["rep"] = counts
        c = cache["rep"]
        want = "global" if c["global"] < c["monotonic"] else "monotonic"
        what = f"in the last repetition: global {c['global']} patches, monotonic {c['monotonic']}"
        if c["global"] == c["monotonic"]:
            return Feedback("fewer_in_repeats", True, f"They tie ({what}); either answer is fair here.")
        return feedback("fewer_in_repeats", answer == want,
                        f"Yes: {what}. Each rule at its 4.5-byte threshold: the global rule asks 'is this byte "
                        "hard?', the monotonic one 'is it harder than the last?'; on text the model has just seen, "
                        "entropy is low and flat, and the two respond differently.",
                        f"Not quite: {what}. Use starts(entropy, threshold, rule) on byte_entropies(model, "
                        "REPEATED), each rule at calibrate(..., 4.5, rule) on the paragraph.")

    def patches_or_tokens(answer: Any) -> Feedback:
        if answer not in ("patches", "tokens"):
            return Feedback("patches_or_tokens", False, "answer 'patches' or 'tokens'.")
        r = readings()
        n_p = int(starts(r.entropy, calibrate(r.entropy, TARGET, "global"), "global").sum())
        n_t = len(token_spans(tokenizer or default_tokenizer(), text))
        want = "patches" if n_p > n_t else "tokens"
        what = f"{n_p} patches at 4.5 bytes each against {n_t} SmolLM2 tokens ({len(r.data) / n_t:.2f} bytes each)"
        return feedback("patches_or_tokens", answer == want,
                        f"Right: {what}. BLT spends its large model's steps on patches; where text is predictable "
                        "a patch can be longer than any token.",
                        f"Look again: {what}.")

    return ExerciseSet("05 · byte patches", [
        Exercise("threshold_for_target", f"which global threshold θ cuts the paragraph into about {TARGET} bytes per patch?",
                 threshold_for_target),
        Exercise("word_start_entropy", "is the entropy of a word's first byte higher, on average, than of the other "
                 "bytes inside words? (True or False)", word_start_entropy),
        Exercise("fewer_in_repeats", "on the last repetition of a repeated sentence, which rule ('global' or "
                 "'monotonic') starts fewer patches?", fewer_in_repeats),
        Exercise("patches_or_tokens", "at 4.5 bytes per patch, are there more 'patches' or more 'tokens' (SmolLM2) "
                 "in the paragraph?", patches_or_tokens),
    ])
