"""UI latency and projection timings.

Claims checked:
  * a ThoughtStepper key press moves the point in <= 50 ms (median and p95), in the browser;
  * a key press on a ThoughtStepper linked to a GraphView (a 30-node ProsQA graph) recolours the
    graph in <= 20 ms (median), in the browser (issue 18);
  * PatchView: a key press on the threshold slider moves the patch boundaries of a 2,000-byte text
    (in the browser, no target: measured, issue 19);
    for contrast, an ipywidgets IntSlider observed in Python that moves a point in a plotly
    FigureWidget (a kernel round trip per step);
  * UMAP ``transform`` of 10 new points on a fitted map of 20,000 takes <= 100 ms;
  * the first UMAP fit of 20,000 points (in a fresh process: includes numba compilation).

Usage:  .venv/bin/python benchmarks/ui.py [--presses 40] [--n 20000] [--dim 64] [--skip-browser] [--skip-umap]
Writes benchmarks/results/ui.md and prints the table.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))
sys.path.insert(0, str(REPO))

BENCH_NOTEBOOK_CELLS = [
    """import numpy as np, ipywidgets as W, plotly.graph_objects as go
from widgets import ThoughtStepper
from widgets.demo import demo_trajectory
tr = demo_trajectory(n=64, d=64, seed=0)
bg = np.random.default_rng(1).normal(0, 6, (20000, 64)).astype(np.float32)
stepper = ThoughtStepper(tr, background=bg)
stepper""",
    """xy = stepper.coords()
fig = go.FigureWidget(data=[go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines", line=dict(color="#bbb")),
                            go.Scatter(x=xy[:1, 0], y=xy[:1, 1], mode="markers", marker=dict(size=12, color="#e4572e"))],
                      layout=dict(height=300, width=420, margin=dict(l=10, r=10, t=10, b=10), showlegend=False))
slider = W.IntSlider(0, 0, len(tr) - 1, description="step")
slider.observe(lambda ch: fig.data[1].update(x=xy[ch.new:ch.new + 1, 0], y=xy[ch.new:ch.new + 1, 1]), "value")
W.VBox([slider, fig])""",
    """from widgets import GraphView, link_steps
from widgets.demo import demo_graph_run
from explorer.tasks.prosqa import GeneratorConfig, generate
problem = generate(1, seed=11, cfg=GeneratorConfig(min_nodes=30, max_nodes=30))[0]
grun = demo_graph_run(problem, "coconut", steps=64)
gstepper = ThoughtStepper(grun.trajectory)
gview = GraphView(grun)
glinks = link_steps(gstepper, gview)
W.VBox([gstepper, gview])""",
    """from explorer.model import Model
