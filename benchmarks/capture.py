"""Capture benchmark: what does it cost to read the whole residual stream of one forward pass?

On the default model (SmolLM2-135M-Instruct, offline) with a 256-token input, on CPU with 2 torch
threads, this times in ONE process, interleaved in rounds (each round runs every approach once, in a
shuffled order):

- a plain Hugging Face forward (``model.hf(input_ids=ids)``, default arguments) — the baseline;
- HF with ``output_hidden_states=True``;
- HF with the arguments ``Model.trace`` uses (``use_cache=False, logits_to_keep=1``), no hooks —
  shows what the hooks themselves cost;
- ``model.trace(ids)``, every capture point (embed, layer.0 … layer.29, final);
- TransformerLens 4 bridge ``run_with_cache``, on ``hook_resid_post`` only and on every hook;
- nnsight 0.8, a trace saving all 30 decoder-layer outputs.

Before timing it checks that the captures agree: trace's ``layer.i`` equals HF ``hidden_states[i+1]``
for every layer but the last, ``final`` equals ``hidden_states[-1]``, and the peers' layer outputs
agree with both. Peers that are not installed are marked so; the rest still runs.

It prints a markdown table and writes it, with the date, the machine and the command, atomically to
``benchmarks/results/capture.md``. Run it with ``make bench`` or ``.venv/bin/python benchmarks/capture.py``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PARAGRAPH = ("The river runs past the old mill, where the miller's daughter keeps a ledger of every sack of "
             "grain that comes through the door. In winter the wheel freezes and the village waits; in spring "
             "the water comes down brown and fast, and the stones turn day and night. Travellers stop to ask "
             "the way to the capital, and she tells them to follow the river south for three days. ")

TRACE_TARGET = 1.05  # trace may cost at most 5% more than a plain forward
HF_TOL = dict(rtol=1e-5, atol=1e-5)    # trace vs HF: the same model, the same kernels
PEER_TOL = dict(rtol=1e-3, atol=1e-3)  # TransformerLens forces eager attention: float32 rounding differs


# -- helpers -----------------------------------------------------------------------------------
def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(xs: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def command_line() -> str:
    exe = Path(sys.executable)
    try:
        exe_s = str(exe.relative_to(Path.cwd()))
    except ValueError:
        exe_s = str(exe)
    argv0 = Path(sys.argv[0])
    try:
        argv0_s = str(argv0.resolve().relative_to(Path.cwd()))
    except ValueError:
        argv0_s = sys.argv[0]
    return shlex.join([exe_s, argv0_s, *sys.argv[1:]])


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Approach:
    def __init__(self, key: str, label: str, fn: Callable[[], Any] | None, status: str = "ok") -> None:
        self.key, self.label, self.fn, self.status = key, label, fn, status
        self.times: list[float] = []
        self.check = ""


# -- building the approaches -------------------------------------------------------------------
def build(n_tokens: int) -> tuple[list[Approach], dict[str, Any]]:
    import explorer
    from explorer.models import registry

    model = explorer.load_model(device="cpu")
    model_dir = registry.lookup(registry.DEFAULT_MODEL).prepare()
    tok = model.tokenizer
    text = PARAGRAPH
    while len(tok(text, add_special_tokens=False)["input_ids"]) < n_tokens:
        text += PARAGRAPH
    id_list = list(tok(text, add_special_tokens=False)["input_ids"])[:n_tokens]
    ids = torch.tensor([id_list])
    info: dict[str, Any] = {"model": model.name, "model_dir": str(model_dir), "tokens": n_tokens,
                            "n_layers": model.n_layers, "attn": getattr(model.hf.config, "_attn_implementation", "?")}
    L = model.n_layers

    # trace takes token ids directly when explorer supports it; otherwise a text that re-tokenizes
    # to exactly the same ids.
    trace_input: Any = id_list
    try:
        model.trace(id_list, points=["embed"])
        info["trace_input"] = "token ids (list of int)"
    except Exception as e:  # an explorer without the ids path
        trace_input = tok.decode(id_list)
        got = model.encode(trace_input)[0].tolist()
        if got != id_list:
            raise SystemExit(f"model.trace cannot take token ids ({type(e).__name__}: {e}) and no text re-tokenizes "
                             f"to the same {n_tokens} ids; explorer needs an ids= path for this benchmark.")
        info["trace_input"] = "decoded text (trace took no ids)"

    # -- reference: HF hidden states, and trace --------------------------------------------------
    with torch.inference_mode():
        ref = model.hf(input_ids=ids, output_hidden_states=True)
    hs = [h[0].float() for h in ref.hidden_states]
    tr = model.trace(trace_input)
    assert tr.token_ids == id_list, "trace tokenized the input differently"
    diffs = [max_diff(tr[f"layer.{i}"], hs[i + 1]) for i in range(L - 1)]
    ok = all(torch.allclose(tr[f"layer.{i}"], hs[i + 1], **HF_TOL) for i in range(L - 1))
    ok &= torch.allclose(tr["final"], hs[-1], **HF_TOL) and torch.allclose(tr["embed"], hs[0], **HF_TOL)
    d_final, d_embed = max_diff(tr["final"], hs[-1]), max_diff(tr["embed"], hs[0])
    if not ok:
        raise SystemExit(f"trace disagrees with HF hidden_states (max |diff| layers {max(diffs):.2e}, "
                         f"final {d_final:.2e}, embed {d_embed:.2e})")
    trace_check = (f"layer.0–{L - 2} = hs[i+1], final = hs[-1], embed = hs[0]; "
                   f"max abs diff {max(diffs + [d_final, d_embed]):.1e}")
    last = tr[f"layer.{L - 1}"]  # pre-norm last block output: what the peers give for the last layer

    def plain():
        with torch.inference_mode():
            return model.hf(input_ids=ids)

    def hidden():
        with torch.inference_mode():
            return model.hf(input_ids=ids, output_hidden_states=True)

    def bare():
        with torch.inference_mode():
            return model.hf(input_ids=ids, use_cache=False, logits_to_keep=1)

    def trace():
        return model.trace(trace_input)

    approaches = [
        Approach("plain", "HF forward (`model.hf(input_ids=ids)`, default args)", plain),
        Approach("hidden", "HF `output_hidden_states=True`", hidden),
        Approach("bare", "HF `use_cache=False, logits_to_keep=1` (trace's call, no hooks)", bare),
        Approach("trace", "`model.trace(ids)`, all 32 points", trace),
    ]
    approaches[0].check = "baseline"
    approaches[1].check = "reference"
    approaches[2].check = "—"
    approaches[3].check = trace_check

    def compare(outs: list[torch.Tensor]) -> tuple[bool, str]:
        d = [max_diff(outs[i], hs[i + 1]) for i in range(L - 1)] + [max_diff(outs[L - 1], last)]
        good = all(torch.allclose(outs[i].float(), hs[i + 1], **PEER_TOL) for i in range(L - 1))
        good &= torch.allclose(outs[L - 1].float(), last, **PEER_TOL)
        return good, f"{L} layers = hs[i+1] / trace layer.{L - 1}; max abs diff {max(d):.1e}"

    # -- TransformerLens 4 bridge --------------------------------------------------------------
    tl_ver = version("transformer-lens") or version("transformer_lens")
    info["transformer_lens"] = tl_ver
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except Exception as e:  # not installed, or a 3.x without the bridge
        why = "not installed" if tl_ver is None else f"import failed: {type(e).__name__}"
        approaches += [Approach("tl_resid", "TransformerLens bridge `run_with_cache`, resid_post only", None, why),
                       Approach("tl_all", "TransformerLens bridge `run_with_cache`, every hook", None, why)]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(str(model_dir), tokenizer=tok, device="cpu",
                                                         dtype=torch.float32)
        resid = lambda n: n.endswith("hook_resid_post")  # noqa: E731

        def tl_resid():
            with torch.inference_mode():
                return bridge.run_with_cache(ids, names_filter=resid)

        def tl_all():
            with torch.inference_mode():
                return bridge.run_with_cache(ids)

        a_r = Approach("tl_resid", "TransformerLens bridge `run_with_cache`, resid_post only", tl_resid)
        a_a = Approach("tl_all", "TransformerLens bridge `run_with_cache`, every hook", tl_all)
        for a in (a_r, a_a):
            logits, cache = a.fn()
            outs = [cache[f"blocks.{i}.hook_resid_post"][0] for i in range(L)]
            good, msg = compare(outs)
            dl = max_diff(logits[0], ref.logits[0])
            a.check = f"{msg}; {len(cache)} hooks cached; logits max abs diff {dl:.1e}"
            if not good:
                a.status = "WRONG"
            del logits, cache
        approaches += [a_r, a_a]

    # -- nnsight 0.8 -----------------------------------------------------------------------------
    nn_ver = version("nnsight")
    info["nnsight"] = nn_ver
    try:
        import nnsight
        from nnsight import LanguageModel
        from transformers import AutoModelForCausalLM
    except Exception as e:
        why = "not installed" if nn_ver is None else f"import failed: {type(e).__name__}"
        approaches.append(Approach("nnsight", "nnsight trace saving 30 layer outputs", None, why))
    else:
        # its own copy of the weights: nnsight wraps the modules it is given
        hf2 = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
        lm = LanguageModel(hf2, tokenizer=tok)
        layers = lm.model.layers

        def nn_trace():
            with torch.inference_mode(), lm.trace(ids):
                outs = nnsight.save([layer.output for layer in layers])
            return outs

        a = Approach("nnsight", f"nnsight trace saving {L} layer outputs", nn_trace)
        outs = [o[0] if isinstance(o, tuple) else o for o in nn_trace()]
        good, msg = compare([o[0] for o in outs])
        a.check = msg
        if not good:
            a.status = "WRONG"
        approaches.append(a)
    return approaches, info


# -- timing --------------------------------------------------------------------------------------
def run_rounds(approaches: list[Approach], warmup: int, rounds: int, seed: int) -> float:
    live = [a for a in approaches if a.fn is not None and a.status == "ok"]
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for r in range(warmup + rounds):
        order = live[:]
        rng.shuffle(order)
        for a in order:
            gc.collect()
            start = time.perf_counter()
            out = a.fn()
            dt = time.perf_counter() - start
            del out
            if r >= warmup:
                a.times.append(dt)
        tag = "warmup" if r < warmup else "round"
        n = r + 1 if r < warmup else r - warmup + 1
        print(f"  {tag} {n}/{warmup if r < warmup else rounds}: "
              + ", ".join(f"{a.key} {a.times[-1] * 1e3:.0f}" if r >= warmup else a.key for a in live)
              + (" ms" if r >= warmup else ""), file=sys.stderr, flush=True)
    return time.perf_counter() - t0


def table(approaches: list[Approach]) -> tuple[str, dict[str, float]]:
    base = next(a for a in approaches if a.key == "plain")
    bmed = statistics.median(base.times)
    rows = ["| approach | median ms | ratio to plain | paired ratio | p10 ms | p90 ms | check |",
            "|---|---:|---:|---:|---:|---:|---|"]
    ratios: dict[str, float] = {}
    for a in approaches:
        if a.status != "ok" or not a.times:
            rows.append(f"| {a.label} | — | — | — | — | — | {a.status} |")
            continue
        med = statistics.median(a.times)
        ratios[a.key] = med / bmed
        paired = statistics.median(t / b for t, b in zip(a.times, base.times))
        rows.append(f"| {a.label} | {med * 1e3:.0f} | {med / bmed:.2f}x | {paired:.2f}x | "
                    f"{percentile(a.times, 10) * 1e3:.0f} | {percentile(a.times, 90) * 1e3:.0f} | {a.check} |")
    return "\n".join(rows), ratios


def verdict(ratios: dict[str, float]) -> list[str]:
    lines = []
    t = ratios.get("trace")
    if t is None:
        return ["trace was not timed"]
    lines.append(f"- trace ≤ {TRACE_TARGET:.2f}x plain forward: {'PASS' if t <= TRACE_TARGET else 'FAIL'} ({t:.2f}x)")
    for key, name in (("tl_resid", "TransformerLens resid_post only"), ("nnsight", "nnsight")):
        if key in ratios:
            ok = t <= ratios[key]
            lines.append(f"- trace no slower than {name}: {'PASS' if ok else 'FAIL'} "
                         f"({t:.2f}x vs {ratios[key]:.2f}x)")
        else:
            lines.append(f"- trace no slower than {name}: not measured (peer not installed)")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "capture.md")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    when = _dt.datetime.now(_dt.timezone.utc)
    approaches, info = build(args.tokens)
    print(f"built in {time.perf_counter() - started:.0f} s; timing {args.warmup} warmup + {args.rounds} rounds",
          file=sys.stderr, flush=True)
    timed = run_rounds(approaches, args.warmup, args.rounds, args.seed)
    body, ratios = table(approaches)
    total = time.perf_counter() - started

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    peers = ", ".join(f"{n} {info[k] or 'not installed'}" for n, k in (("transformer-lens", "transformer_lens"),
                                                                       ("nnsight", "nnsight")))
    doc = "\n".join([
        "# Capture benchmark",
        "",
        f"- date: {when:%Y-%m-%d %H:%M} UTC",
        f"- command: `{command_line()}`",
        f"- machine: {cpu_name()}, {cores} cores usable ({os.cpu_count()} online), {platform.system()} "
        f"{platform.machine()}; load average at the end {load}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {version('transformers')}, {peers}",
        f"- model: {info['model']} ({info['n_layers']} layers, attention `{info['attn']}`; the TransformerLens "
        "bridge runs its own copy with eager attention), float32, CPU",
        f"- input: {info['tokens']} tokens (a paragraph repeated, token ids cut to {info['tokens']}); "
        f"trace given {info['trace_input']}",
        f"- timing: {args.warmup} warmup + {args.rounds} timed rounds, every approach once per round in a "
        f"shuffled order (seed {args.seed}); the timed part took {timed:.0f} s, the whole run {total:.0f} s",
        "",
        body,
        "",
        "ratio to plain = median / median of the plain forward; paired ratio = median over rounds of the "
        "time divided by that round's plain forward (less sensitive to drifting load). "
        "The plain forward computes logits at all positions and fills a KV cache; `model.trace` asks for "
        "`use_cache=False, logits_to_keep=1`, so the row \"trace's call, no hooks\" is the like-for-like "
        "baseline for the cost of the hooks. Noise on a shared 2-core machine is about ±10%: compare rows "
        "of one run only.",
        "",
        "Targets:",
        *verdict(ratios),
        "",
    ])
    print(doc)
    atomic_write_text(args.out, doc)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
