"""A small sentence autoencoder: a frozen MiniLM encoder and a word-level GRU decoder trained to
turn a MiniLM vector back into its sentence.

The decoder is conditioned on the vector twice — it sets the GRU's initial state and is added to
every input embedding — and decodes greedily. It is trained (on CPU, a few minutes) on every
ProsQA statement the generator's vocabulary can make ("Tom is a wumpus.", "Every wumpus is a
yumpus."), minus a seeded held-out tenth, plus the workshop banks; its exact-match rate on the
held-out statements is what ``eval`` prints. Its vocabulary is only the words of those sentences:
it is a decoder for the workshop's small world, not a general one (use SONAR for that).

Here: the vocabulary and the decoder (:class:`Vocab`, :class:`SentenceDecoder`), the autoencoder
and its files (:class:`SentenceAutoencoder`, :func:`load_autoencoder`), the data
(:func:`split_sentences`), the training recipe (:class:`DecoderRecipe`) run by the one trainer
(:mod:`explorer.training`) in :func:`train`, and the command line (:func:`main`). Training runs on
the CPU and checkpoints into ``run_dir/latest`` every ``save_every`` epochs (the float32 decoder
as ``model.safetensors`` + ``model.json``; optimizer, schedule and RNG states in ``optimizer.pt``,
read with ``weights_only=True``), on Ctrl-C and when one call's ``max_minutes`` budget is spent;
it resumes exactly, and refuses other settings or other data
(vocabulary) with an :class:`~explorer.errors.InputError`. The old ``run_dir/checkpoint.pt`` of
earlier versions is not read at all.

Reproduce the shipped weights with one command::

    python -m explorer.concepts.autoencoder train        # writes explorer/concepts/weights/autoencoder.*
    python -m explorer.concepts.autoencoder eval         # held-out exact match
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ExplorerError, InputError, SaveFileError
from ..io import atomic_write_safetensors, atomic_write_text, read_safetensors
from ..training import LoopConfig, RecipeDefaults, Trainer, shuffled_batches

FORMAT = "latent-explorer.sentence-autoencoder/1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_PATH = WEIGHTS_DIR / "autoencoder.safetensors"
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
_SPLIT = re.compile(r" ?[A-Za-z']+| ?[0-9]+| ?[^A-Za-z0-9\s]| ")


def tokenize(text: str) -> list[str]:
    """Words with their leading space, digits, punctuation; ``"".join(tokenize(s)) == s`` for
    single-spaced text."""
    return _SPLIT.findall(text)


class Vocab:
    def __init__(self, tokens: Sequence[str]) -> None:
        self.itos = [PAD, BOS, EOS, UNK] + [t for t in dict.fromkeys(tokens) if t not in (PAD, BOS, EOS, UNK)]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Sequence[str]) -> "Vocab":
        return cls(sorted({t for s in texts for t in tokenize(s)}))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(t, 3) for t in tokenize(text)]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            if i == 2:
                break
            if i > 3:
                out.append(self.itos[i])
        return "".join(out).strip()


@dataclass
class AEConfig:
    dim_in: int = 384
    emb: int = 128
    hidden: int = 384
    layers: int = 1
    max_len: int = 32
    encoder: str = "all-MiniLM-L6-v2"


class SentenceDecoder(nn.Module):
    """GRU decoder: vector → tokens. ``forward(vec, inp)`` gives logits for teacher forcing."""

    def __init__(self, vocab_size: int, cfg: AEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cond = nn.Linear(cfg.dim_in, cfg.hidden * cfg.layers)
        self.cin = nn.Linear(cfg.dim_in, cfg.emb)
        self.emb = nn.Embedding(vocab_size, cfg.emb)
        self.gru = nn.GRU(cfg.emb, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, vocab_size)

    def _h0(self, vec: torch.Tensor) -> torch.Tensor:
        B = vec.shape[0]
        return torch.tanh(self.cond(vec)).view(B, self.cfg.layers, self.cfg.hidden).transpose(0, 1).contiguous()

    def forward(self, vec: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        x = self.emb(inp) + self.cin(vec)[:, None]
        y, _ = self.gru(x, self._h0(vec))
        return self.out(y)

    @torch.inference_mode()
    def greedy(self, vec: torch.Tensor, max_len: int | None = None) -> list[list[int]]:
        B = vec.shape[0]
        h = self._h0(vec)
        c = self.cin(vec)[:, None]
        tok = torch.full((B, 1), 1, dtype=torch.long, device=vec.device)
        out = torch.zeros((B, 0), dtype=torch.long, device=vec.device)
        done = torch.zeros(B, dtype=torch.bool, device=vec.device)
        for _ in range(max_len or self.cfg.max_len):
            y, h = self.gru(self.emb(tok) + c, h)
            tok = self.out(y[:, -1]).argmax(-1, keepdim=True)
            out = torch.cat([out, tok], 1)
            done |= tok[:, 0] == 2
            if bool(done.all()):
                break
        return out.tolist()


class SentenceAutoencoder:
    """``encode(texts)`` (MiniLM) and ``decode(vectors) -> list[str]`` (the trained decoder)."""

    def __init__(self, decoder: SentenceDecoder, vocab: Vocab, encoder: Any = None) -> None:
        self.decoder = decoder.eval()
        self.vocab = vocab
        self._encoder = encoder

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from .encoders import load_encoder

            self._encoder = load_encoder("minilm")
        return self._encoder

    def encode(self, texts: Any, **kw: Any) -> np.ndarray:
        return self.encoder.encode(texts, **kw)

    def decode(self, vectors: Any, batch_size: int = 256) -> list[str]:
        x = np.atleast_2d(np.asarray(vectors, np.float32))
        if x.shape[1] != self.decoder.cfg.dim_in:
            raise InputError(f"the decoder reads {self.decoder.cfg.dim_in}-d {self.decoder.cfg.encoder} vectors, "
                             f"got {x.shape[1]}-d; encode with the same encoder.")
        out: list[str] = []
        for s in range(0, len(x), batch_size):
            ids = self.decoder.greedy(torch.from_numpy(x[s:s + batch_size]))
            out += [self.vocab.decode(r) for r in ids]
        return out

    def round_trip(self, texts: Sequence[str]) -> list[str]:
        return self.decode(self.encode(list(texts)))

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path = DEFAULT_PATH, *, dtype: str = "float16", extra: dict[str, Any] | None = None) -> Path:
        """Weights as ``path`` (safetensors, float16 by default) and the config + vocabulary as
        ``path.with_suffix('.json')``."""
        return save_decoder(self.decoder, self.vocab, path, dtype=dtype, extra=extra)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH, encoder: Any = None) -> "SentenceAutoencoder":
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not meta_path.is_file():
            raise SaveFileError(f"{meta_path} is missing; train the decoder with "
                                "`python -m explorer.concepts.autoencoder train`.")
        info = json.loads(meta_path.read_text(encoding="utf-8"))
        if info.get("format") != FORMAT:
            raise SaveFileError(f"{meta_path} is not a latent-explorer sentence autoencoder.")
        tensors, _ = read_safetensors(path)
        vocab = Vocab(info["vocab"][4:])
        dec = SentenceDecoder(len(vocab), AEConfig(**info["config"]))
        dec.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in tensors.items()})
        ae = cls(dec, vocab, encoder)
        ae.info = info  # type: ignore[attr-defined]
        return ae


def save_decoder(decoder: SentenceDecoder, vocab: Vocab, path: str | Path, *, dtype: str = "float16",
                 extra: dict[str, Any] | None = None) -> Path:
    """The files of :meth:`SentenceAutoencoder.save` (the decoder's train/eval mode left as it is)."""
    path = Path(path)
    tensors = {k: v.detach().to(getattr(torch, dtype)).numpy() if dtype != "float32" else v.detach().numpy()
               for k, v in decoder.state_dict().items()}
    atomic_write_safetensors(path, tensors, {"format": FORMAT})
    info = {"format": FORMAT, "config": asdict(decoder.cfg), "vocab": vocab.itos, **(extra or {})}
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=1) + "\n")
    return path


