"""The word-level ProsQA tokenizer, and reading ProsQA names as token ids.

:func:`build_tokenizer` is the vocabulary every ProsQA model trained here uses (Coconut, CoT and
no-CoT GPT-2s, the recurrent-depth models): its ids are fixed by the order of :data:`_WORDS`, the
names and :data:`_LATE_WORDS`, and shipped checkpoints depend on them
(``explorer/models/shipped/*/tokenizer.json``), so new words only ever go at the end.

:func:`node_token_ids` and :func:`name_token_ids` give the token a graph node's name starts with
mid-sentence (for any tokenizer: GPT-2's too); :func:`node_probabilities` reads a next-token
distribution as a probability per node.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import InputError

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
_WORDS = ("Every", "is", "a", "Is", "or", "###")
_LATE_WORDS = ("What", "every")  # lookup questions (prosqa.generate.lookup_queries); last, so older ids stay put
_SPLIT = r" ?[A-Za-z]+| ?#+| ?[^A-Za-z#\s]|\n| "


def build_tokenizer(names: Sequence[str] | None = None):
    """A word-level tokenizer over the ProsQA vocabulary, as a ``PreTrainedTokenizerFast``.

    Words carry their leading space (`` is``), punctuation and ``\\n`` are tokens of their own, and
    decoding concatenates, so ``decode(encode(text)) == text`` for ProsQA text. Unknown words
    become ``<unk>``. ``<bot>``/``<eot>``/``<latent>`` are *not* included:
    :func:`explorer.thoughts.train.add_thought_tokens` adds them (as Coconut does to GPT-2)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from .generate import CONCEPTS, PERSONS

    words = list(_WORDS) + list(names if names is not None else (*PERSONS, *CONCEPTS)) + list(_LATE_WORDS)
    pieces = [PAD, UNK, EOS, "\n", ".", "?", ",", " "]
    for w in words:
        pieces += [w, " " + w]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, eos_token=EOS,
                                   model_max_length=1024, clean_up_tokenization_spaces=False)


def node_token_ids(tokenizer: Any, names: Sequence[str]) -> list[int]:
    """The first token id of each name as it appears after a space."""
    out = []
    for name in names:
        ids = list(tokenizer(" " + name, add_special_tokens=False)["input_ids"])
        if not ids:
            raise InputError(f"the tokenizer gives no tokens for {name!r}; check the model's vocabulary.")
        out.append(int(ids[0]))
    return out


def name_token_ids(tokenizer: Any, names: Sequence[str]) -> list[int]:
    """The token of each name as it appears mid-text (``" wumpus"``); an error for a name the
    tokenizer does not know (it would read as ``<unk>``)."""
    ids = node_token_ids(tokenizer, names)
    unk = getattr(tokenizer, "unk_token_id", None)
    bad = [n for n, i in zip(names, ids) if unk is not None and i == unk]
    if bad:
        raise InputError(f"the tokenizer has no token for {', '.join(bad)}; build it with "
                         "explorer.tasks.prosqa.tokenizer.build_tokenizer(names) over the problems' names.")
    return ids


def node_probabilities(probs: np.ndarray, token_ids: Sequence[int]) -> np.ndarray:
    """Per-node probability from a next-token distribution; shared first tokens are split evenly."""
    probs = np.asarray(probs, dtype=np.float64)
    counts: dict[int, int] = {}
    for t in token_ids:
        counts[t] = counts.get(t, 0) + 1
    return np.array([probs[t] / counts[t] for t in token_ids])
