"""The Base-LCM network and what it needs to reason: the robust normaliser, reading a ProsQA
problem as concepts, :class:`BaseLCM` (training forward, :meth:`~BaseLCM.reason`,
:meth:`~BaseLCM.step_predictions`, saving) and :func:`load_lcm` (see the package docs,
:mod:`explorer.concepts.lcm`)."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import InputError, SaveFileError
from ...io import atomic_write_safetensors, atomic_write_text, read_safetensors
from ...tasks.prosqa.prompts import statement_tail
from ...trajectory import Step, TokenTable, Trajectory

FORMAT = "latent-explorer.base-lcm/2"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "weights" / "prosqa-lcm.safetensors"
_QUESTION = re.compile(r"Is (\S+) a (\S+) or (\S+)\?\s*$")


# -- normalisation -------------------------------------------------------------------------------
class RobustNormalizer:
    """``(x − median) / (IQR / 1.349)`` per dimension (the LCM paper's robust scaling; 1.349 makes
    the IQR an estimate of a normal distribution's standard deviation)."""

    def __init__(self, median: np.ndarray, scale: np.ndarray) -> None:
        self.median = np.asarray(median, np.float32)
        self.scale = np.maximum(np.asarray(scale, np.float32), 1e-6)

    @classmethod
    def fit(cls, x: np.ndarray) -> "RobustNormalizer":
        x = np.asarray(x, np.float64)
        q1, med, q3 = np.percentile(x, [25, 50, 75], axis=0)
        return cls(med, (q3 - q1) / 1.349)

    def normalize(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return (x - torch.from_numpy(self.median)) / torch.from_numpy(self.scale)
        return (np.asarray(x, np.float32) - self.median) / self.scale

    def denormalize(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x * torch.from_numpy(self.scale) + torch.from_numpy(self.median)
        return np.asarray(x, np.float32) * self.scale + self.median


# -- problems as concepts --------------------------------------------------------------------------
def parse_problem(problem: dict[str, Any]) -> dict[str, Any]:
    """Statements, question sentence, root/options and gold steps of a Coconut-format problem."""
    q = problem["question"]
    m = _QUESTION.search(q)
    if not m:
        raise InputError("the question does not end with 'Is X a A or B?'; pass a ProsQA problem.")
    body = q[: m.start()].strip()
    statements = [s.strip() + "." for s in body.split(".") if s.strip()]
    return {"statements": statements, "question": m.group(0).strip(), "root": m.group(1),
            "options": (m.group(2), m.group(3)), "steps": list(problem.get("steps", [])),
            "answer": problem.get("answer", "")}


@dataclass
class LCMConfig:
    dim: int = 384
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ff: int = 384
    max_steps: int = 8
    dropout: float = 0.0
    encoder: str = "all-MiniLM-L6-v2"


class BaseLCM(nn.Module):
    """The network, decoder-only as in the paper: concepts in, the next normalised concept out at
    every position that has a next step (MSE). The problem's statements and question are a
    prefix that sees itself fully; each step sees the prefix and the steps up to itself. The
    question's position predicts step 1, step k's position predicts step k+1."""

    def __init__(self, cfg: LCMConfig, normalizer: RobustNormalizer | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalizer = normalizer
        self.inp = nn.Linear(cfg.dim, cfg.d_model)
        self.type_emb = nn.Embedding(3, cfg.d_model)           # statement, question, step
        self.step_emb = nn.Embedding(cfg.max_steps + 1, cfg.d_model)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff, cfg.dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.body = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.dim)
        self._encoder: Any = None

    def forward(self, x: torch.Tensor, types: torch.Tensor, step_idx: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, dim) normalised concepts; ``types`` (B, L): 0 statement, 1 question, 2 step
        (statements first, then the question, then steps); ``step_idx`` (B, L); ``pad`` (B, L)
        True where padding. Returns (B, L, dim): at each position, the predicted next concept."""
        B, L = types.shape
        h = self.inp(x) + self.type_emb(types) + self.step_emb(step_idx.clamp(max=self.cfg.max_steps))
        pos = torch.arange(L, device=x.device)
        is_step = (types == 2) & ~pad                                   # (B, L)
        blocked = pad[:, None, :].expand(B, L, L).clone()               # keys that are padding
        ctx_row = ~is_step                                              # prefix (and padding) rows
        blocked |= ctx_row[:, :, None] & is_step[:, None, :]            # the prefix does not see steps
        blocked |= is_step[:, :, None] & (pos[None, None, :] > pos[None, :, None])  # causal among steps
        mask = blocked.repeat_interleave(self.cfg.heads, 0)
        return self.head(self.norm(self.body(h, mask=mask)))

    # -- inference ------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from ..encoders import load_encoder

            self._encoder = load_encoder("minilm")
        return self._encoder

    @torch.inference_mode()
    def reason(self, problem: dict[str, Any], *, max_steps: int | None = None, k: int = 5,
               no_repeat: bool = True) -> Trajectory:
        """Reason through one problem: a trajectory of predicted concepts ``concept.{k}``, each step
        labelled with its nearest statement (``probes["bank"]``: the ``k`` nearest statements),
        ``meta`` holding the chain and the answer.

        Each predicted concept is decoded to the nearest statement of the problem (``no_repeat``:
        one not said already). The chain stops at a statement that reaches one of the question's
        options; if none does within ``max_steps``, the answer is the option sentence ("X is a
        A." / "X is a B.") nearest to the last predicted concept (``meta["answer_from"]``)."""
        assert self.normalizer is not None, "load a trained model (load_lcm) first"
        p = parse_problem(problem)
        cands = p["statements"]
        opts = [f"{p['root']} is a {o}." for o in p["options"]]
        vecs = self.encoder.encode(cands + [p["question"]] + opts)
        n = len(cands)
        cand_v, q_v, opt_v = vecs[:n], vecs[n], vecs[n + 1:]
        cand_u = cand_v / np.linalg.norm(cand_v, axis=1, keepdims=True)
        chosen: list[int] = []
        steps: list[Step] = []
        answer, source = "", "chain"
        pred = q_v
        for k_step in range(max_steps or self.cfg.max_steps):
            pred = self.next_concept(cand_v, q_v, [cand_v[i] for i in chosen])
            sims = cand_u @ (pred / max(1e-9, float(np.linalg.norm(pred))))
            order = [int(i) for i in np.argsort(-sims, kind="stable") if not (no_repeat and int(i) in chosen)]
            if not order:
                break
            best = order[0]
            chosen.append(best)
            name = f"concept.{k_step}"
            table = TokenTable(tuple(cands[i] for i in order[:k]), tuple(order[:k]),
                               tuple(float(sims[i]) for i in order[:k]), space="bank", score_name="cosine")
            steps.append(Step(name, cands[best], {name: pred, "nearest": cand_v[best]}, probes={"bank": table},
                              scalars={"cosine": float(sims[best])}))
            if statement_tail(cands[best]) in p["options"]:
                answer = f"{p['root']} is a {statement_tail(cands[best])}."
                break
        if not answer:
            answer, source = opts[int(np.argmax(opt_v @ pred))], "nearest option"
        chain = [cands[i] for i in chosen]
        return Trajectory(steps, kind="concepts", space=self.cfg.encoder, title=p["question"],
                          meta={"chain": chain, "answer": answer, "answer_from": source, "question": p["question"]})

    def next_concept(self, cand_v: np.ndarray, q_v: np.ndarray, steps: Sequence[np.ndarray]) -> np.ndarray:
        """The predicted next concept (denormalised) after the statements ``cand_v``, the question
        ``q_v`` and the chain of step concepts ``steps`` so far."""
        x, types, sidx = _sequence(self.normalizer, cand_v, q_v, list(steps))  # type: ignore[arg-type]
        out = self(x[None], types[None], sidx[None], torch.zeros((1, x.shape[0]), dtype=torch.bool))
        return self.normalizer.denormalize(out[0, -1].detach().float()).numpy()  # type: ignore[union-attr]

    def step_predictions(self, problem: dict[str, Any]) -> list[int]:
        """Teacher-forced: for each gold step, the index of the statement predicted from the gold prefix."""
        p = parse_problem(problem)
        vecs = self.encoder.encode(p["statements"] + [p["question"]] + p["steps"])
        n = len(p["statements"])
        cand_v, q_v, gold = vecs[:n], vecs[n], vecs[n + 1:]
        cand_u = cand_v / np.linalg.norm(cand_v, axis=1, keepdims=True)
        out = []
        with torch.inference_mode():
            for i in range(len(p["steps"])):
                pred = self.next_concept(cand_v, q_v, list(gold[:i]))
                out.append(int(np.argmax(cand_u @ pred)))
        return out

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | Path = DEFAULT_PATH, extra: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        assert self.normalizer is not None
        tensors = {k: v.detach().float().numpy() for k, v in self.state_dict().items()}
        tensors["normalizer.median"] = self.normalizer.median
        tensors["normalizer.scale"] = self.normalizer.scale
        atomic_write_safetensors(path, tensors, {"format": FORMAT})
        atomic_write_text(path.with_suffix(".json"),
                          json.dumps({"format": FORMAT, "config": asdict(self.cfg), **(extra or {})}, indent=1) + "\n")
        return path


def load_lcm(path: str | Path | None = None, encoder: Any = None) -> BaseLCM:
    """The shipped ProsQA Base-LCM (or one at ``path``)."""
    path = Path(path or DEFAULT_PATH)
    meta = path.with_suffix(".json")
    if not meta.is_file():
        raise SaveFileError(f"{meta} is missing; train it with `python -m explorer.concepts.lcm train`.")
    info = json.loads(meta.read_text(encoding="utf-8"))
    if info.get("format") != FORMAT:
        raise SaveFileError(f"{meta} is not a latent-explorer Base-LCM.")
    tensors, _ = read_safetensors(path)
    norm = RobustNormalizer(tensors.pop("normalizer.median"), tensors.pop("normalizer.scale"))
    model = BaseLCM(LCMConfig(**info["config"]), norm)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in tensors.items()})
    model.eval()
    model.info = info  # type: ignore[attr-defined]
    if encoder is not None:
        model._encoder = encoder
    return model


def _sequence(norm: RobustNormalizer, cand_v: np.ndarray, q_v: np.ndarray,
              steps: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = [cand_v, q_v[None]] + ([np.stack(steps)] if steps else [])
    x = torch.from_numpy(norm.normalize(np.concatenate(rows)).astype(np.float32))
    n = len(cand_v)
    types = torch.tensor([0] * n + [1] + [2] * len(steps))
    sidx = torch.tensor([0] * (n + 1) + list(range(1, len(steps) + 1)))
    return x, types, sidx