def load_autoencoder(path: str | Path | None = None, encoder: Any = None) -> SentenceAutoencoder:
    """The shipped decoder (or one at ``path``)."""
    return SentenceAutoencoder.load(path or DEFAULT_PATH, encoder)


# -- data ---------------------------------------------------------------------------------------
def split_sentences(seed: int = 0, held_out: float = 0.1) -> tuple[list[str], list[str]]:
    """(train, held-out): every ProsQA statement (a seeded ``held_out`` share kept out) plus every
    workshop-bank sentence (all in train)."""
    from .bank import BANKS, prosqa_statements

    st = prosqa_statements()
    rng = random.Random(seed)
    rng.shuffle(st)
    k = int(round(len(st) * held_out))
    train = st[k:] + [s for b in BANKS.values() for s in b]
    return train, sorted(st[:k])


@dataclass
class AETrainConfig:
    """The decoder's training settings (``max_minutes`` may change between resumed runs)."""

    seed: int = 0
    epochs: int = 120
    batch_size: int = 64
    lr: float = 2e-3
    noise: float = 0.004          # Gaussian noise per dimension added to the vectors while training
    held_out: float = 0.1
    max_minutes: float = 20.0     # training-time budget of one call (running it again goes on)
    save_every: int = 5           # epochs between checkpoints