from explorer.models.build import build_base_model
from explorer.patches.tokenizer import build_byte_tokenizer
from widgets import PatchView
btok = build_byte_tokenizer()
bm = Model(build_base_model(btok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=1, arch="llama"), btok, name="tiny")
ptext = ("The quick brown fox jumps over the lazy dog; Daenerys Targaryen rides north. " * 26)[:2000]
pv = PatchView(bm, ptext, tokenizer=None)
pv""",
]

INSTALL_STEPPER_PROBE = """() => {
  window.__lat = [];
  const r = document.querySelector('.le-stepper'), pt = r.querySelector('.le-point');
  let t0 = null;
  r.addEventListener('keydown', (e) => { t0 = e.timeStamp; }, true);
  new MutationObserver(() => {
    if (t0 === null) return;
    const s = t0; t0 = null;
    requestAnimationFrame(() => window.__lat.push(performance.now() - s));
  }).observe(pt, { attributes: true });
}"""

INSTALL_SLIDER_PROBE = """() => {
  window.__rt = [];
  const box = document.querySelector('.widget-slider').closest('.jp-OutputArea-output');
  const plot = box.querySelector('.js-plotly-plot');
  let t0 = null;
  box.addEventListener('keydown', (e) => { t0 = e.timeStamp; }, true);
  new MutationObserver((muts) => {
    if (t0 === null) return;
    if (!muts.some((m) => m.target.classList && m.target.classList.contains('point'))) return;
    const s = t0; t0 = null;
    requestAnimationFrame(() => window.__rt.push(performance.now() - s));
  }).observe(plot, { attributes: true, subtree: true, childList: true });
}"""


INSTALL_GRAPH_PROBE = """() => {
  window.__gl = [];
  const steppers = document.querySelectorAll('.le-stepper');
  const r = steppers[steppers.length - 1], g = document.querySelector('.le-graph');
  let t0 = null;
  r.addEventListener('keydown', (e) => { t0 = e.timeStamp; }, true);
  new MutationObserver(() => {
    if (t0 === null) return;
    const s = t0; t0 = null;
    requestAnimationFrame(() => window.__gl.push(performance.now() - s));
  }).observe(g.querySelector('circle.le-node'), { attributes: true, attributeFilter: ['fill'] });
}"""


INSTALL_PATCH_PROBE = """() => {
  window.__pl = [];
  const r = document.querySelector('.le-patches'), s = r.querySelector('.le-threshold');
  let t0 = null;
  s.addEventListener('keydown', (e) => { t0 = e.timeStamp; }, true);
  new MutationObserver(() => {
    if (t0 === null) return;
    const t = t0; t0 = null;
    requestAnimationFrame(() => window.__pl.push(performance.now() - t));
  }).observe(r.querySelector('.le-patch-stats'), { childList: true, characterData: true, subtree: true });
}"""


def _stats(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(np.median(a)), float(np.percentile(a, 95))


def _press(page, install: str, target, var: str, presses: int, timeout_ms: int) -> list[float]:
    """Install a latency probe, focus ``target``, press → ``presses`` times, each waited for; the times."""
    page.evaluate(install)
    target.scroll_into_view_if_needed()
    target.focus()
    for i in range(presses):
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => window.{var}.length >= {i + 1}", timeout=timeout_ms)
    return page.evaluate(f"() => window.{var}")


def browser_bench(presses: int) -> dict[str, tuple[float, float]]:
    import nbformat as nbf
    from labdriver import browser, jupyter_lab, open_and_run

    nb = nbf.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nb.cells = [nbf.v4.new_code_cell(c) for c in BENCH_NOTEBOOK_CELLS]
    src = Path(tempfile.mkdtemp()) / "bench_ui.ipynb"
    nbf.write(nb, src)
    with jupyter_lab() as lab, browser() as page:
        lab.copy_notebook("bench_ui.ipynb", src)
        open_and_run(page, lab, "bench_ui.ipynb")
        page.wait_for_selector(".le-stepper .le-point")
        page.wait_for_selector(".widget-slider .noUi-handle")
        page.wait_for_selector(".js-plotly-plot .scatterlayer .point")
        # in-browser stepper
        stepper = _press(page, INSTALL_STEPPER_PROBE, page.locator(".le-stepper").first, "__lat", presses, 10_000)
        # kernel round trip: IntSlider -> Python observer -> FigureWidget restyle -> browser
        roundtrip = _press(page, INSTALL_SLIDER_PROBE, page.locator(".widget-slider .noUi-handle").first, "__rt",
                           presses, 20_000)
        # a stepper linked to a GraphView of a 30-node graph: key press → the graph recoloured
        page.wait_for_selector(".le-graph circle.le-node")
        graph = _press(page, INSTALL_GRAPH_PROBE, page.locator(".le-stepper").last, "__gl", presses, 10_000)
        # PatchView: a key press on the threshold slider → boundaries and statistics redrawn
        page.wait_for_selector(".le-patches .le-byte")
        th = page.locator(".le-patches .le-threshold")
        th.evaluate("(s) => { s.value = s.min; s.dispatchEvent(new Event('input')); }")
        patch = _press(page, INSTALL_PATCH_PROBE, th, "__pl", presses, 10_000)
    return {"stepper": _stats(stepper), "roundtrip": _stats(roundtrip), "graph": _stats(graph), "patch": _stats(patch)}


UMAP_SCRIPT = textwrap.dedent("""
    import json, sys, tempfile, time
    import numpy as np
    from explorer.projection import fit_projection
    n, d = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (20, d))
    x = (centres[rng.integers(0, 20, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)
    t = time.perf_counter()
    p = fit_projection(x, "umap", cache=False)
    fit = time.perf_counter() - t
    new = (x[rng.integers(0, n, 10)] + rng.normal(0, 0.5, (10, d))).astype(np.float32)
    t = time.perf_counter(); p.place(new); first = time.perf_counter() - t
    times = []
    for i in range(20):
        new = (x[rng.integers(0, n, 10)] + rng.normal(0, 0.5, (10, d))).astype(np.float32)
        t = time.perf_counter(); p.place(new); times.append(time.perf_counter() - t)
    cdir = tempfile.mkdtemp()
    fit_projection(x, "umap", cache_dir=cdir)  # warm process, written to the cache
    t = time.perf_counter(); q = fit_projection(x, "umap", cache_dir=cdir); reload = time.perf_counter() - t
    print(json.dumps({"fit": fit, "first_transform": first, "transform": times, "reload": reload}))
""")


def umap_bench(n: int, d: int) -> dict[str, float | list[float]]:
    out = subprocess.run([sys.executable, "-c", UMAP_SCRIPT, str(n), str(d)], cwd=REPO, capture_output=True,
                         text=True, check=True, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presses", type=int, default=40)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--skip-umap", action="store_true")
    args = ap.parse_args()
    rows = []
    if not args.skip_browser:
        b = browser_bench(args.presses)
        med, p95 = b["stepper"]
        rows.append(("ThoughtStepper: key press → point moved (in browser)", f"{med:.1f} ms", f"{p95:.1f} ms",
                     "≤ 50 ms", "✅" if p95 <= 50 else "❌"))
        med, p95 = b["graph"]
        rows.append(("ThoughtStepper linked to a GraphView (30 nodes): key press → graph recoloured (in browser)",
                     f"{med:.1f} ms", f"{p95:.1f} ms", "median ≤ 20 ms", "✅" if med <= 20 else "❌"))
        med, p95 = b["patch"]
        rows.append(("PatchView (2,000 bytes): slider key press → patch boundaries moved (in browser)",
                     f"{med:.1f} ms", f"{p95:.1f} ms", "—", ""))
        med, p95 = b["roundtrip"]
        rows.append(("contrast: IntSlider → Python → FigureWidget point (kernel round trip)", f"{med:.1f} ms",
                     f"{p95:.1f} ms", "—", ""))
    if not args.skip_umap:
        u = umap_bench(args.n, args.dim)
        med, p95 = _stats([t * 1000 for t in u["transform"]])
        rows.append((f"UMAP transform, 10 new points on a map of {args.n:,}", f"{med:.1f} ms", f"{p95:.1f} ms",
                     "≤ 100 ms", "✅" if p95 <= 100 else "❌"))
        rows.append(("UMAP transform, first call (compiles)", f"{u['first_transform'] * 1000:.0f} ms", "", "", ""))
        rows.append((f"UMAP first fit, {args.n:,} × {args.dim} (fresh process, incl. numba compile)",
                     f"{u['fit']:.1f} s", "", "", ""))
        rows.append((f"UMAP map reloaded from the cache ({args.n:,} points, neighbour graph rebuilt)",
                     f"{u['reload']:.1f} s", "", "", ""))
    out = REPO / "benchmarks" / "results" / "ui.md"
    if args.skip_umap and out.is_file():   # keep the last measured UMAP rows
        rows += [tuple(c.strip() for c in line.strip().strip("|").split("|"))
                 for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| UMAP")]
    head = ("| measurement | median | p95 | target | |\n|---|---:|---:|---|---|\n")
    table = head + "\n".join(f"| {' | '.join(r)} |" for r in rows)
    env = (f"\n\nMachine: {platform.machine()}, {__import__('os').cpu_count()} CPU cores, Python {platform.python_version()}; "
           f"browser: headless Debian Chromium (SwiftShader WebGL); {args.presses} key presses each."
           + (" UMAP rows: kept from the previous full run." if args.skip_umap else "") + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# UI benchmark (benchmarks/ui.py)\n\n" + table + env, encoding="utf-8")
    print(table + env)


if __name__ == "__main__":
    main()
