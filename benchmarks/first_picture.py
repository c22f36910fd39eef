"""From a fresh clone to the tour's first picture: how long does a first-time user wait?

Clones this checkout into a temp folder, runs ``make setup`` there with an empty model cache (a new
``.venv``, every package, the default model converted once) and then executes the tour notebook
with nbclient until its first picture (the logit-lens figure) is drawn. Prints and writes a
markdown table to ``benchmarks/results/first_picture.md`` (atomically). Target: ≤ 10 minutes.

Package downloads depend on the network and pip's cache: the table says which machine and whether
pip's cache was warm. ``.venv/bin/python benchmarks/first_picture.py [--keep]``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", action="store_true", help="keep the temp clone")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="le-first-"))
    clone, cache = tmp / "latent-explorer", tmp / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(LATENT_EXPLORER_CACHE=str(cache), HF_HUB_OFFLINE="1")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p)
    try:
        t_clone = run(["git", "clone", "-q", str(ROOT), str(clone)], tmp, env)
        t_setup = run(["make", "setup"], clone, env)
        # the tour, cell by cell, until the first picture: what the user sees after pressing Shift+Enter
        code = (
            "import time, nbformat\n"
            "from nbclient import NotebookClient\n"
            "nb = nbformat.read('notebooks/00_tour.ipynb', as_version=4)\n"
            "c = NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': 'notebooks'}})\n"
            "t0 = time.perf_counter()\n"
            "with c.setup_kernel():\n"
            "    for i, cell in enumerate(nb.cells):\n"
            "        c.execute_cell(cell, i)\n"
            "        if any('application/vnd.plotly.v1+json' in o.get('data', {}) for o in cell.get('outputs', [])):\n"
            "            break\n"
            "print(f'{time.perf_counter() - t0:.1f}')\n")
        out = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", code], cwd=clone, env=env, check=True,
                             capture_output=True, text=True).stdout
        t_tour = float(out.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    total = t_clone + t_setup + t_tour
    pip_cache = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True).stdout.strip()
    table = "\n".join([
        "# From a fresh clone to the tour's first picture", "",
        f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}; torch from local disk, "
        f"other packages from the package registry (pip cache: {pip_cache or 'none'})",
        "- command: `.venv/bin/python benchmarks/first_picture.py`", "",
        "| step | seconds |", "|---|---:|",
        f"| git clone | {t_clone:.1f} |",
        f"| `make setup` (venv, packages, default model converted once) | {t_setup:.1f} |",
        f"| tour: kernel start → first picture (the logit lens) | {t_tour:.1f} |",
        f"| **total** | **{total:.1f}** ({total / 60:.1f} min; target ≤ 10 min: {'PASS' if total <= 600 else 'FAIL'}) |", ""])
    print(table)
    from explorer.io import atomic_write_text

    atomic_write_text(ROOT / "benchmarks" / "results" / "first_picture.md", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
