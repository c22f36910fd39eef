"""How long each notebook takes top to bottom, as a workshop attendee runs it (target: ≤ 3 minutes).

Executes every ``notebooks/*.ipynb`` with nbclient in a fresh kernel, offline (``HF_HUB_OFFLINE=1``),
with the model caches as they are after ``make setup``; the time includes the kernel start and every
model load. Prints and writes a markdown table to ``benchmarks/results/notebooks.md`` (atomically).
``.venv/bin/python benchmarks/notebooks.py [NAME ...]`` (names like ``04_concept_space``; default: all).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUDGET_S = 180  # the workshop promise: each notebook in <= 3 minutes on 2 CPU cores


def run_notebook(path: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help="notebook stems (default: every notebook)")
    args = ap.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in set(args.names)]
    rows = []
    for p in paths:
        s = run_notebook(p)
        rows.append(f"| `{p.stem}` | {s:.0f} | {'PASS' if s <= BUDGET_S else 'FAIL'} |")
        print(rows[-1], flush=True)
    table = "\n".join([
        "# Notebooks, top to bottom", "",
        f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; offline, model caches warm",
        "- command: `.venv/bin/python benchmarks/notebooks.py`", "",
        f"| notebook | seconds (kernel start to last cell) | ≤ {BUDGET_S} s |", "|---|---:|---|", *rows, ""])
    print(table)
    if not args.names:
        from explorer.io import atomic_write_text

        atomic_write_text(ROOT / "benchmarks" / "results" / "notebooks.md", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
