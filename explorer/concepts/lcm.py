"""A small Base-LCM (Meta's "Large Concept Models", 2024): next-concept prediction by MSE
regression in a sentence-embedding space, here all-MiniLM-L6-v2, on ProsQA reasoning chains.

Inputs are concepts (sentence vectors) after the paper's robust normalisation — per dimension,
subtract the median and divide by IQR/1.349 (:class:`RobustNormalizer`, fitted on training
concepts): every statement of the problem (type 0, as a set), the question "Is X a A or B?"
(type 1), and the reasoning steps (type 2, with their step index). A small decoder-only
transformer reads them — the statements and question are a prefix seen whole, the steps are
causal — and regresses, at the question and at every step, the next step's normalised concept.

Reasoning (:meth:`BaseLCM.reason`) predicts a concept, decodes it to the nearest statement of the
problem by cosine (the concepts it can say are the problem's own sentences), feeds that
statement's concept back, and stops when a statement reaches one of the question's two options
(or after ``max_steps``); the answer is "X is a <that option>.". The whole chain is a
:class:`Trajectory` with steps ``concept.{k}``.

Trained only on the generator's problems (:mod:`explorer.tasks.prosqa.generate`); the real
validation set is for evaluation only. Reproduce the shipped weights::

    python -m explorer.concepts.lcm train            # explorer/concepts/weights/prosqa-lcm.*
    python -m explorer.concepts.lcm eval --data /path/to/prosqa_valid.json --json
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ExplorerError, InputError, SaveFileError
from ..io import atomic_path, atomic_write_safetensors, atomic_write_text, read_safetensors
from ..trajectory import Step, TokenTable, Trajectory

FORMAT = "latent-explorer.base-lcm/2"
DEFAULT_PATH = Path(__file__).resolve().parent / "weights" / "prosqa-lcm.safetensors"
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


def _tail(statement: str) -> str:
    return statement.rstrip(".").split(" is a ")[-1].strip()


def _head(statement: str) -> str:
    h = statement.split(" is a ")[0].strip()
    return h[len("Every "):] if h.startswith("Every ") else h


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
            from .encoders import load_encoder

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
            pred = self._predict(cand_v, q_v, [cand_v[i] for i in chosen])
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
            if _tail(cands[best]) in p["options"]:
                answer = f"{p['root']} is a {_tail(cands[best])}."
                break
        if not answer:
            answer, source = opts[int(np.argmax(opt_v @ pred))], "nearest option"
        chain = [cands[i] for i in chosen]
        return Trajectory(steps, kind="concepts", space=self.cfg.encoder, title=p["question"],
                          meta={"chain": chain, "answer": answer, "answer_from": source, "question": p["question"]})

    def _predict(self, cand_v: np.ndarray, q_v: np.ndarray, steps: Sequence[np.ndarray]) -> np.ndarray:
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
                pred = self._predict(cand_v, q_v, list(gold[:i]))
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


# -- training ------------------------------------------------------------------------------------
@dataclass
class LCMTrainConfig:
    seed: int = 0
    n_problems: int = 4000
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    max_minutes: float = 20.0
    save_every: int = 1


def _prepare(problems: Sequence[dict[str, Any]], enc: Any, progress: bool) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    parsed = [parse_problem(p) for p in problems]
    texts = sorted({t for p in parsed for t in (*p["statements"], p["question"], *p["steps"])})
    vecs = enc.encode(texts, batch_size=64, progress=progress)
    return parsed, dict(zip(texts, vecs))


def _batch(parsed: Sequence[dict[str, Any]], table: dict[str, np.ndarray], norm: RobustNormalizer,
           items: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """Whole problems: statements, question, every gold step; targets at the question and at every
    step but the last (``tmask`` marks them)."""
    seqs, tgts = [], []
    for i in items:
        p = parsed[i]
        cand = np.stack([table[s] for s in p["statements"]])
        steps = [table[s] for s in p["steps"]]
        seqs.append(_sequence(norm, cand, table[p["question"]], steps))
        tgts.append(norm.normalize(np.stack(steps)).astype(np.float32))
    L = max(s[0].shape[0] for s in seqs)
    B, D = len(seqs), seqs[0][0].shape[1]
    x = torch.zeros((B, L, D))
    y = torch.zeros((B, L, D))
    tmask = torch.zeros((B, L), dtype=torch.bool)
    types = torch.zeros((B, L), dtype=torch.long)
    sidx = torch.zeros((B, L), dtype=torch.long)
    pad = torch.ones((B, L), dtype=torch.bool)
    for r, ((xs, ts, ss), tg) in enumerate(zip(seqs, tgts)):
        n = xs.shape[0]
        x[r, :n], types[r, :n], sidx[r, :n], pad[r, :n] = xs, ts, ss, False
        q = n - len(tg) - 1                      # the question's position
        y[r, q:q + len(tg)] = torch.from_numpy(tg)
        tmask[r, q:q + len(tg)] = True
    return x, types, sidx, pad, y, tmask


def train(out: str | Path = DEFAULT_PATH, run_dir: str | Path = "runs/lcm", cfg: LCMTrainConfig | None = None,
          *, progress: bool = True) -> dict[str, Any]:
    """Train on ``cfg.n_problems`` generated problems (seeded), resuming from ``run_dir``; save to ``out``."""
    from tqdm.auto import tqdm

    from ..tasks.prosqa.generate import generate
    from .encoders import load_encoder

    cfg = cfg or LCMTrainConfig()
    torch.manual_seed(cfg.seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    enc = load_encoder("minilm")
    problems = generate(cfg.n_problems, seed=1000 + cfg.seed)
    cache = run_dir / f"concepts-{cfg.n_problems}-{cfg.seed}.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        table = dict(zip(z["texts"].tolist(), z["vecs"]))
        parsed = [parse_problem(p) for p in problems]
    else:
        parsed, table = _prepare(problems, enc, progress)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(list(table)), vecs=np.stack(list(table.values())))
    norm = RobustNormalizer.fit(np.stack(list(table.values())))
    model = BaseLCM(LCMConfig(dim=enc.dim), norm)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    items = list(range(len(parsed)))
    spe = math.ceil(len(items) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * spe, pct_start=0.05)
    ck = run_dir / "checkpoint.pt"
    start = 0
    if ck.is_file():
        st = torch.load(ck, weights_only=False)
        same = lambda d: {k: v for k, v in d.items() if k != "max_minutes"}  # noqa: E731
        if same(st.get("config", {})) != same(asdict(cfg)):
            raise SaveFileError(f"{ck} was written with other settings; delete {run_dir} to start over.")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["sched"])
        start = st["epoch"]
    t0 = time.time()
    epoch = start
    bar = tqdm(range(start, cfg.epochs), desc="base-lcm", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = list(items)
        random.Random(cfg.seed * 7919 + epoch).shuffle(order)
        tot = 0.0
        for s in range(0, len(order), cfg.batch_size):
            x, types, sidx, pad, y, tmask = _batch(parsed, table, norm, order[s:s + cfg.batch_size])
            loss = nn.functional.mse_loss(model(x, types, sidx, pad)[tmask], y[tmask])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item()
        bar.set_postfix(mse=f"{tot / spe:.4f}")
        print(f"epoch {epoch + 1}: mse {tot / spe:.4f} ({(time.time() - t0) / 60:.1f} min)", file=sys.stderr, flush=True)
        if (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs:
            with atomic_path(ck) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "sched": sched.state_dict(),
                            "epoch": epoch + 1, "config": asdict(cfg)}, tmp)
            model.save(out, extra={"train": asdict(cfg), "epochs_done": epoch + 1})
        if (time.time() - t0) / 60 > cfg.max_minutes:
            print(f"stopping after {epoch + 1} epochs: the {cfg.max_minutes} min budget is spent", file=sys.stderr)
            break
    model.eval()
    path = model.save(out, extra={"train": asdict(cfg), "epochs_done": epoch + 1})
    return {"path": str(path), "epochs_done": epoch + 1, "minutes": round((time.time() - t0) / 60, 2),
            "bytes": path.stat().st_size}


# -- evaluation ----------------------------------------------------------------------------------
def _valid_chain(problem: dict[str, Any], chain: Sequence[str]) -> bool:
    """Is ``chain`` a path of the problem's edges from the root to the target?"""
    from ..tasks.prosqa.generate import statement

    sym = problem.get("idx_to_symbol")
    if not sym or not chain:
        return False
    edges = {statement(sym, a, b) for a, b in problem["edges"]}
    cur = sym[problem["root"]]
    for s in chain:
        if s not in edges or _head(s) != cur:
            return False
        cur = _tail(s)
    return cur == sym[problem["target"]]


