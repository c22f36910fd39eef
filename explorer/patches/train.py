"""The byte-level entropy model, trained on the one trainer (:mod:`explorer.training`).

A small Llama-style causal LM over bytes (:mod:`.tokenizer`), trained on the corpus's training
documents (:mod:`.corpus`): each example is ``<bos>`` followed by ``window − 1`` bytes of the
concatenated documents, starting at a line start (the context the entropy model sees when it is
reset at newlines). After every epoch: bits per byte on held-out documents, read the way
:func:`~explorer.patches.entropy.byte_entropies` reads text. ``latent-explorer train bytes RUN_DIR
[--n-embd 256 ...]`` trains or resumes; ``recipes/byte-entropy.sh`` is the one command behind the
shipped ``byte-entropy`` model.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import training
from ..errors import InputError
from ..models.build import build_base_model
from ..training import LoopConfig, config_from_dict, load_pretrained
from .corpus import SOURCES, documents
from .tokenizer import BOS_ID, build_byte_tokenizer

STATE_FORMAT = "latent-explorer.byte-trainer/1"


@dataclass
class ByteTrainConfig:
    """Model size, data and optimisation (defaults: the shipped CPU model)."""

    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 4
    window: int = 512                 # bytes of context, <bos> included
    sources: str = "kjv,fortunes"
    num_epochs: int = 2
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    schedule: str = "cosine"
    grad_clip: float | None = 1.0
    seed: int = 0
    save_every: int = 1_000_000
    save_minutes: float | None = 5.0
    max_minutes: float | None = None
    max_steps: int | None = None
    eval_bytes: int = 100_000         # held-out bytes measured after each epoch (0: none)
    device: str = "auto"
    threads: int | None = None
    precision: str = "fp32"

    def check(self) -> None:
        if self.window < 8 or self.n_layer < 1 or self.n_head < 1 or self.n_embd % self.n_head:
            raise InputError(f"window must be >= 8, n_layer and n_head >= 1, n_embd ({self.n_embd}) a multiple of "
                             f"n_head ({self.n_head}).")
        bad = [s for s in self.source_list() if s not in SOURCES]
        if bad:
            raise InputError(f"sources must be a comma-separated subset of {','.join(SOURCES)}, got {self.sources!r}.")
        self.loop().check()

    def source_list(self) -> list[str]:
        return [s.strip() for s in self.sources.split(",") if s.strip()]

    def loop(self) -> LoopConfig:
        return LoopConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, max_steps=self.max_steps, lr=self.lr,
                          weight_decay=self.weight_decay, warmup_steps=self.warmup_steps, schedule=self.schedule,
                          grad_clip=self.grad_clip, save_every=self.save_every, save_minutes=self.save_minutes,
                          max_minutes=self.max_minutes, seed=self.seed, device=self.device, threads=self.threads,
                          precision=self.precision)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ByteTrainConfig":
        return config_from_dict(cls, d)


def window_starts(stream: bytes, window: int) -> list[int]:
    """Line starts of ``stream`` at least ``window − 1`` bytes apart, each with a full window after it."""
    out, nxt = [], 0
    starts = [0] + [i + 1 for i, b in enumerate(stream) if b == 10]
    for s in starts:
        if s >= nxt and s + window - 1 <= len(stream):
            out.append(s)
            nxt = s + window - 1
    return out


class ByteRecipe(training.RecipeDefaults):
    """Next-byte cross-entropy over windows of the training documents."""

    name = "bytes"
    format = STATE_FORMAT
    resume_keys = ("n_embd", "n_layer", "n_head", "window", "sources")

    def __init__(self, cfg: ByteTrainConfig, *, docs: Sequence[tuple[str, str]] | None = None,
                 eval_docs: Sequence[tuple[str, str]] | None = None) -> None:
        cfg.check()
        self.cfg = cfg
        docs = list(docs) if docs is not None else documents("train", cfg.source_list())
        self.stream = np.frombuffer("".join(t for _, t in docs).encode("utf-8"), dtype=np.uint8)
        self.starts = window_starts(self.stream.tobytes(), cfg.window)
        if not self.starts:
            raise InputError(f"the training text ({len(self.stream)} bytes) holds no window of {cfg.window} bytes; "
                             "pass more text or a smaller window.")
        self.eval_docs = list(eval_docs) if eval_docs is not None else None

    def settings(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def n_examples(self) -> int:
        return len(self.starts)

    def build(self, resume: Path | None) -> torch.nn.Module:
        if resume is not None:
            self.hf, self.tokenizer = load_pretrained(resume)
            return self.hf
        c = self.cfg
        self.tokenizer = build_byte_tokenizer()
        self.hf = build_base_model(self.tokenizer, n_layer=c.n_layer, n_embd=c.n_embd, n_head=c.n_head,
                                   n_positions=c.window, seed=c.seed, arch="llama")
        self.hf.config.bos_token_id = self.hf.generation_config.bos_token_id = BOS_ID
        return self.hf

    def save_model(self, model: torch.nn.Module, folder: Path) -> None:
        model.config.byte_entropy = {"window": self.cfg.window, "sources": self.cfg.source_list(),
                                     "reset_at_newline": True}
        model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.starts))
        W, out = self.cfg.window, []
        for i in range(0, len(order), self.cfg.batch_size):
            rows = [np.concatenate([[BOS_ID], self.stream[self.starts[j]:self.starts[j] + W - 1]]) for j in
                    order[i:i + self.cfg.batch_size]]
            out.append(torch.from_numpy(np.stack(rows).astype(np.int64)))
        return out

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return model(input_ids=batch, labels=batch).loss, {}

    def evaluate(self, model: torch.nn.Module, epoch: int) -> dict[str, Any] | None:
        if not self.eval_docs or not self.cfg.eval_bytes:
            return None
        return held_out_bits(model, self.tokenizer, self.eval_docs, self.cfg.eval_bytes)


def held_out_bits(hf: torch.nn.Module, tokenizer: Any, docs: Sequence[tuple[str, str]], max_bytes: int) -> dict[str, Any]:
    """Bits per byte of ``hf`` on the first ``max_bytes`` bytes of ``docs`` (whole documents)."""
    from ..model import Model
    from .entropy import byte_entropies

    text, n = [], 0
    for _, t in docs:
        if n >= max_bytes:
            break
        text.append(t)
        n += len(t.encode("utf-8"))
    was = hf.training
    res = byte_entropies(Model(hf, tokenizer, name="training"), "".join(text))
    hf.train(was)
    return {"bits_per_byte": round(res.bits_per_byte, 4), "bytes": len(res.data)}


def train(run_dir: str | Path, cfg: ByteTrainConfig | None = None, *, progress: bool = True,
          docs: Sequence[tuple[str, str]] | None = None,
          eval_docs: Sequence[tuple[str, str]] | None = None) -> training.TrainState:
    """Train (or resume) the entropy model in ``run_dir`` (checkpoints in ``run_dir/latest``)."""
    cfg = cfg or ByteTrainConfig()
    if eval_docs is None and cfg.eval_bytes:
        eval_docs = documents("held_out", cfg.source_list())
    recipe = ByteRecipe(cfg, docs=docs, eval_docs=eval_docs)
    return training.Trainer(recipe, run_dir, cfg.loop(), progress=progress).train()


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer train bytes RUN_DIR [--<field> ...]``: train or resume the entropy model."""
    import argparse
    from dataclasses import fields

    from ..training.cli import add_config_flags, run_training

    ap = argparse.ArgumentParser(prog="latent-explorer train bytes", description=main.__doc__)
    ap.add_argument("run_dir")
    add_config_flags(ap, ByteTrainConfig)
    args = ap.parse_args(argv)
    return run_training("latent-explorer train bytes", args.run_dir,
                        lambda: train(args.run_dir, ByteTrainConfig(**{f.name: getattr(args, f.name)
                                                                        for f in fields(ByteTrainConfig)})),
                        lambda st: f"done: {st.global_step} steps, epoch {st.epoch}; {st.evals[-1] if st.evals else ''}")


