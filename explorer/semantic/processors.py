"""The processors that ship: proposers (the Base-LCM, random, the default LM, a person), a tool (a
fact checker) and a judge (the default LM asked Yes or No). Each implements
:class:`~explorer.semantic.core.Processor`'s one method."""
from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError
from .core import Context, Thought


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(1e-9, np.linalg.norm(v, axis=-1, keepdims=True))


class FactPool:
    """The context's facts with their concept vectors (encoded once) — what the proposers that snap
    to a statement choose from."""

    def __init__(self, facts: Sequence[str], encoder: Any) -> None:
        if not facts:
            raise InputError("this proposer snaps to the given facts; the context has none.")
        self.facts = list(facts)
        self.vectors = np.asarray(encoder.encode(self.facts), np.float32)
        self.unit = _unit(self.vectors)
        self.index = {f: i for i, f in enumerate(self.facts)}


def _pool(context: Context, encoder: Any) -> FactPool:
    pool = context.extra.get("pool")
    if pool is None:
        pool = context.extra["pool"] = FactPool(context.facts, encoder)
    return pool


def _used(path: Sequence[Thought], pool: FactPool) -> set[int]:
    return {pool.index[t.text] for t in path[1:] if t.text in pool.index}


class LCMProposer:
    """The Base-LCM (:mod:`explorer.concepts.lcm`) predicts the next concept from the facts, the
    question and the chain so far; the proposals are the ``n`` facts nearest to it (not yet on the
    path), each with its cosine as ``meta["prior"]``. One call is one forward pass of the LCM."""

    name = "lcm"

    def __init__(self, lcm: Any = None) -> None:
        from ..concepts.lcm import load_lcm

        self.lcm = lcm if lcm is not None else load_lcm()

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        pool = _pool(context, self.lcm.encoder)
        q_v = context.extra.get("question_vector")
        if q_v is None:
            q_v = context.extra["question_vector"] = np.asarray(self.lcm.encoder.encode([context.question])[0], np.float32)
        steps = [pool.vectors[pool.index[t.text]] for t in path[1:] if t.text in pool.index]
        pred = self.lcm.next_concept(pool.vectors, q_v, steps)
        sims = pool.unit @ _unit(np.asarray(pred, np.float32))
        used = _used(path, pool)
        order = [int(i) for i in np.argsort(-sims, kind="stable") if int(i) not in used][:n]
        return [Thought(pool.facts[i], pool.vectors[i], self.name, cost=1.0,
                        meta={"prior": float(max(0.0, sims[i])), "fact": i, "predicted": pred}) for i in order]


class RandomProposer:
    """``n`` facts drawn at random (not yet on the path): the baseline that shows what guidance is worth."""

    name = "random"

    def __init__(self, encoder: Any = None, seed: int = 0) -> None:
        from ..concepts.encoders import load_encoder

        self.encoder = encoder if encoder is not None else load_encoder("minilm")
        self.rng = random.Random(seed)

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        pool = _pool(context, self.encoder)
        free = [i for i in range(len(pool.facts)) if i not in _used(path, pool)]
        pick = self.rng.sample(free, min(n, len(free)))
        return [Thought(pool.facts[i], pool.vectors[i], self.name, cost=1.0, meta={"prior": 1.0, "fact": i})
                for i in pick]


class FactChecker:
    """A tool: is the statement the path asserts at its last step among the context's facts? It reads
    the facts; it does not search them. ``claim(path, context)`` says which statement the last step
    asserts (default: its text). Returns one thought whose ``value`` is 1.0 (yes) or 0.0 (no)."""

    name = "fact-checker"

    def __init__(self, claim: Callable[[Sequence[Thought], Context], str] | None = None) -> None:
        self.claim = claim or (lambda path, context: path[-1].text)

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        if len(path) < 2:
            raise InputError("the fact checker judges the last thought of a path; pass a path with one.")
        claim = self.claim(path, context)
        ok = claim in set(context.facts)
        return [Thought("yes" if ok else "no", None, self.name, cost=1.0, value=1.0 if ok else 0.0,
                        meta={"claim": claim})]


def _sentences(path: Sequence[Thought]) -> str:
    return " ".join(t.text for t in path[1:])


