"""The workshop's answer checker: right answers pass, wrong ones say where to look, nothing raises."""
from __future__ import annotations

import pytest

from explorer import InputError
from explorer.workshop import Feedback
from explorer.workshop.lenses import PROMPT, exercises


@pytest.fixture(scope="module")
def ex(smol):
    return exercises(smol)


def test_right_answers_pass(ex, smol):
    lens = smol.logit_lens(smol.trace(PROMPT), k=5, target=" Paris")
    first = lens.first_point(" Paris")
    assert first is not None and first != "embed"
    assert ex.check("first_paris", first).correct
    assert ex.check("first_paris", int(first.split(".")[1])).correct  # a bare layer number is accepted
    assert ex.check("which_norm", "final").correct
    rank = int(lens.target_rank[lens.points.index("layer.15"), -1])
    assert ex.check("rank_at_half", rank).correct and ex.check("rank_at_half", str(rank)).correct
    assert ex.check("analogy", '" king" - " man" + " woman"').correct


def test_wrong_answers_explain(ex):
    fb = ex.check("first_paris", "embed")
    assert isinstance(fb, Feedback) and not fb and "lens" in fb.message
    assert not ex.check("which_norm", "layer.29")
    assert "whole number" in ex.check("rank_at_half", "high").message
    fb = ex.check("analogy", "king - man + woman")  # bare words lose their leading space here
    assert not fb and "leading space" in fb.message
    assert "did not evaluate" in ex.check("analogy", "king -").message
    fb = ex.check("which_norm", None)
    assert not fb and "no answer yet" in fb.message
    assert "✗ not yet" in fb._repr_html_()


def test_unknown_exercise_names_the_choices(ex):
    with pytest.raises(InputError, match="first_paris"):
        ex.check("no_such", 1)
