"""The tour notebook, as a first-time user meets it: JupyterLab, Run All, pictures appear."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from labdriver import REPO, jupyter_lab, new_page, open_and_run, screenshot  # noqa: E402

pytestmark = pytest.mark.browser


def test_tour_runs_in_jupyterlab_and_draws(chromium_browser):
    with jupyter_lab() as lab:
        name = lab.copy_notebook("00_tour.ipynb", REPO / "notebooks" / "00_tour.ipynb")
        page = new_page(chromium_browser, viewport=(1400, 1100))
        try:
            open_and_run(page, lab, name, timeout_s=300)
            # the logit-lens picture: a plotly heatmap drawn by JupyterLab's plotly renderer
            cell = page.locator(".jp-CodeCell", has_text="lens.figure()")
            cell.scroll_into_view_if_needed()
            fig = cell.locator(".js-plotly-plot")
            fig.locator(".heatmaplayer").wait_for(state="attached", timeout=30_000)
            deadline = time.monotonic() + 30  # plotly writes the labels a moment after the heatmap layer
            while not (" Paris" in (text := fig.inner_text()) and "layer.29" in text) and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            assert " Paris" in text and "layer.29" in text
            screenshot(fig, "tour_lens.png")
            # the widgets came up: lens view, three steppers (layers, thoughts, recurrent iterations), the map
            # (WebGL) and the concept lab
            assert page.locator(".le-lens").count() == 1
            assert page.locator(".le-stepper").count() == 3
            cell = page.locator(".jp-CodeCell", has_text="recurrent.iterate(")
            cell.scroll_into_view_if_needed()
            iters = cell.locator(".le-stepper")
            iters.wait_for(state="visible", timeout=30_000)
            iters.locator(".le-bar-token").first.wait_for(state="visible", timeout=30_000)
            assert "iterations at position" in iters.locator(".le-title").first.text_content()
            assert page.locator(".le-concept-lab").count() == 2
            # the trained Coconut model's thoughts on a real problem's graph: right, the frontier ringed
            assert page.locator(".le-graph").count() == 2
            thinking = page.locator(".jp-CodeCell", has_text="GraphView(thinking)").locator(".le-graph")
            thinking.scroll_into_view_if_needed()
            assert thinking.locator(".le-verdict").text_content().endswith("✓")
            assert thinking.evaluate("g => [...g.querySelectorAll('circle.le-ring')].filter(c => "
                                     "c.getAttribute('stroke') !== 'none').length") > 0
            # the iterations on the problem's graph follow the iterations stepper (linked in the browser)
            graph = page.locator(".jp-CodeCell", has_text="link_steps(iter_stepper, graph)").locator(".le-graph")
            graph.scroll_into_view_if_needed()
            fills = graph.evaluate("g => [...g.querySelectorAll('circle.le-node')].map(c => c.getAttribute('fill'))")
            iters.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => document.querySelectorAll('.le-graph')[1].dataset.index === '2'", timeout=5_000)
            assert graph.evaluate("g => [...g.querySelectorAll('circle.le-node')].map(c => c.getAttribute('fill'))") != fills
            screenshot(page.locator(".jp-CodeCell", has_text="link_steps(iter_stepper, graph)")
                       .locator(".jp-OutputArea-output").first, "tour_graph.png")
            stepper = page.locator(".le-stepper").first
            stepper.scroll_into_view_if_needed()
            before = stepper.locator(".le-bars-output .le-bar-token").all_text_contents()
            stepper.focus()
            page.keyboard.press("End")
            after = stepper.locator(".le-bars-output .le-bar-token").all_text_contents()
            assert before != after and after[0] == "␣Paris"
            screenshot(stepper, "tour_stepper.png")
        finally:
            page.context.close()


def test_concept_notebook_steps_through_the_lcm_chain(chromium_browser):
    """Workshop 04 in JupyterLab: the stepper over the Base-LCM's chain shows its bank of statements."""
    with jupyter_lab() as lab:
        name = lab.copy_notebook("04_concept_space.ipynb", REPO / "notebooks" / "04_concept_space.ipynb")
        page = new_page(chromium_browser, viewport=(1400, 1100))
        try:
            open_and_run(page, lab, name, timeout_s=300)
            cell = page.locator(".jp-CodeCell", has_text='ThoughtStepper(run, scalar="cosine")')
            cell.scroll_into_view_if_needed()
            stepper = cell.locator(".le-stepper")
            stepper.wait_for(state="visible", timeout=30_000)
            assert "bank space (cosine)" in stepper.locator(".le-bars-output").inner_text()
            assert not stepper.locator(".le-bars-input").is_visible()  # no second, empty panel
            first = stepper.locator(".le-bars-output .le-bar-token").all_text_contents()
            assert first and first[0].replace("␣", " ").startswith("Tom is a")  # the chain starts at the person
            stepper.focus()
            page.keyboard.press("End")
            last = stepper.locator(".le-bars-output .le-bar-token").all_text_contents()
            assert last != first and last[0].replace("␣", " ").startswith("Every ")
            assert "…" not in last[0] and stepper.locator(".le-bar-token").first.evaluate(
                "e => e.scrollWidth <= e.clientWidth")  # whole sentences, not cut off
            screenshot(stepper, "concept_stepper.png")
        finally:
            page.context.close()