def exact_match(ae: SentenceAutoencoder, texts: Sequence[str]) -> float:
    got = ae.round_trip(texts)
    return sum(g == t for g, t in zip(got, texts)) / max(1, len(texts))


class DecoderRecipe(RecipeDefaults):
    """Teacher-forced cross-entropy of the decoder on noisy MiniLM vectors of ``sentences``, as a
    recipe of the one trainer (:mod:`explorer.training`). The vectors are encoded once when
    constructed; a batch is a list of sentence indices (its tensors are built in :meth:`loss`, the
    noise drawn from the global torch RNG, which the loop checkpoints)."""

    name = "autoencoder"
    format = "latent-explorer.autoencoder-trainer/1"
    resume_keys = ("seed", "epochs", "batch_size", "lr", "noise", "held_out", "vocab_size", "vocab_sha", "data_sha")

    def __init__(self, cfg: AETrainConfig, sentences: Sequence[str], encoder: Any, *, progress: bool = True) -> None:
        self.cfg, self.sentences = cfg, list(sentences)
        self.vecs = np.asarray(encoder.encode(self.sentences, batch_size=64, progress=progress), np.float32)
        self.vocab = Vocab.build(self.sentences)
        self.ids = [self.vocab.encode(t) for t in self.sentences]
        self.acfg = AEConfig(dim_in=encoder.dim, max_len=max((len(i) for i in self.ids), default=0) + 4)
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=0)

    def settings(self) -> dict[str, Any]:
        return {**asdict(self.cfg), "vocab_size": len(self.vocab), "vocab_sha": _sha(self.vocab.itos),
                "data_sha": _sha(self.sentences)}

    def n_examples(self) -> int:
        return len(self.sentences)

    def build(self, resume: Path | None) -> nn.Module:
        dec = SentenceDecoder(len(self.vocab), self.acfg)
        if resume is not None:
            tensors, _ = read_safetensors(resume / "model.safetensors")
            dec.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in tensors.items()})
        return dec

    def save_model(self, model: nn.Module, folder: Path) -> None:
        save_decoder(model, self.vocab, folder / "model.safetensors", dtype="float32",  # type: ignore[arg-type]
                     extra={"train": asdict(self.cfg)})

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        return shuffled_batches(len(self.ids), self.cfg.batch_size, self.cfg.seed * 1000 + epoch)

    def loss(self, model: nn.Module, batch: list[int], step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        T = max(len(self.ids[i]) for i in batch) + 1
        inp = torch.zeros((len(batch), T), dtype=torch.long)
        tgt = torch.zeros((len(batch), T), dtype=torch.long)
        for r, i in enumerate(batch):
            seq = self.ids[i]
            inp[r, 0] = 1
            inp[r, 1:len(seq) + 1] = torch.tensor(seq)
            tgt[r, :len(seq)] = torch.tensor(seq)
            tgt[r, len(seq)] = 2
        v = torch.from_numpy(self.vecs[batch])
        v = v + self.cfg.noise * torch.randn_like(v)          # the global (CPU) torch RNG
        dev = next(model.parameters()).device
        logits = model(v.to(dev), inp.to(dev))
        return self.loss_fn(logits.reshape(-1, logits.shape[-1]), tgt.to(dev).reshape(-1)), {}



def _sha(items: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(items)).encode()).hexdigest()[:16]