class LMProposer:
    """The default language model proposes next thoughts: ``n`` sampled sentences continuing the
    question and the thoughts so far (one call: one batched generation), each with its MiniLM vector."""

    name = "lm"

    def __init__(self, model: Any = None, *, temperature: float = 0.8, max_new_tokens: int = 40, seed: int = 0,
                 encoder: Any = None) -> None:
        import explorer
        from ..concepts.encoders import load_encoder

        self.model = model if model is not None else explorer.load_model()
        self.encoder = encoder if encoder is not None else load_encoder("minilm")
        self.temperature, self.max_new_tokens, self.seed = temperature, max_new_tokens, seed

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        import torch

        tok = self.model.tokenizer
        so_far = _sentences(path)
        msgs = [{"role": "user", "content": f"{context.question}\nThink step by step. Write only the next step, "
                                            "in one sentence."}]
        if so_far:
            msgs.append({"role": "assistant", "content": so_far})
        ids = tok.apply_chat_template(msgs, add_generation_prompt=not so_far, continue_final_message=bool(so_far),
                                      return_tensors="pt", return_dict=True)["input_ids"]
        torch.manual_seed(self.seed + len(path) * 1000 + sum(map(ord, so_far)) % 997)
        out = self.model.hf.generate(ids.to(self.model.device), do_sample=True, temperature=self.temperature,
                                     max_new_tokens=self.max_new_tokens, num_return_sequences=n,
                                     pad_token_id=tok.eos_token_id)
        texts = []
        for seq in out[:, ids.shape[1]:]:
            s = tok.decode(seq, skip_special_tokens=True).strip()
            s = s.split("\n")[0].strip()
            cut = [i for i in (s.find(". "), s.find("? "), s.find("! ")) if i >= 0]
            s = s[: min(cut) + 1] if cut else s
            if s and s not in texts:
                texts.append(s)
        vecs = self.encoder.encode(texts) if texts else np.zeros((0, 384), np.float32)
        return [Thought(t, np.asarray(v, np.float32), self.name, cost=1.0, meta={"prior": 1.0}) for t, v in zip(texts, vecs)]


class LMJudge:
    """A judge: the default LM asked whether the last thought is a correct and useful next step;
    ``value`` = P(Yes) / (P(Yes) + P(No)) for its next token."""

    name = "lm-judge"

    def __init__(self, model: Any = None) -> None:
        import explorer

        self.model = model if model is not None else explorer.load_model()
        tok = self.model.tokenizer
        self.yes = [tok.encode(w, add_special_tokens=False)[0] for w in ("Yes", " Yes")]
        self.no = [tok.encode(w, add_special_tokens=False)[0] for w in ("No", " No")]

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        import torch

        if len(path) < 2:
            raise InputError("the judge scores the last thought of a path; pass a path with one.")
        tok = self.model.tokenizer
        facts = ("Facts: " + " ".join(context.facts) + "\n") if context.facts else ""
        earlier = _sentences(path[:-1])
        msg = (f"{facts}Question: {context.question}\n" + (f"Reasoning so far: {earlier}\n" if earlier else "")
               + f"Next step: {path[-1].text}\nIs this next step correct and useful? Answer Yes or No.")
        ids = tok.apply_chat_template([{"role": "user", "content": msg}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        with torch.inference_mode():
            p = self.model.hf(ids.to(self.model.device)).logits[0, -1].float().softmax(-1)
        y, no = float(p[self.yes].sum()), float(p[self.no].sum())
        v = y / (y + no) if y + no > 0 else 0.5
        return [Thought(f"P(Yes) = {v:.2f}", None, self.name, cost=1.0, value=v)]


class Person:
    """A person as a processor: what they wrote (:meth:`say`, e.g. from the ThoughtTree widget) is
    what they propose next; a verdict they gave (:meth:`judge`) is their value."""

    name = "person"

    def __init__(self, encoder: Any = None) -> None:
        self.encoder = encoder
        self.pending: list[str] = []
        self.verdict: float | None = None

    def say(self, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise InputError("write a thought: a non-empty sentence.")
        self.pending.append(text.strip())

    def judge(self, value: float) -> None:
        self.verdict = float(value)

    def process(self, path: Sequence[Thought], context: Context, n: int = 1) -> list[Thought]:
        if self.verdict is not None and len(path) >= 2 and not self.pending:
            v, self.verdict = self.verdict, None
            return [Thought("person: " + ("yes" if v >= 0.5 else "no"), None, self.name, cost=1.0, value=v)]
        texts, self.pending = self.pending[:n], self.pending[n:]
        if self.encoder is None:
            from ..concepts.encoders import load_encoder

            self.encoder = load_encoder("minilm")
        vecs = self.encoder.encode(texts) if texts else []
        return [Thought(t, np.asarray(v, np.float32), self.name, cost=1.0, meta={"prior": 1.0}) for t, v in zip(texts, vecs)]
