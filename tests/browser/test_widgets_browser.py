"""End-to-end: the widgets in a real JupyterLab 4, driven by Playwright in headless Chromium."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from labdriver import jupyter_lab, kernel_eval, new_page, open_and_run, screenshot  # noqa: E402

pytestmark = pytest.mark.browser


def _stepper_state(page):
    return page.evaluate("""() => {
        const r = document.querySelector('.le-stepper');
        const p = r.querySelector('.le-point');
        return { index: Number(r.dataset.index), cx: Number(p.getAttribute('cx')), cy: Number(p.getAttribute('cy')),
                 out: [...r.querySelectorAll('.le-bars-output .le-bar-token')].map(e => e.textContent),
                 inp: [...r.querySelectorAll('.le-bars-input .le-bar-token')].map(e => e.textContent),
                 counter: r.querySelector('.le-counter').textContent,
                 cursor: r.querySelector('.le-chart-cursor').getAttribute('x1') };
    }""")


def test_stepper_slider_keys_and_play(synthetic_page):
    page = synthetic_page
    root = page.locator(".le-stepper")
    root.scroll_into_view_if_needed()
    s0 = _stepper_state(page)
    assert s0["index"] == 0 and s0["counter"] == "1 / 24" and len(s0["out"]) == 8 and len(s0["inp"]) == 8

    # the slider: the point moves, the bars and the chart cursor follow, all in the browser
    page.locator(".le-stepper .le-slider").fill("10")
    s1 = _stepper_state(page)
    assert s1["index"] == 10 and s1["counter"] == "11 / 24"
    assert (s1["cx"], s1["cy"]) != (s0["cx"], s0["cy"])
    assert s1["out"] != s0["out"] and s1["inp"] != s0["inp"]
    assert s1["cursor"] != s0["cursor"]
    # ... and the index reached Python
    page.wait_for_timeout(300)
    assert kernel_eval(page, "print(stepper.index, repr(stepper.tokens().top))").split()[0] == "10"

    # arrow keys step when the widget has focus
    root.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    s2 = _stepper_state(page)
    assert s2["index"] == 11 and (s2["cx"], s2["cy"]) != (s1["cx"], s1["cy"])
    screenshot(root, "stepper.png")

    # play runs to the end by itself (24 steps × 120 ms) and stops there
    page.locator(".le-stepper .le-play").click()
    page.wait_for_function("() => document.querySelector('.le-stepper').dataset.index === '23'", timeout=10_000)
    s3 = _stepper_state(page)
    assert s3["out"] != s2["out"] and (s3["cx"], s3["cy"]) != (s2["cx"], s2["cy"])
    page.wait_for_timeout(400)
    assert page.locator(".le-stepper .le-play").text_content() == "▶"  # stopped
    assert kernel_eval(page, "print(stepper.index, stepper.playing)").split() == ["23", "False"]

    # Python drives the browser too
    kernel_eval(page, "stepper.goto(5)")
    page.wait_for_function("() => document.querySelector('.le-stepper').dataset.index === '5'", timeout=5_000)


def test_lens_click_shows_topk_and_point(synthetic_page):
    page = synthetic_page
    root = page.locator(".le-lens")
    root.scroll_into_view_if_needed()
    assert root.locator(".le-cell").count() == 10 * 5
    head0 = root.locator(".le-lens-topk h4").text_content()
    assert head0 == "click a cell"

    cell = root.locator('.le-cell[data-point="layer.3"][data-pos="2"]')
    top1 = cell.text_content()
    cell.click()
    head1 = root.locator(".le-lens-topk h4").text_content()
    toks1 = root.locator(".le-lens-topk .le-bar-token").all_text_contents()
    assert "layer.3" in head1 and "position 2" in head1
    assert len(toks1) == 5 and toks1[0] == top1
    p1 = root.locator(".le-point")
    xy1 = (p1.get_attribute("cx"), p1.get_attribute("cy"))
    assert xy1 != ("-20", "-20")

    root.locator('.le-cell[data-point="final"][data-pos="4"]').click()
    toks2 = root.locator(".le-lens-topk .le-bar-token").all_text_contents()
    assert toks2 != toks1 and toks2[0] == "␣Paris"
    assert (p1.get_attribute("cx"), p1.get_attribute("cy")) != xy1
    page.wait_for_timeout(300)
    assert kernel_eval(page, "print(lensview.selection())").strip() == "('final', 4)"
    screenshot(root, "lens.png")


def test_concept_lab_results_appear(synthetic_page):
    page = synthetic_page
    root = page.locator(".le-concept-lab")
    root.scroll_into_view_if_needed()
    assert root.locator(".le-result-row").count() == 0
    for placeholder, word in (("A (e.g. king)", "king"), ("B (e.g. man)", "man"), ("C (e.g. woman)", "woman")):
        box = root.get_by_placeholder(placeholder)
        box.fill(word)
        box.press("Enter")
    # each Enter recomputes; wait for the result of the whole expression (or fail on timeout)
    page.wait_for_function("""() => {
        const lab = document.querySelector('.le-concept-lab');
        const t = lab.querySelector('.le-result-token');
        return lab.innerText.includes('king - man + woman') && t && t.textContent === "'queen'"; }""", timeout=30_000)
    tokens = root.locator(".le-result-token").all_text_contents()
    assert len(tokens) == 10 and tokens[0] == "'queen'"
    assert not {"'king'", "'man'", "'woman'"} & set(tokens)  # operands are excluded
    # the operands and the result are drawn on the map (plotly SVG text)
    page.wait_for_function("""() => [...document.querySelectorAll('.le-concept-lab .textpoint text')]
                                     .some(t => t.textContent.includes("'queen'"))""", timeout=30_000)
    # the interpolation defaulted to A → C and lists its nearest entries
    page.wait_for_function("() => document.querySelectorAll('.le-concept-lab .le-interp-row').length > 0", timeout=30_000)
    screenshot(root, "concept_lab.png")


def test_latent_map_renders_webgl(synthetic_page):
    page = synthetic_page
    fig = page.locator(".js-plotly-plot").last
    fig.scroll_into_view_if_needed()
    fig.locator("canvas").first.wait_for(state="attached", timeout=30_000)  # scattergl draws on a WebGL canvas
    legend = " ".join(fig.locator(".legendtext").all_text_contents())
    assert "background (20,000)" in legend and "demo trajectory" in legend
    screenshot(fig, "latent_map.png")


def _real_model_ready() -> str | None:
    try:
        explorer = importlib.import_module("explorer")
    except Exception as e:  # noqa: BLE001
        return f"explorer does not import yet ({e})"
    missing = [a for a in ("load_model",) if not hasattr(explorer, a)]
    return f"explorer lacks {missing}" if missing else None


@pytest.mark.skipif(_real_model_ready() is not None, reason=str(_real_model_ready()))
def test_real_model_notebook(chromium_browser):
    """The default model end to end: trace → lens → LensView, annotated trajectory → stepper."""
    with jupyter_lab(("widgets_model.ipynb",)) as lab:
        page = new_page(chromium_browser)
        open_and_run(page, lab, "widgets_model.ipynb", timeout_s=300)
        root = page.locator(".le-stepper")
        root.scroll_into_view_if_needed()
        before = root.locator(".le-bars-output .le-bar-token").all_text_contents()
        assert before, "the real trajectory has output probes"
        root.focus()
        page.keyboard.press("End")
        after = root.locator(".le-bars-output .le-bar-token").all_text_contents()
        assert after != before
        cell = page.locator(".le-lens .le-cell").last
        cell.click()
        assert page.locator(".le-lens .le-lens-topk .le-bar-token").count() > 0
        screenshot(page, "real_model.png")


def _graph_state(page, nth=0):
    return page.evaluate("""(nth) => {
        const r = document.querySelectorAll('.le-graph')[nth];
        const cs = [...r.querySelectorAll('circle.le-node')];
        return { index: Number(r.dataset.index), fills: cs.map(c => c.getAttribute('fill')),
                 radii: cs.map(c => c.getAttribute('r')), current: r.querySelector('.le-current').textContent,
                 rings: [...r.querySelectorAll('circle.le-ring')].filter(c => c.getAttribute('stroke') !== 'none').length,
                 verdict: r.querySelector('.le-verdict').textContent };
    }""", nth)


def test_graph_view_follows_a_linked_stepper_and_compare_steps_together(chromium_browser):
    """GraphView recolours when its linked stepper steps (jslink: no kernel round trip needed), and the
    small multiples of GraphCompare follow their one slider."""
    with jupyter_lab(("widgets_graph.ipynb",)) as lab:
        page = new_page(chromium_browser)
        try:
            open_and_run(page, lab, "widgets_graph.ipynb")
            page.wait_for_selector(".le-graph circle.le-node")
            g0 = _graph_state(page)
            assert g0["index"] == 0 and len(g0["fills"]) == 18 and g0["verdict"].startswith("answer: ")
            assert g0["rings"] > 0                                   # the first thought's frontier is outlined
            stepper = page.locator(".le-stepper").first
            stepper.scroll_into_view_if_needed()
            stepper.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => document.querySelector('.le-graph').dataset.index === '2'", timeout=5_000)
            g2 = _graph_state(page)
            assert g2["fills"] != g0["fills"] and g2["radii"] != g0["radii"] and g2["current"].startswith("thought")
            page.wait_for_timeout(300)
            assert kernel_eval(page, "print(gview.index, gview.step)").split() == ["2", "2"]
            # the measure switch recolours the same step from the inner products
            page.locator(".le-graph .le-measure").first.select_option("inner")
            gi = _graph_state(page)
            assert gi["index"] == 2 and gi["fills"] != g2["fills"]
            screenshot(page.locator(".jp-OutputArea-output").filter(has=page.locator(".le-graph")).first, "graph_view.png")
            # GraphCompare: three views, one slider
            views = page.locator(".le-graph")
            assert views.count() == 4
            before = [_graph_state(page, i)["fills"] for i in (1, 2, 3)]
            slider = page.locator(".widget-slider .noUi-handle").first
            slider.scroll_into_view_if_needed()
            slider.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => [...document.querySelectorAll('.le-graph')].slice(1).every(r => r.dataset.index === '2')",
                                   timeout=5_000)
            after = [_graph_state(page, i)["fills"] for i in (1, 2, 3)]
            assert all(a != b for a, b in zip(after, before))
            screenshot(page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-slider")).first,
                       "graph_compare.png")
        finally:
            page.context.close()


def test_patch_view_slider_and_rule_move_the_boundaries(chromium_browser):
    """The threshold slider and the rule toggle move the patch boundaries in the browser; the
    boundaries drawn are the ones Python computes (PatchView.patches()) at the same settings."""
    with jupyter_lab(("widgets_patches.ipynb",)) as lab:
        page = new_page(chromium_browser)
        try:
            open_and_run(page, lab, "widgets_patches.ipynb")
            page.wait_for_selector(".le-patches .le-byte")

            def drawn():
                return page.evaluate("""() => [...document.querySelectorAll('.le-patches .le-byte.le-pstart')]
                                          .map(s => Number(s.dataset.start))""")

            def python_starts():
                page.wait_for_timeout(300)
                return [int(x) for x in kernel_eval(page, "print(*[a for a, _ in pv.patches().bounds])").split()]

            s0 = drawn()
            assert s0 and s0[0] == 0 and s0 == python_starts()
            stats0 = page.locator(".le-patch-stats").text_content()
            screenshot(page.locator(".le-patches"), "patch_view.png")     # at 4.5 bytes per patch
            slider = page.locator(".le-patches .le-threshold")
            slider.fill(str(float(slider.get_attribute("max")) * 0.2))      # a low threshold: many patches
            s1 = drawn()
            assert len(s1) > len(s0) and s1 == python_starts()
            assert page.locator(".le-patch-stats").text_content() != stats0
            page.locator(".le-patches .le-rule").select_option("monotonic")
            s2 = drawn()
            assert s2 != s1 and s2 == python_starts()
            assert kernel_eval(page, "print(pv.rule)").strip() == "monotonic"
        finally:
            page.context.close()


def test_thought_tree_replays_expands_and_prunes(chromium_browser):
    """The replay slider hides and shows thoughts in the browser; expand and prune (buttons → the
    kernel's search tree) change the tree drawn."""
    with jupyter_lab(("widgets_tree.ipynb",)) as lab:
        page = new_page(chromium_browser)
        try:
            open_and_run(page, lab, "widgets_tree.ipynb", timeout_s=240)
            page.wait_for_selector(".le-tree circle.le-tree-node")
            tree = page.locator(".le-tree")
            n0 = int(tree.get_attribute("data-nodes"))
            assert int(tree.get_attribute("data-visible")) == n0 > 1
            page.locator(".le-tree .le-replay").fill("1")                 # replay: only the root so far
            assert tree.get_attribute("data-visible") == "1"
            page.locator(".le-tree .le-replay").fill(page.locator(".le-tree .le-replay").get_attribute("max"))
            assert int(tree.get_attribute("data-visible")) == n0
            screenshot(tree, "thought_tree.png")
            # select the root's first child and expand it: new thoughts appear
            first = page.evaluate("() => { const c = document.querySelectorAll('.le-tree circle.le-tree-node')[1];"
                                  " return Number(c.dataset.node); }")
            page.locator(f".le-tree circle.le-tree-node[data-node='{first}']").click()
            page.locator(".le-tree .le-expand").click()
            page.wait_for_function(f"() => Number(document.querySelector('.le-tree').dataset.nodes) > {n0}", timeout=60_000)
            n1 = int(tree.get_attribute("data-nodes"))
            # prune the newest thought: it turns grey
            page.locator(f".le-tree circle.le-tree-node[data-node='{n1 - 1}']").click()
            page.locator(".le-tree .le-prune").click()
            page.wait_for_function(f"() => document.querySelector(\".le-tree circle[data-node='{n1 - 1}']\")"
                                   ".classList.contains('le-pruned')", timeout=30_000)
            page.wait_for_timeout(300)
            assert str(n1 - 1) in kernel_eval(page, "print(sorted(tt.tree.pruned))")
        finally:
            page.context.close()