@pytest.mark.parametrize("notebook, widget, shot", [
    ("01_hidden_states_and_lenses", ".le-lens", "workshop_lens.png"),
    ("02_continuous_thoughts", ".le-stepper", "workshop_thoughts.png"),
    ("03_recurrent_depth", ".le-stepper", "workshop_recurrent.png"),
])
def test_workshop_notebook_draws_its_widget(chromium_browser, notebook, widget, shot):
    """Workshops 01–03 in JupyterLab: Run All, and the first widget of each comes up with the
    model's tokens in it (the README shows these pictures)."""
    with jupyter_lab() as lab:
        name = lab.copy_notebook(f"{notebook}.ipynb", REPO / "notebooks" / f"{notebook}.ipynb")
        page = new_page(chromium_browser, viewport=(1400, 1100))
        try:
            open_and_run(page, lab, name, timeout_s=300)
            el = page.locator(widget).first
            el.scroll_into_view_if_needed()
            el.wait_for(state="visible", timeout=30_000)
            if widget == ".le-lens":
                assert "Paris" in el.inner_text() and "layer.29" in el.inner_text()
            else:
                first = el.locator(".le-bars-output .le-bar-token").all_text_contents()
                el.focus()
                page.keyboard.press("End")
                last = el.locator(".le-bars-output .le-bar-token").all_text_contents()
                assert first and last and first != last  # each thought (or iteration) reads as other tokens
            screenshot(el, shot)
            if notebook == "02_continuous_thoughts":   # the trained Coconut and CoT models side by side, one slider
                _steps_the_graph_comparison(page)
        finally:
            page.context.close()


def _graph(page, nth):
    return page.evaluate("""(nth) => { const r = document.querySelectorAll('.le-graph')[nth];
        return { index: r.dataset.index, verdict: r.querySelector('.le-verdict').textContent,
                 fills: [...r.querySelectorAll('circle.le-node')].map(c => c.getAttribute('fill')) }; }""", nth)


def _steps_the_graph_comparison(page):
    """Workshop 02's ProsQA section: prosqa-coconut (right) and prosqa-cot (wrong) on one real problem; the slider
    steps both graphs, and the Coconut graph recolours as its thoughts move out."""
    views = page.locator(".le-graph")
    views.first.scroll_into_view_if_needed()
    assert views.count() == 2
    coconut, cot = _graph(page, 0), _graph(page, 1)
    assert coconut["verdict"].endswith("✓") and cot["verdict"].endswith("✗") and len(coconut["fills"]) > 10
    slider = page.locator(".widget-slider .noUi-handle").first
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => [...document.querySelectorAll('.le-graph')].every(r => r.dataset.index === '3')",
                           timeout=5_000)
    assert _graph(page, 0)["fills"] != coconut["fills"]
    screenshot(page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-slider")).first,
               "workshop_graph_compare.png")
