"""The tour notebook, as a first-time user meets it: JupyterLab, Run All, pictures appear."""
from __future__ import annotations

import sys
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
            assert " Paris" in fig.inner_text() and "layer.29" in fig.inner_text()
            screenshot(fig, "tour_lens.png")
            # the widgets came up: lens view, two steppers, the map (WebGL) and the concept lab
            assert page.locator(".le-lens").count() == 1
            assert page.locator(".le-stepper").count() == 2
            assert page.locator(".le-concept-lab").count() == 2
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
