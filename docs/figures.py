"""Renders the figures of docs/recurrent.md and docs/thoughts.md from the shipped models into docs/images/.

    python docs/figures.py [--only recurrent|frontier|iterations] [--out docs/images] [--problems 100]
                           [--coconut MODEL] [--recurrent MODEL] [--limit N]

``frontier``: what each continuous thought of ``prosqa-coconut`` (or ``--coconut``) holds on the whole real validation
set (``frontier_table``: per hop count and thought, each node group's next-token probability and
inner product), drawn as ``frontier_prob.png`` and ``frontier_inner.png``; the table is printed as
markdown for docs/thoughts.md. ``iterations``: the same for each core iteration of the graph-token
recurrent model ``prosqa-recurrent-graph`` (or ``--recurrent``; ``graph_table``), whose iteration r's
frontier is the nodes exactly r hops from the root: ``iteration_prob.png``, ``iteration_inner.png``, and
the iterations its ``peak-rise`` exit spends per hop count with the accuracy there, ``iteration_exit.png``.
A set whose model is not shipped is skipped (and refused with ``--only``).

The figures are the package's own plotly figures (``explorer.plots``; the trajectory through
``explorer.recurrent.figure``), drawn by headless Chromium (``/usr/bin/chromium``, as in the browser
tests) from plotly's bundled JavaScript: no network. The accuracy and hops figures read the numbers
the recipe published with the model and with its same-size baseline without recurrence
(``prosqa-recurrent-nocot``; their ``provenance.json``), so the pictures match the docs' tables; the
hop-curves figure evaluates both on ``fixed_hop_sets()``, as the docs' commands do.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def render(figures: dict[str, object], out: Path) -> list[Path]:
    """Each plotly figure as ``out/<name>.png`` (written through a temporary file, then renamed)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800}, device_scale_factor=2)
            for name, fig in figures.items():
                page.set_content(fig.to_html(include_plotlyjs=True, full_html=True, config={"staticPlot": True}))
                el = page.locator(".plotly-graph-div").first
                page.wait_for_selector(".main-svg", timeout=30_000)
                tmp = out / f".{name}.png.tmp"
                el.screenshot(path=str(tmp), type="png")
                tmp.replace(out / f"{name}.png")
                written.append(out / f"{name}.png")
        finally:
            browser.close()
    return written


def recurrent_figures(n_problems: int) -> dict[str, object]:
    import explorer
    from explorer.models.registry import SHIPPED_DIR
    from explorer.recurrent import figure
    from explorer.plots import accuracy_figure, distance_figure, hop_curves_figure, hops_figure
    from explorer.recurrent.evaluate import distance_mass, evaluate_iterations
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.tasks.prosqa.generate import fixed_hop_sets
    from explorer.tasks.prosqa.compact import compact_prompt

    model = explorer.load_model("prosqa-recurrent")
    published = {name: json.loads((SHIPPED_DIR / name / "provenance.json").read_text())["results"]
                 for name in ("prosqa-recurrent", "prosqa-recurrent-nocot")}
    real = published["prosqa-recurrent"]["real validation set"]
    nocot = published["prosqa-recurrent-nocot"]["real validation set"]["accuracy"]["1"]
    problems = load(VALIDATION)
    baseline = explorer.load_model("prosqa-recurrent-nocot")
    sets = fixed_hop_sets(n_problems)
    by_hops = {h: evaluate_iterations(model, data, (1, 2, 4, 16), exit="kl") for h, data in sets.items()}
    once = {h: evaluate_iterations(baseline, data, (1,), exit=None)["accuracy"][1] for h, data in sets.items()}
    return {
        "recurrent_accuracy": accuracy_figure(real, baselines={"same-size no-CoT": nocot},
                                              title="prosqa-recurrent: real ProsQA accuracy vs core iterations"),
        "recurrent_hops": hops_figure(real, title="prosqa-recurrent, adaptive exit: iterations per hop count"),
        "recurrent_hop_curves": hop_curves_figure(by_hops, baselines=once,
                                                  title="prosqa-recurrent on small graphs: does hop h need h iterations?"),
        "recurrent_distance": distance_figure(distance_mass(model, problems[:n_problems], 16),
                                              title="prosqa-recurrent: where the answer sits, per core iteration"),
        "recurrent_pca": figure(model.iterate(compact_prompt(problems[0]), max_iters=32, exit="none")),
    }