def loop_config(cfg: AETrainConfig, n_examples: int) -> LoopConfig:
    """The loop's settings for ``cfg``: AdamW (weight decay 0.01), clip 1.0, one-cycle (10 % warm-up),
    on the CPU; ``save_every`` epochs as optimizer steps."""
    return LoopConfig.one_cycle(cfg, n_examples, pct=0.1)


def train(out: str | Path = DEFAULT_PATH, run_dir: str | Path = "runs/autoencoder", cfg: AETrainConfig | None = None,
          *, progress: bool = True) -> dict[str, Any]:
    """Train the decoder (resuming from ``run_dir/latest``) and save it to ``out`` (float16), then
    measure the file as saved: held-out and workshop-bank exact match, ``train_minutes`` (training
    time, over every resumed run), ``path`` and ``bytes``."""
    from .bank import BANKS
    from .encoders import load_encoder

    cfg = cfg or AETrainConfig()
    run_dir = Path(run_dir)
    if (run_dir / "checkpoint.pt").is_file() and not (run_dir / "latest").exists():
        print(f"note: {run_dir / 'checkpoint.pt'} is an old-format checkpoint and is not read; starting afresh "
              f"in {run_dir / 'latest'}", file=sys.stderr)
    train_s, held = split_sentences(cfg.seed, cfg.held_out)
    enc = load_encoder("minilm")
    recipe = DecoderRecipe(cfg, train_s, enc, progress=progress)
    trainer = Trainer(recipe, run_dir, loop_config(cfg, recipe.n_examples()), progress=progress)
    st = trainer.train()
    ae = SentenceAutoencoder(trainer.model.eval(), recipe.vocab, enc)  # type: ignore[arg-type]
    path = ae.save(out, extra={"train": asdict(cfg), "epochs_done": st.epoch})
    ae = SentenceAutoencoder.load(path, enc)  # measure the float16 file as shipped
    res = {"held_out_exact_match": exact_match(ae, held), "n_held_out": len(held),
           "train_exact_match_banks": exact_match(ae, [s for b in BANKS.values() for s in b]),
           "train_minutes": round(st.elapsed_s / 60, 2), "path": str(path),
           "bytes": path.stat().st_size + path.with_suffix(".json").stat().st_size}
    info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    info["results"] = res
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=1) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m explorer.concepts.autoencoder",
                                 description="Train or evaluate the MiniLM → text sentence decoder.")
    ap.add_argument("action", choices=["train", "eval"])
    ap.add_argument("--out", default=str(DEFAULT_PATH), help="weights path (.safetensors; config beside it as .json)")
    ap.add_argument("--run-dir", default="runs/autoencoder", help="checkpoints for resuming")
    ap.add_argument("--epochs", type=int, default=AETrainConfig.epochs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=AETrainConfig.max_minutes)
    args = ap.parse_args(argv)
    try:
        if args.action == "train":
            res = train(args.out, args.run_dir, AETrainConfig(seed=args.seed, epochs=args.epochs,
                                                              max_minutes=args.max_minutes))
        else:
            ae = load_autoencoder(args.out)
            held = split_sentences(ae.info.get("train", {}).get("seed", 0), ae.info.get("train", {}).get("held_out", 0.1))[1]  # type: ignore[attr-defined]
            res = {"held_out_exact_match": exact_match(ae, held), "n_held_out": len(held)}
    except ExplorerError as e:
        print(f"autoencoder: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