def evaluate(model: BaseLCM, data: Sequence[dict[str, Any]], *, limit: int | None = None,
             progress: bool = False) -> dict[str, Any]:
    """``accuracy`` (answer), ``step_accuracy`` (teacher-forced next step = gold step),
    ``chain_accuracy`` (free-running chain = gold steps), ``valid_chain_accuracy`` (free-running
    chain is any root→target path of the graph), ``mean_generated_tokens`` (concepts generated)."""
    items = list(data)[: limit if limit is not None else None]
    if not items:
        raise InputError("no problems to evaluate; pass a non-empty list.")
    # encode every sentence once, in batches
    texts = sorted({t for p in items for q in [parse_problem(p)] for t in (*q["statements"], q["question"], *q["steps"])})
    model.encoder.encode(texts, batch_size=64, progress=progress)
    it: Any = items
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(items, desc="ProsQA lcm", unit="problem")
    step_ok = step_n = 0
    correct, chains, valid, outputs, n_gen = [], [], [], [], []
    for prob in it:
        p = parse_problem(prob)
        preds = model.step_predictions(prob)
        step_ok += sum(p["statements"][i] == g for i, g in zip(preds, p["steps"]))
        step_n += len(p["steps"])
        traj = model.reason(prob)
        chain, ans = traj.meta["chain"], traj.meta["answer"]
        correct.append(ans == prob["answer"])
        chains.append(chain == p["steps"])
        valid.append(_valid_chain(prob, chain))
        outputs.append(" ".join(chain) + f" ### {ans}")
        n_gen.append(len(chain))
    n = len(items)
    return {"accuracy": sum(correct) / n, "step_accuracy": step_ok / max(1, step_n), "chain_accuracy": sum(chains) / n,
            "valid_chain_accuracy": sum(valid) / n, "n": n, "mean_generated_tokens": sum(n_gen) / n, "method": "lcm",
            "correct": correct, "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    """``python -m explorer.concepts.lcm train`` or ``... eval --data FILE [--json] [--limit N]``
    (the ``latent-explorer prosqa eval --method lcm`` path calls ``main(["eval", ...])``)."""
    ap = argparse.ArgumentParser(prog="python -m explorer.concepts.lcm", description="ProsQA Base-LCM: train or evaluate.")
    ap.add_argument("action", choices=["train", "eval"])
    ap.add_argument("--data", help="Coconut-format JSON to evaluate on (default: the shipped real validation set)")
    ap.add_argument("--model", default=str(DEFAULT_PATH),
                    help="'prosqa-lcm' (the shipped weights, default) or a .safetensors path (config beside it as .json)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print only the JSON summary (no progress bar)")
    ap.add_argument("--out", help="also write the full result (per-problem outputs) as JSON here")
    ap.add_argument("--method", default="lcm", choices=["lcm"], help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", default="runs/lcm")
    ap.add_argument("--epochs", type=int, default=LCMTrainConfig.epochs)
    ap.add_argument("--n-problems", type=int, default=LCMTrainConfig.n_problems)
    ap.add_argument("--max-minutes", type=float, default=LCMTrainConfig.max_minutes)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.model in ("prosqa-lcm", "lcm"):  # the shipped model's registered name
        args.model = str(DEFAULT_PATH)
    try:
        if args.action == "train":
            res = train(args.model, args.run_dir, LCMTrainConfig(seed=args.seed, epochs=args.epochs,
                                                                 n_problems=args.n_problems, max_minutes=args.max_minutes))
            print(json.dumps(res))
            return 0
        from ..tasks.prosqa import VALIDATION
        from ..tasks.prosqa.generate import load

        res = evaluate(load_lcm(args.model), load(args.data or VALIDATION), limit=args.limit, progress=not args.json)
    except ExplorerError as e:
        print(f"lcm: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    summary = {k: res[k] for k in ("accuracy", "step_accuracy", "chain_accuracy", "valid_chain_accuracy", "n",
                                   "mean_generated_tokens", "method")}
    summary["model"] = str(args.model)
    print(json.dumps(summary))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