def print_table(table: dict) -> None:
    """A frontier table (``frontier_table``, ``graph_table``) as markdown, for the docs."""
    step, start = table["step"], table["start"]
    width = max(len(v) for row in table["by_hops"].values() for v in row["prob"].values())
    print("| hops | n | reading | group | " + " | ".join(f"{step}.{k + start}" for k in range(width)) + " |")
    print("|---|---:|---|---|" + "---:|" * width)
    for h, row in table["by_hops"].items():
        for reading in ("prob", "inner"):
            for g in table["groups"]:
                cells = [f"{v:.2f}" if v is not None else "" for v in row[reading][g]]
                print(f"| {h} | {row['n']} | {reading} | {g} | " + " | ".join(cells) + " |")
        cells = [f"{v:.2f}" if v is not None else "" for v in row["right_option"]]
        print(f"| {h} | {row['n']} | right option likelier | (answers right: {row['answer']:.2f}) | "
              + " | ".join(cells) + " |")


def frontier_figures(model_name: str, limit: int | None) -> dict[str, object]:
    import explorer
    from explorer.plots import frontier_figure
    from explorer.tasks.prosqa import VALIDATION, load
    from explorer.thoughts.frontier import frontier_table

    table = frontier_table(explorer.load_model(model_name), load(VALIDATION), limit=limit)
    print_table(table)
    return {f"frontier_{r}": frontier_figure(table, r) for r in ("prob", "inner")}


def iteration_figures(model_name: str, limit: int | None) -> dict[str, object]:
    import explorer
    from explorer.graph_runs import graph_table
    from explorer.plots import frontier_figure, hops_figure
    from explorer.recurrent.evaluate import evaluate_iterations
    from explorer.tasks.prosqa import VALIDATION, load

    model, problems = explorer.load_model(model_name), load(VALIDATION)
    table = graph_table(model, problems, steps=16, limit=limit, progress=True)
    print_table(table)
    exits = evaluate_iterations(model, problems, (16,), exit="peak-rise", readout="peak", limit=limit)
    return {**{f"iteration_{r}": frontier_figure(table, r) for r in ("prob", "inner")},
            "iteration_exit": hops_figure(exits, title=f"{model_name}: iterations per hop count")}


#: each set of figures: the model it is drawn from, and how
FIGURES = {"recurrent": (lambda args: "prosqa-recurrent", lambda args: recurrent_figures(args.problems)),
           "frontier": (lambda args: args.coconut, lambda args: frontier_figures(args.coconut, args.limit)),
           "iterations": (lambda args: args.recurrent, lambda args: iteration_figures(args.recurrent, args.limit))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "images"))
    ap.add_argument("--problems", type=int, default=100, help="real problems for the distance figure, and problems per hop count")
    ap.add_argument("--only", choices=sorted(FIGURES), help="one set of figures (default: all)")
    ap.add_argument("--coconut", default="prosqa-coconut", help="the Coconut model of the frontier figures (a name or "
                                                               "a checkpoint folder)")
    ap.add_argument("--recurrent", default="prosqa-recurrent-graph", help="the graph-token recurrent model of the "
                                                                          "iteration figures (a name or a checkpoint folder)")
    ap.add_argument("--limit", type=int, default=None, help="the first LIMIT real problems for the frontier and "
                                                           "iteration tables (default: all 300)")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"docs/figures.py: needs {CHROMIUM} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    from explorer.models.registry import lookup

    for name in [args.only] if args.only else sorted(FIGURES):
        model, draw = FIGURES[name][0](args), FIGURES[name][1]
        if lookup(model) is None and not Path(model).is_dir():   # by default, every set whose model exists
            print(f"docs/figures.py: {name} figures skipped: {model} is not shipped yet", file=sys.stderr)
            if args.only:
                return 2
            continue
        for path in render(draw(args), Path(args.out)):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
