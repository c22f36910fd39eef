"""CorpusMap in the browser: first paint, pan/zoom frame times and selection → DataFrame, at 10^5 and 10^6 points.

What is measured, in a real JupyterLab 4 driven by Playwright in headless Debian Chromium
(software WebGL: SwiftShader), one fresh JupyterLab and page per size:

  * **first paint**: from the moment the page asks JupyterLab to run the map's cell to the first
    animation frame at which the map's visible canvas shows drawn points. The signal: once the
    regl-scatterplot instance exists (``container.api``) and has points (``getScreenPosition(0)``
    stops throwing), every animation frame reads the visible 2-D canvas back (``getImageData``;
    jupyter-scatter's shared WebGL renderer copies each frame into it) and stops at the first
    frame with > 200 sampled non-white pixels. It spans the kernel building the widget, sending
    the points buffer, the browser decoding it, uploading it to the GPU and drawing; resolution
    one frame. The kernel's own share is reported too (``map.timings["total"]``).
  * **pan / zoom frame time**: for 3 s (and at least 15 frames) of zoom (wheel events, in and out)
    and as long of pan (a drag in circles), one synthetic event dispatched on the canvas per
    animation frame, in the page;
    the time between consecutive ``requestAnimationFrame`` callbacks is the frame time the user
    sees (drawing happens in the same frame loop and blocks it; ≥ 16.7 ms at 60 Hz). Median and
    p90; the number of frames regl-scatterplot actually drew is checked to be > 0.
  The setup cell (the data, ``import jscatter``) runs before and is not timed.
  * **selection → DataFrame**: the toolbar's lasso button (the map's default lasso is a box),
    then a box dragged with the mouse over the middle of the map; from the ``mouseup`` event (its
    time stamp, in the page) to the end of ``map.selection()`` inside the map's ``on_select``
    callback in the kernel (wall clocks of the same machine). The "Python" column is the kernel's
    own part: turning the received index buffer into row positions plus building the DataFrame.

The data isolate the browser's cost: precomputed ``x``/``y`` (a mixture of 12 Gaussian clusters)
and a few metadata columns (``doc`` int64, ``position`` int32, ``token`` and ``point`` strings,
``label``: the cluster) — no vectors and no projection (placing 10^6 vectors is the projection
benchmark's business, ``benchmarks/capture.py``). Coloured by ``label``; hover shows token and point.

Usage:  .venv/bin/python benchmarks/corpus_map.py [--sizes 100000 1000000] [--out benchmarks/results/corpus_map.md]
Prints a markdown table and writes it, with the date, the command, the machine and the Chromium
version, atomically to ``--out``. ``measure(sizes) -> list[dict]`` does the measuring for other scripts.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))
sys.path.insert(0, str(REPO))

SETUP_CELL = """import json, time
import numpy as np, pandas as pd
import jscatter  # imported here: its ~1.5 s import is paid once per session, not per map
from widgets import CorpusMap
N = {n}
rng = np.random.default_rng(0)
k = rng.integers(0, 12, N)
centres = rng.normal(0, 10, (12, 2))
xy = (centres[k] + rng.normal(0, 1.5, (N, 2))).astype(np.float32)
vocab = np.array([f"tok{{i}}" for i in range(5000)])
df = pd.DataFrame({{"x": xy[:, 0], "y": xy[:, 1], "doc": (np.arange(N) // 200).astype(np.int64),
                   "position": (np.arange(N) % 200).astype(np.int32), "token": vocab[rng.integers(0, 5000, N)],
                   "point": np.full(N, "layer.20"), "label": np.array([f"c{{i}}" for i in range(12)])[k]}})
records = []
def _record(m):
    t0 = time.perf_counter()
    s = m.selection()
    t1 = time.perf_counter()
    records.append({{"done_ms": time.time() * 1000, "frame_ms": (t1 - t0) * 1000,
                    "sync_ms": m.timings.get("selection_sync", 0) * 1000, "rows": len(s)}})"""

MAP_CELL = """m = CorpusMap(df, color="label", hover=("token", "point"), height=560)
m.on_select(_record)
m"""

#: at least this many frame intervals per measurement (1,000,000 points draw at < 1 frame/s in software WebGL)
MIN_FRAMES = 15
FIND_API = "() => [...document.querySelectorAll('.jp-OutputArea-output div')].find(d => d.api)"

# installs the first-paint probe, then runs the map's cell (the active one): returns at once
RUN_AND_PROBE = """(cellIndex) => {
  window.__fp = null;
  const find = %s;
  const t0 = performance.now();
  const poll = () => {
    const c = find();
    if (c) {
      let drawn = false;
      try { drawn = !!c.api.getScreenPosition(0); } catch (e) { drawn = false; }
      if (drawn) {
        const cv = c.querySelector('canvas');
        const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let k = 0;
        for (let i = 0; i < d.length; i += 64) if (d[i + 3] > 0 && (d[i] < 245 || d[i + 1] < 245 || d[i + 2] < 245)) k++;
        if (k > 200) { window.__fp = { ms: performance.now() - t0, pixels: k }; return; }
      }
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = cellIndex;
  window.jupyterapp.commands.execute('notebook:run-cell');
  return true;
}""" % FIND_API

# one synthetic event per animation frame for `ms`: wheel zoom ("zoom") or a circular drag ("pan")
INTERACT = """async ([mode, ms, minFrames, maxMs]) => {
  const c = (%s)();
  const cv = c.querySelector('canvas');
  const r = cv.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  let draws = 0;
  const sub = c.api.subscribe('draw', () => { draws++; });
  const view0 = Array.from(c.api.get('cameraView'));
  const times = [];
  await new Promise((resolve) => {
    const start = performance.now();
    let last = null, i = 0, down = false;
    const frame = () => {
      const now = performance.now();
      if (last !== null) times.push(now - last);
      last = now;
      if (mode === 'idle') {
      } else if (mode === 'zoom') {
        const dir = Math.floor(i / 15) %% 2 ? 1 : -1;
        cv.dispatchEvent(new WheelEvent('wheel', { deltaY: dir * 40, clientX: cx + 30, clientY: cy - 20,
                                                   bubbles: true, cancelable: true }));
      } else {
        const a = i * 0.15, x = cx + 90 * Math.cos(a), y = cy + 90 * Math.sin(a);
        if (!down) {
          cv.dispatchEvent(new MouseEvent('mousedown', { clientX: x, clientY: y, button: 0, buttons: 1, bubbles: true }));
          down = true;
        }
        window.dispatchEvent(new MouseEvent('mousemove', { clientX: x, clientY: y, button: 0, buttons: 1, bubbles: true }));
      }
      i++;
      if ((now - start < ms || times.length < minFrames) && now - start < maxMs) { requestAnimationFrame(frame); return; }
      if (down) window.dispatchEvent(new MouseEvent('mouseup', { clientX: cx, clientY: cy, button: 0, buttons: 0, bubbles: true }));
      resolve();
    };
    requestAnimationFrame(frame);
  });
  c.api.unsubscribe(sub);
  const view1 = Array.from(c.api.get('cameraView'));
  return { times, draws, moved: view0.some((v, j) => Math.abs(v - view1[j]) > 1e-9) };
}""" % FIND_API


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, float), q)) if xs else float("nan")


def _open(page: Any, lab: Any, notebook: str) -> None:
    """Open a notebook and wait for a connected, idle kernel (labdriver.open_and_run, less the Run All)."""
    page.goto(lab.url(f"lab/tree/{notebook}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return !!k && w.sessionContext.isReady && k.connectionStatus === 'connected' && k.status === 'idle'; }""",
                           timeout=90_000, polling=200)
    page.click(".jp-Notebook .jp-Cell >> nth=0")


def _run_cell(page: Any, index: int, timeout_s: float) -> None:
    page.evaluate("""(i) => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = i;
                              window.jupyterapp.commands.execute('notebook:run-cell'); return true; }""", index)
    _wait_idle(page, index, timeout_s)


def _wait_idle(page: Any, index: int, timeout_s: float) -> None:
    page.wait_for_function("""(i) => { const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
        const p = cell && cell.querySelector('.jp-InputArea-prompt');
        const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        return p && /\\[\\d+\\]/.test(p.textContent) && k.status === 'idle'; }""", arg=index,
                           timeout=timeout_s * 1000, polling=250)
    errors = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText)
                              .filter(t => /Traceback|Error:/.test(t))""")
    if errors:
        raise RuntimeError("the benchmark notebook raised:\n" + "\n---\n".join(e[-2000:] for e in errors))


def _measure_one(b: Any, n: int) -> dict[str, Any]:
    import nbformat as nbf
    from labdriver import jupyter_lab, kernel_eval, new_page, screenshot

    nb = nbf.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nb.cells = [nbf.v4.new_code_cell(SETUP_CELL.format(n=n)), nbf.v4.new_code_cell(MAP_CELL)]
    src = Path(tempfile.mkdtemp()) / "bench_corpus_map.ipynb"
    nbf.write(nb, src)
    row: dict[str, Any] = {"n": n}
    with jupyter_lab() as lab:
        lab.copy_notebook(src.name, src)
        page = new_page(b, (1400, 1000))
        page.set_default_timeout(300_000)
        try:
            _open(page, lab, src.name)
            _run_cell(page, 0, 300)                                    # the data: not timed
            # -- first paint ----------------------------------------------------------------------
            page.evaluate(RUN_AND_PROBE, 1)
            page.wait_for_function("() => window.__fp !== null", timeout=600_000, polling=100)
            fp = page.evaluate("() => window.__fp")
            _wait_idle(page, 1, 300)
            row["first_paint_ms"] = fp["ms"]
            kern = kernel_eval(page, "print(json.dumps(m.timings))", 60_000)
            row["python_build_ms"] = __import__("json").loads(kern.strip().splitlines()[-1])["total"] * 1000
            row["points_buffer_mb"] = n * 4 * 4 / 2**20                # x, y, colour, (unused) as float32
            page.evaluate(f"() => ({FIND_API})().querySelector('canvas').scrollIntoView({{block: 'center'}})")
            page.wait_for_timeout(1500)                                # let the first frames settle
            screenshot(page.locator(".jp-OutputArea-output").filter(has=page.locator("canvas")).first,
                       f"corpus_map_{n}.png")
            # -- pan / zoom -----------------------------------------------------------------------
            for mode in ("idle", "zoom", "pan"):
                res = page.evaluate(INTERACT, [mode, 1500 if mode == "idle" else 3000, MIN_FRAMES + 1, 60_000])
                t = res["times"][1:]                                   # the first interval includes set-up
                row[f"{mode}_frames"] = len(t)
                row[f"{mode}_median_ms"], row[f"{mode}_p90_ms"] = _pct(t, 50), _pct(t, 90)
                row[f"{mode}_draws"] = res["draws"]
                if mode != "idle" and not (res["moved"] and res["draws"] > 0):
                    raise RuntimeError(f"{mode}: the view did not change ({res}); the events were not handled")
            page.evaluate(f"() => {{ const c = ({FIND_API})(); c.api.reset(); }}")
            page.wait_for_timeout(1500)
            # -- selection → DataFrame ------------------------------------------------------------
            out = page.locator(".jp-OutputArea-output").filter(has=page.locator("canvas")).first
            out.locator("button[title='Activate lasso selection']").click()
            box = page.evaluate(f"() => {{ const r = ({FIND_API})().querySelector('canvas').getBoundingClientRect();"
                                " return [r.left, r.top, r.width, r.height]; }")
            page.evaluate("""() => { window.__up = []; window.addEventListener('mouseup',
                (e) => window.__up.push(performance.timeOrigin + e.timeStamp), true); }""")
            lat, py, rows, split = [], [], [], []
            for rep in range(3):
                x0, y0 = box[0] + box[2] * (0.35 + 0.02 * rep), box[1] + box[3] * 0.3
                x1, y1 = box[0] + box[2] * 0.65, box[1] + box[3] * (0.7 - 0.02 * rep)
                page.mouse.move(x0, y0)
                page.mouse.down()
                for k in range(1, 13):
                    page.mouse.move(x0 + (x1 - x0) * k / 12, y0 + (y1 - y0) * k / 12)
                    page.wait_for_timeout(30)
                page.mouse.up()
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    recs = __import__("json").loads(kernel_eval(page, "print(json.dumps(records))", 60_000)
                                                    .strip().splitlines()[-1])
                    if len(recs) > rep:
                        break
                    page.wait_for_timeout(200)
                else:
                    raise RuntimeError("the selection never reached the kernel")
                up = page.evaluate("() => window.__up")[-1]
                lat.append(recs[rep]["done_ms"] - up)
                py.append(recs[rep]["sync_ms"] + recs[rep]["frame_ms"])
                split.append((recs[rep]["sync_ms"], recs[rep]["frame_ms"]))
                rows.append(recs[rep]["rows"])
                page.wait_for_timeout(500)
            row["selection_ms"] = float(np.median(lat))
            row["selection_all_ms"] = lat
            row["selection_python_ms"] = float(np.median(py))
            row["selection_python_split_ms"] = split
            row["selected_rows"] = int(np.median(rows))
        finally:
            page.context.close()
    return row


def measure(sizes: list[int] | tuple[int, ...] = (100_000, 1_000_000)) -> list[dict[str, Any]]:
    """One dict per size: first paint, Python build, frame times (idle / zoom / pan), selection latency."""
    from labdriver import chromium

    out = []
    with chromium() as b:
        version = b.version
        for n in sizes:
            row = _measure_one(b, int(n))
            row["chromium"] = version
            out.append(row)
            print(_fmt_row(row), flush=True)
    return out


def _fmt_row(r: dict[str, Any]) -> str:
    return (f"| {r['n']:,} | {r['first_paint_ms'] / 1000:.1f} s | {r['python_build_ms'] / 1000:.2f} s "
            f"| {r['points_buffer_mb']:.1f} MB | {r['idle_median_ms']:.0f} ms "
            f"| {r['zoom_median_ms']:.0f} / {r['zoom_p90_ms']:.0f} ms ({r['zoom_draws']} drawn) "
            f"| {r['pan_median_ms']:.0f} / {r['pan_p90_ms']:.0f} ms ({r['pan_draws']} drawn) "
            f"| {r['selection_ms']:.0f} ms | {r['selection_python_ms']:.1f} ms | {r['selected_rows']:,} |")


HEAD = ("| points | first paint | of which Python builds the widget | points buffer | idle frame (median) "
        "| zoom frame median / p90 | pan frame median / p90 | box mouse-up → `selection()` in the kernel (median of 3) "
        "| of which Python | rows selected |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "corpus_map.md")
    args = ap.parse_args()
    from explorer.io import atomic_write_text

    rows = measure(args.sizes)
    table = HEAD + "\n" + "\n".join(_fmt_row(r) for r in rows)
    try:
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem = "RAM unknown"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/corpus_map.py", *sys.argv[1:]])
    doc = (f"# CorpusMap in the browser (benchmarks/corpus_map.py)\n\n"
           f"Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}. Command: `{cmd}`.\n\n"
           f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {mem}, Python {platform.python_version()}, "
           f"{platform.system()} {platform.release()}; browser: headless Debian Chromium {rows[0]['chromium']} "
           f"(no GPU: WebGL on SwiftShader, the CPU), viewport 1400 × 1000, map 560 px high; JupyterLab 4, "
           f"jupyter-scatter {_version('jupyter-scatter')}. Load average after the run: {load} "
           "(other processes shared the CPU cores).\n\n"
           "Input: precomputed x/y plus doc, position, token, point and label columns (no vectors, no "
           "projection: this isolates the browser's cost). Definitions of each column are in the script's "
           "docstring; frame times are the intervals between animation frames while one synthetic wheel or "
           "drag event is dispatched per frame (60 Hz floor: 16.7 ms). SwiftShader draws on the CPU, so a "
           "frame's cost grows with the number of points drawn; no GPU browser was available here, so there "
           "are no hardware-WebGL numbers.\n\n" + table + "\n\n"
           "Selection latencies, each run (ms): " + "; ".join(
               f"{r['n']:,}: " + ", ".join(f"{x:.0f}" for x in r["selection_all_ms"]) for r in rows) + ". "
           "Python's part, each run (index buffer → row positions + `selection()` building the DataFrame, ms): "
           + "; ".join(f"{r['n']:,}: " + ", ".join(f"{a:.1f} + {b:.1f}" for a, b in r["selection_python_split_ms"])
                       for r in rows) + ".\n")
    atomic_write_text(args.out, doc)
    print(doc)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
