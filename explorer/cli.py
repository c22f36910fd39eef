"""The ``latent-explorer`` command."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .commands import report
from .errors import ExplorerError, InputError

TOUR = "notebooks/00_tour.ipynb"


def _project_root() -> Path:
    """The checkout this package runs from (notebooks live beside ``explorer/``)."""
    return Path(__file__).resolve().parent.parent


def lab_command(notebook: str = TOUR, *, port: int | None = None, no_browser: bool = False) -> list[str]:
    """The JupyterLab command line that opens ``notebook`` (root needs --allow-root)."""
    root = _project_root()
    nb = Path(notebook)
    path = nb if nb.is_absolute() else root / nb
    if not path.is_file():
        raise ExplorerError(f"{path} does not exist; pass a notebook path relative to {root}.")
    cmd = [sys.executable, "-m", "jupyterlab", str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
           f"--ServerApp.root_dir={root}"]
    if port:
        cmd.append(f"--port={port}")
    if no_browser or not (os.environ.get("DISPLAY") or sys.platform in ("darwin", "win32")):
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def _setup(_: argparse.Namespace) -> int:
    from .models import DEFAULT_MODEL
    from .models.registry import lookup

    spec = lookup(DEFAULT_MODEL)
    assert spec is not None
    path = spec.prepare()
    print(f"default model ready: {DEFAULT_MODEL} at {path}")
    from .projection import warm_up

    print(f"UMAP compiled into numba's on-disk cache in {warm_up():.1f} s (later processes skip that)")
    return 0


def _models(_: argparse.Namespace) -> int:
    from .models import registered

    for name, desc in sorted(registered().items()):
        print(f"{name:28s} {desc}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    cmd = lab_command(args.notebook, port=args.port, no_browser=args.no_browser)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    os.chdir(_project_root())
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover


def _trace(args: argparse.Namespace) -> int:
    from .loading import load_model

    model = load_model(args.model)
    tr = model.trace(args.text, dtype=args.dtype)
    if args.out:
        tr.save(args.out)
        print(f"saved {tr} to {args.out}")
    lens = model.logit_lens(tr, k=1)
    for p, tok in zip(lens.points, lens.top1()):
        print(f"{p:>10}  {tok!r}")
    return 0


# -- latent-explorer prosqa eval ----------------------------------------------------------------------
# engine → the module that evaluates it on ProsQA: ``add_eval_arguments(parser)`` adds its options,
# ``run_eval(args)`` returns (summary, full result)
EVALUATORS = {
    "thoughts": "explorer.thoughts.evaluate",     # Coconut, Soft Thinking, CoT, no-CoT (--mode: its METHODS)
    "recurrent": "explorer.recurrent.evaluate",   # recurrent depth: accuracy per iteration count
    "lcm": "explorer.concepts.lcm.evaluate",      # the Base-LCM: reasoning in sentence-vector space
}


def _evaluator(engine: str) -> Any:
    import importlib

    return importlib.import_module(EVALUATORS[engine])


def _thought_modes() -> tuple[str, ...]:
    """The modes of the thoughts engine (``coconut``, ``soft``, ``cot``, ``no_cot``)."""
    return tuple(_evaluator("thoughts").METHODS)


def _mode(name: str) -> str:
    return name.replace("nocot", "no_cot")


def eval_engine(method: str | None = None, engine: str | None = None, mode: str | None = None) -> tuple[str, str | None]:
    """(engine, mode) from the flags of ``prosqa eval``. ``--method`` is the older single flag:
    ``recurrent`` and ``lcm`` name an engine, ``coconut``, ``soft``, ``cot``, ``no_cot`` (``nocot``) a
    mode of the ``thoughts`` engine. Nothing given: ``thoughts`` thinking with ``coconut``."""
    mode = None if mode is None else _mode(mode)
    if method is not None:
        method = _mode(method)
        implied, implied_mode = (method, None) if method in EVALUATORS else ("thoughts", method)
        if (engine is not None and engine != implied) or (mode is not None and implied_mode not in (None, mode)):
            given = " ".join(f"--{k} {v}" for k, v in (("engine", engine), ("mode", mode)) if v is not None)
            raise InputError(f"--method {method} means --engine {implied}"
                             + (f" --mode {implied_mode}" if implied_mode else "")
                             + f", which contradicts {given}; pass either --method or --engine/--mode.")
        engine, mode = implied, mode if mode is not None else implied_mode
    engine = engine or "thoughts"
    if engine not in EVALUATORS:
        raise InputError(f"--engine must be one of {', '.join(EVALUATORS)}, got {engine!r}.")
    modes = _thought_modes()
    if engine != "thoughts":
        if mode is not None:
            raise InputError(f"--mode is how the thoughts engine thinks ({', '.join(modes)}); the {engine} engine "
                             "has no modes: leave --mode out.")
        return engine, None
    mode = mode or "coconut"
    if mode not in modes:
        raise InputError(f"--mode must be one of {', '.join(modes)}, got {mode!r}.")
    return engine, mode


def _engine_flags(ap: argparse.ArgumentParser, *, visible: bool = True) -> None:
    """``--engine``, ``--mode`` and the older ``--method`` (their values are checked by :func:`eval_engine`)."""
    modes = _thought_modes()
    h = (lambda text: text) if visible else (lambda text: argparse.SUPPRESS)
    ap.add_argument("--engine", choices=list(EVALUATORS), default=None,
                    help=h("thoughts (default), recurrent or lcm; each has options of its own (--engine ENGINE --help)"))
    ap.add_argument("--mode", type=_mode, choices=modes, default=None,
                    help=h("how the thoughts engine thinks (default: coconut; nocot is no_cot)"))
    ap.add_argument("--method", type=_mode, choices=[*modes, *(e for e in EVALUATORS if e != "thoughts")], default=None,
                    help=h("the older single flag: --method recurrent|lcm is --engine recurrent|lcm, "
                           "--method coconut|soft|cot|no_cot is --engine thoughts --mode ..."))


def _eval_parser(prog: str, engine: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description="ProsQA accuracy of a model: an engine (--engine), thinking "
                                 "in a mode (--mode, the thoughts engine only), with a model (--model).")
    _engine_flags(ap)
    ap.add_argument("--model", default=None, help="registered name or checkpoint folder (default: prosqa-<mode> for "
                                                   "thoughts, prosqa-recurrent-graph for recurrent (prosqa-recurrent till that ships), "
                                                   "the shipped prosqa-lcm)")
    ap.add_argument("--data", default=None, help="Coconut-format JSON file (default: the shipped real validation set)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate the first N problems only")
    ap.add_argument("--json", action="store_true", help="print only the JSON summary (no progress bar)")
    ap.add_argument("--out", help="also write the full result (per-problem outputs) as JSON here")
    _evaluator(engine).add_eval_arguments(ap.add_argument_group(f"options of --engine {engine}"))
    return ap


def prosqa_eval(argv: list[str] | None = None, *, prog: str = "latent-explorer prosqa eval") -> int:
    """``latent-explorer prosqa eval [--engine thoughts|recurrent|lcm] [--mode MODE] [--model NAME_OR_FOLDER]
    [--data DATA.json] [--limit N] [--json] [--out FILE]`` and the engine's own options; the older
    ``--method coconut|soft|cot|no_cot|recurrent|lcm`` still works (see :func:`eval_engine`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(prog=prog, add_help=False)
    _engine_flags(pre, visible=False)
    flags = pre.parse_known_args(argv)[0]
    try:
        engine, mode = eval_engine(flags.method, flags.engine, flags.mode)
    except InputError as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    args = _eval_parser(prog, engine).parse_args(argv)
    args.engine, args.mode = engine, mode
    return report(lambda: _evaluator(engine).run_eval(args), prog=prog, out=args.out)


# Subcommands whose options belong to a module of their own: ``latent-explorer GROUP ACTION ARGS``
# runs ``MODULE.main(ARGS)``, or ``MODULE:FUNCTION(ARGS)`` (each one's ``--help`` lists its options).
DELEGATED = {
    ("train", "coconut"): ("explorer.thoughts.train", "train continuous thoughts (Coconut curriculum; also CoT / no-CoT)"),
    ("train", "recurrent"): ("explorer.recurrent.train", "train a recurrent-depth (prelude-core-coda) model"),
    ("train", "bytes"): ("explorer.patches.train", "train the byte-level entropy model (byte patches, BLT)"),
    ("bytes", "eval"): ("explorer.patches.train:eval_main", "bits per byte of the byte entropy model on held-out text"),
    ("semantic", "eval"): ("explorer.semantic.prosqa:eval_main", "semantic decoding on ProsQA: one algorithm at one width"),
    ("semantic", "sweep"): ("explorer.semantic.prosqa:sweep_main", "semantic decoding on ProsQA: every algorithm and width"),
    ("train", "ship"): ("explorer.training.ship", "ship a trained run as a registered model, with its cost and results"),
    ("prosqa", "generate"): ("explorer.tasks.prosqa.generate", "generate ProsQA problems (Coconut JSON)"),
    ("prosqa", "eval"): ("explorer.cli:prosqa_eval", "ProsQA accuracy of a model: --engine thoughts|recurrent|lcm "
                                                    "[--mode coconut|soft|cot|no_cot] [--model NAME]"),
    ("prosqa", "audit"): ("explorer.tasks.prosqa.audit", "how often surface rules pick the answer (shortcuts)"),
}


def _capture(args: argparse.Namespace) -> int:
    from .corpus import read_corpus

    corpus = read_corpus(args.source, text_field=args.text_field)  # a bad file fails before any model loads
    options = dict(points=args.points, reduce=args.reduce, batch_size=args.batch_size, max_tokens=args.max_tokens,
                   shard_docs=args.shard_docs, text_field=args.text_field, progress=not args.no_progress, out=args.out)
    if args.ray:
        from .corpus.distributed import capture_ray

        cap = capture_ray(args.model, corpus, address=args.ray, workers=args.workers,
                          threads_per_worker=args.threads or 1, gpus_per_worker=args.gpus_per_worker,
                          device=args.device, store_dtype=args.dtype, **options)
    else:
        import torch

        from .loading import load_model

        if args.threads:
            torch.set_num_threads(args.threads)
        cap = load_model(args.model, device=args.device).capture(corpus, dtype=args.dtype, **options)
    m = cap.manifest
    print(f"captured {m.n_docs:,} texts ({m.stats.get('tokens', 0):,} tokens, {m.stats.get('tokens_per_s', 0):,.0f} tok/s) "
          f"into {len(cap):,} rows at {', '.join(m.points)}: {cap.folder}")
    return 0


def _delegate(argv: list[str]) -> int | None:
    """Run a delegated subcommand if ``argv`` names one, else ``None``."""
    import importlib

    if len(argv) >= 2 and (argv[0], argv[1]) in DELEGATED:
        module, _, function = DELEGATED[argv[0], argv[1]][0].partition(":")
        return int(getattr(importlib.import_module(module), function or "main")(argv[2:]) or 0)
    return None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="latent-explorer", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="prepare the offline default model (converts it once)")
    p.set_defaults(func=_setup)
    p = sub.add_parser("models", help="list registered model names")
    p.set_defaults(func=_models)
    p = sub.add_parser("lab", help="start JupyterLab on the tour notebook")
    p.add_argument("notebook", nargs="?", default=TOUR)
    p.add_argument("--port", type=int)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    p.set_defaults(func=_lab)
    p = sub.add_parser("trace", help="trace a text and print the top-1 logit-lens token per layer")
    p.add_argument("text")
    p.add_argument("--model", default=None)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.add_argument("--out", help="save the trace (safetensors)")
    p.set_defaults(func=_trace)
    p = sub.add_parser("capture", help="capture a corpus's hidden states to Parquet shards (resumable; --ray to scale out)")
    p.add_argument("model", help="a registered name, a checkpoint folder or a Hub id")
    p.add_argument("source", help="a .txt (one text per line), .jsonl ('text' field) or .parquet ('text' column) file, "
                                  "or hf:NAME[:SPLIT] when online")
    p.add_argument("--out", required=True, help="the capture folder (re-run the same command to resume)")
    p.add_argument("--points", nargs="+", default=None, help="capture points (default: all), e.g. layer.12 final")
    p.add_argument("--reduce", default="last", choices=["last", "mean", "all"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"], help="storage precision")
    p.add_argument("--max-tokens", type=int, default=None, help="cut longer texts (default 512)")
    p.add_argument("--shard-docs", type=int, default=None, help="texts per shard (default 1024; 64 with --reduce all)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (per worker with --ray; default: torch's)")
    p.add_argument("--ray", metavar="ADDRESS", help="run on Ray: auto (join or start), local, or ray://host:port")
    p.add_argument("--workers", type=int, default=2, help="model replicas with --ray")
    p.add_argument("--gpus-per-worker", type=float, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_capture)
    for group in dict.fromkeys(g for g, _ in DELEGATED):
        actions = {a: h for (g, a), (_, h) in DELEGATED.items() if g == group}
        p = sub.add_parser(group, help="; ".join(f"{a}: {h}" for a, h in actions.items()))
        p.add_argument("action", choices=list(actions), help="then that action's own options (try --help)")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    code = _delegate(argv)
    if code is not None:
        return code
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ExplorerError as e:
        print(f"latent-explorer: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
