"""Every committed notebook runs top to bottom with the offline defaults (as a user would run it)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.notebooks


def _execute(path: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # the kernel inherits it: no notebook may reach a hub
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        return nb, time.perf_counter() - t0
    finally:
        if env_before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def _mimetypes(nb) -> set[str]:
    return {m for c in nb.cells for o in c.get("outputs", []) for m in o.get("data", {})}


def test_there_is_a_tour():
    assert ROOT / "notebooks" / "00_tour.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path):
    nb, seconds = _execute(path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    print(f"{path.name}: {seconds:.0f} s")
    if path.stem == "00_tour":
        text = _text(nb)
        assert "' Paris'" in text and "layer.29" in text, "the tour should show the model answering Paris"
        # the pictures: a plotly figure (lens) and the widgets (lens view, stepper, map, concept lab)
        assert "application/vnd.plotly.v1+json" in _mimetypes(nb)
        assert text.count("ThoughtStepper(") >= 3 and "LatentMap(" in text
        assert "Rome is the capital of Italy." in text, "the tour should show sentence arithmetic"
        assert "→ top token" in text and "iterations at position" in text, "the tour should step through iterations"
        assert "GraphView(GraphRun(recurrent" in text, "the tour should show the iterations on the problem's graph"
        assert "GraphRun(coconut, 'prosqa-coconut', 4 steps, answer='vumpus', correct=True)" in text, \
            "the tour should show the trained Coconut model's thoughts on a graph"
    if path.stem == "02_continuous_thoughts":
        text = _text(nb)
        assert "GraphCompare(" in text and "thought 1: 0.9" in text, "the trained Coconut's first thought holds the frontier"
        assert "right_option_thought" in text and "no answer yet" in text
    if path.stem == "03_recurrent_depth":
        text = _text(nb)
        assert "the last token stops after" in text and "iterations at position" in text
        assert "application/vnd.plotly.v1+json" in _mimetypes(nb) and "no answer yet" in text
        assert "two_hop_iterations" in text, "the hop-count section should offer its exercise"
        assert "GraphView(GraphRun(recurrent" in text, "the search should spread over a problem's graph"
    if path.stem == "05_byte_patches":
        text = _text(nb)
        assert "bits per byte on this paragraph" in text and "patches per repetition" in text
        assert "PatchView(" in text and "ThoughtStepper(" in text and "no answer yet" in text
    if path.stem == "06_semantic_decoding":
        text = _text(nb)
        assert "beam width  8" in text and "valid chains" in text and "random proposals" in text
        assert "ThoughtTree(" in text and "ThoughtStepper(" in text and "no answer yet" in text
    if path.stem == "07_corpus_map":
        text = _text(nb)
        assert "CorpusCapture(" in text and "tokens/s" in text and "CorpusMap(1,536 points" in text
        assert "sentences selected" in text and "template 100%" in text and "no answer yet" in text
        assert "vectors.tsv" in text and "layout.csv" in text and "similarity" in text
    if path.stem == "04_concept_space":
        text = _text(nb)
        assert "An insect has six legs." in text, "sentence arithmetic should land on the insect sentence"
        assert "chain: " in text and "Tom is a" in text, "the Base-LCM should reason through a ProsQA problem"
        assert text.count("ThoughtStepper(") >= 3 and "no answer yet" in text