if __name__ == "__main__":
    sys.exit(main())


def measure(model: Any, *, max_bytes: int | None = None, ngram_orders: Sequence[int] = (3, 5)) -> dict[str, Any]:
    """The shipped numbers of an entropy model: bits per byte on the held-out documents (all, or the
    first ``max_bytes``), and the byte n-gram baselines trained on the same training documents."""
    from .corpus import ByteNgram

    sources = (getattr(model.hf.config, "byte_entropy", None) or {}).get("sources", list(SOURCES))
    held = documents("held_out", sources)
    res = held_out_bits(model.hf, model.tokenizer, held, max_bytes or 1 << 40)
    texts, n = [], 0
    for _, t in held:
        if n >= res["bytes"]:
            break
        texts.append(t)
        n += len(t.encode("utf-8"))
    train_texts = [t for _, t in documents("train", sources)]
    res["ngram_bits_per_byte"] = {str(k): round(ByteNgram(k).fit(train_texts).bits_per_byte(texts), 4)
                                  for k in ngram_orders}
    res["sources"] = sources
    return res


def eval_main(argv: list[str] | None = None) -> int:
    """``latent-explorer bytes eval [--model NAME_OR_FOLDER] [--max-bytes N] [--out FILE]``: bits per
    byte on the held-out text, beside byte n-gram baselines (one JSON line)."""
    import argparse

    from ..commands import report
    from ..loading import load_model

    ap = argparse.ArgumentParser(prog="latent-explorer bytes eval", description=eval_main.__doc__)
    ap.add_argument("--model", default="byte-entropy")
    ap.add_argument("--max-bytes", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    def run() -> tuple[dict[str, Any], dict[str, Any]]:
        res = {"model": args.model, **measure(load_model(args.model, device="cpu"), max_bytes=args.max_bytes)}
        return res, res

    return report(run, prog="latent-explorer bytes eval", out=args.out)
