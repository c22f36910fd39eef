"""docs/figures.py draws the figures of docs/recurrent.md and docs/thoughts.md from the shipped models."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_docs_figures_are_drawn_from_the_shipped_model(tmp_path):
    from explorer.models.registry import lookup

    # a subprocess: the script starts its own Playwright, which cannot nest in this session's
    out = subprocess.run([sys.executable, str(REPO / "docs" / "figures.py"), "--out", str(tmp_path), "--problems", "5"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    names = {"recurrent_accuracy", "recurrent_hops", "recurrent_hop_curves", "recurrent_distance", "recurrent_pca"}
    if lookup("prosqa-coconut") is not None:
        names |= {"frontier_prob", "frontier_inner"}
    else:   # a set whose model is not shipped is skipped by default, refused when asked for
        assert "frontier figures skipped: prosqa-coconut is not shipped yet" in out.stderr
        only = subprocess.run([sys.executable, str(REPO / "docs" / "figures.py"), "--only", "frontier", "--out",
                               str(tmp_path / "only")], capture_output=True, text=True, timeout=300)
        assert only.returncode == 2 and not (tmp_path / "only").exists()
    assert {p.stem for p in tmp_path.glob("*.png")} == names and not list(tmp_path.glob(".*"))
    for name in names:
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a drawn chart, not a blank page
