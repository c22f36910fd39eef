"""End-to-end: CorpusMap (jupyter-scatter, WebGL) in a real JupyterLab 4 and headless Chromium.

A box dragged with the mouse around one of three clusters must come back to the kernel as a
DataFrame of exactly that cluster's rows.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from labdriver import jupyter_lab, kernel_eval, new_page, open_and_run, screenshot  # noqa: E402

pytestmark = pytest.mark.browser

#: the regl-scatterplot instance hangs on its container as ``.api``; points are drawn once
#: ``getScreenPosition`` stops throwing
FIND_API = "() => [...document.querySelectorAll('.jp-OutputArea-output div')].find(d => d.api)"
DRAWN = f"""() => {{ const c = ({FIND_API})(); if (!c) return false;
    try {{ return !!c.api.getScreenPosition(0); }} catch (e) {{ return false; }} }}"""


def _kernel_json(page, code: str, timeout_ms: int = 30_000):
    out = kernel_eval(page, code, timeout_ms)
    assert "ERROR" not in out, out
    return json.loads(out.strip().splitlines()[-1])


def _drag_box(page, left: float, top: float, right: float, bottom: float, steps: int = 12) -> None:
    """Press, move in steps (with pauses: regl-scatterplot throttles lasso points), release."""
    page.mouse.move(left, top)
    page.mouse.down()
    page.wait_for_timeout(50)
    for k in range(1, steps + 1):
        f = k / steps
        page.mouse.move(left + (right - left) * f, top + (bottom - top) * f)
        page.wait_for_timeout(30)
    page.wait_for_timeout(50)
    page.mouse.up()


def test_box_selection_returns_the_cluster_as_a_dataframe(chromium_browser):
    t0 = time.monotonic()
    with jupyter_lab(("widgets_corpus_map.ipynb",)) as lab:
        page = new_page(chromium_browser)
        try:
            open_and_run(page, lab, "widgets_corpus_map.ipynb", timeout_s=240)
            page.wait_for_function(DRAWN, timeout=90_000, polling=250)
            out = page.locator(".jp-OutputArea-output").filter(has=page.locator("canvas")).first
            page.evaluate(f"() => ({FIND_API})().querySelector('canvas').scrollIntoView({{block: 'center'}})")
            page.wait_for_timeout(300)
            # the cluster to select: its size and its extreme points (row positions), from the kernel
            info = _kernel_json(page, """
import json, numpy as np
_xy = cmap.coords(); _rows = np.flatnonzero(np.asarray(table["label"]) == "c")
_ext = [int(_rows[np.argmin(_xy[_rows, 0])]), int(_rows[np.argmax(_xy[_rows, 0])]),
        int(_rows[np.argmin(_xy[_rows, 1])]), int(_rows[np.argmax(_xy[_rows, 1])])]
print(json.dumps({"n": int(len(_rows)), "ext": _ext, "status": cmap.status, "sel": len(cmap.selection())}))""")
            assert info["status"] == "pca" and info["sel"] == 0 and 6000 < info["n"] < 7400
            # where those points are on the screen (canvas CSS pixels + the canvas' page offset)
            box = page.evaluate(f"""(ext) => {{ const c = ({FIND_API})();
                const r = c.querySelector('canvas').getBoundingClientRect();
                const ps = ext.map(i => c.api.getScreenPosition(i));
                const xs = ps.map(p => p[0] + r.left), ys = ps.map(p => p[1] + r.top);
                return {{ left: Math.min(...xs), right: Math.max(...xs), top: Math.min(...ys), bottom: Math.max(...ys),
                          cl: Math.max(r.left, 0), cr: Math.min(r.right, innerWidth),
                          ct: Math.max(r.top, 0), cb: Math.min(r.bottom, innerHeight) }}; }}""", info["ext"])
            pad = 12
            left, right = max(box["left"] - pad, box["cl"] + 2), min(box["right"] + pad, box["cr"] - 2)
            top, bottom = max(box["top"] - pad, box["ct"] + 2), min(box["bottom"] + pad, box["cb"] - 2)
            assert right - left > 10 and bottom - top > 10, box
            # the whole cluster (not just the box) is on the screen, so the drag can cover it
            assert box["cl"] < box["left"] < box["right"] < box["cr"], box
            assert box["ct"] < box["top"] < box["bottom"] < box["cb"], box
            # the user's way: the toolbar's lasso button (the map starts with the box lasso), then drag
            out.locator("button[title='Activate lasso selection']").click()
            page.wait_for_timeout(200)
            _drag_box(page, left, top, right, bottom)
            # the selection travels browser -> kernel asynchronously: poll the kernel for it
            deadline, got = time.monotonic() + 45, None
            while time.monotonic() < deadline:
                got = _kernel_json(page, """
import json
_s = cmap.selection()
print(json.dumps({"n": len(_s), "labels": sorted(map(str, _s["label"].unique())),
                  "cols": list(_s.columns), "idx": int(len(cmap.selected_indices()))}))""")
                if got["n"]:
                    break
                page.wait_for_timeout(500)
            assert got is not None and got["n"] == info["n"], (got, info)
            assert got["labels"] == ["c"] and got["idx"] == info["n"]
            assert got["cols"] == ["doc", "text", "position", "token", "point", "label", "x", "y"]
            screenshot(out, "corpus_map.png")
        finally:
            page.context.close()
    # keep an eye on the cost on a slow machine (Lab start, kernel, 20k-point PCA, drawing)
    assert time.monotonic() - t0 < 300
