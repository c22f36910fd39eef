"""The ``latent-explorer`` command."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ExplorerError

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
    from .model import load_model

    model = load_model(args.model)
    tr = model.trace(args.text, dtype=args.dtype)
    if args.out:
        tr.save(args.out)
        print(f"saved {tr} to {args.out}")
    lens = model.logit_lens(tr, k=1)
    for p, tok in zip(lens.points, lens.top1()):
        print(f"{p:>10}  {tok!r}")
    return 0


# Subcommands whose options belong to a module of their own: ``latent-explorer GROUP ACTION ARGS``
# runs ``MODULE.main(ARGS)`` (each module's ``--help`` lists its options).
DELEGATED = {
    ("train", "coconut"): ("explorer.thoughts.train", "train continuous thoughts (Coconut curriculum; also CoT / no-CoT)"),
    ("train", "recurrent"): ("explorer.recurrent.train", "train a recurrent-depth (prelude-core-coda) model"),
    ("prosqa", "generate"): ("explorer.tasks.prosqa.generate", "generate ProsQA problems (Coconut JSON)"),
    ("prosqa", "eval"): ("explorer.tasks.prosqa.evaluate", "ProsQA accuracy of a model: MODEL DATA --method ..."),
    ("prosqa", "audit"): ("explorer.tasks.prosqa.audit", "how often surface rules pick the answer (shortcuts)"),
}


def _delegate(argv: list[str]) -> int | None:
    """Run a delegated subcommand if ``argv`` names one, else ``None``."""
    import importlib

    if len(argv) >= 2 and (argv[0], argv[1]) in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0], argv[1]][0])
        return int(module.main(argv[2:]) or 0)
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
