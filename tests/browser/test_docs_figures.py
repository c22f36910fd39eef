"""docs/figures.py draws the figures of docs/recurrent.md and docs/thoughts.md from the shipped models."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURES = [sys.executable, str(REPO / "docs" / "figures.py")]


def drawn(folder: Path, names: set[str]) -> None:
    assert {p.stem for p in folder.glob("*.png")} == names and not list(folder.glob(".*"))
    for name in names:
        png = (folder / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a drawn chart, not a blank page


def test_docs_figures_are_drawn_from_the_shipped_models(tmp_path):
    from explorer.models.registry import lookup

    # a subprocess: the script starts its own Playwright, which cannot nest in this session's
    out = subprocess.run([*FIGURES, "--out", str(tmp_path), "--problems", "5", "--limit", "20"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    names = {"recurrent_accuracy", "recurrent_hops", "recurrent_hop_curves", "recurrent_distance", "recurrent_pca"}
    for figures, model in (("frontier", "prosqa-coconut"), ("iterations", "prosqa-recurrent-graph")):
        if lookup(model) is not None:
            names |= {f"{figures.rstrip('s')}_prob", f"{figures.rstrip('s')}_inner"}
            if figures == "iterations":   # and the iterations the peak-rise exit spends per hop count
                names.add("iteration_exit")
        else:   # a set whose model is not shipped is skipped by default, refused when asked for
            assert f"{figures} figures skipped: {model} is not shipped yet" in out.stderr
            only = subprocess.run([*FIGURES, "--only", figures, "--out", str(tmp_path / "only")],
                                  capture_output=True, text=True, timeout=300)
            assert only.returncode == 2 and not (tmp_path / "only").exists()
    drawn(tmp_path, names)


def test_the_iteration_figures_are_drawn_from_a_checkpoint_folder(tmp_path):
    """--recurrent FOLDER: what each core iteration of a (tiny, random) graph-token recurrent model holds."""
    from explorer.recurrent.model import build_model, tiny_config
    from explorer.tasks.prosqa import graph_tokens as G

    tok = G.build_graph_tokenizer()
    build_model(tiny_config(vocab_size=len(tok), prosqa_task="reach"), seed=1).save_pretrained(tmp_path / "rec")
    tok.save_pretrained(tmp_path / "rec")
    out = subprocess.run([*FIGURES, "--only", "iterations", "--recurrent", str(tmp_path / "rec"), "--limit", "6",
                          "--out", str(tmp_path / "png")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| hops | n | reading | group | iteration.1 |" in out.stdout and "iteration.16 |" in out.stdout
    drawn(tmp_path / "png", {"iteration_prob", "iteration_inner", "iteration_exit"})
