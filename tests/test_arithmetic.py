"""explorer.arithmetic over a tiny hand-made space (widgets.demo.DemoSpace)."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.arithmetic import TokenSpace, Term, analogy, combine, evaluate, interpolate, parse_expression
from explorer.errors import EmptyInputError, InputError, VectorError
from widgets.demo import DemoSpace


@pytest.fixture
def space():
    return DemoSpace()


def test_demo_space_follows_the_protocol(space):
    assert isinstance(space, TokenSpace)
    assert not isinstance(object(), TokenSpace)


@pytest.mark.parametrize("expr, want", [
    ("king - man + woman", [("king", 1), ("man", -1), ("woman", 1)]),
    ("king−man+woman", [("king", 1), ("man", -1), ("woman", 1)]),
    ('-"the red apple" + banana', [("the red apple", -1), ("banana", 1)]),
    ("0.5*king + 0.5 * queen", [("king", 1), ("queen", 1)]),
    ("'a - b' - c", [("a - b", 1), ("c", -1)]),
])
def test_parse_expression(expr, want):
    terms = parse_expression(expr)
    assert [(t.text, t.sign) for t in terms] == want


def test_parse_weights_and_quotes():
    t = parse_expression('0.5*king - 2 * "new york"')
    assert t[0].weight == 0.5 and t[1].weight == 2.0 and t[1].quoted and t[1].coefficient == -2.0


@pytest.mark.parametrize("bad, exc", [("", EmptyInputError), ("   ", EmptyInputError), ("king + + man", InputError),
                                      ("king - ", InputError), ('king + ""', InputError), ("king + *", InputError)])
def test_parse_errors(bad, exc):
    with pytest.raises(exc):
        parse_expression(bad)


def test_combine_and_analogy(space):
    v = combine(space, "king - man + woman")
    np.testing.assert_allclose(v, space.words["queen"])
    np.testing.assert_allclose(combine(space, [Term("king", 1, 0.5), Term("queen", 1, 0.5)]),
                               (space.words["king"] + space.words["queen"]) / 2)
    t = analogy(space, "king", "man", "woman", k=3)
    assert t.top == "queen" and t.scores[0] == pytest.approx(1.0)
    assert not {"king", "man", "woman"} & set(t.tokens)
    assert analogy(space, "boy", "man", "woman", k=1).top == "girl"
    with pytest.raises(EmptyInputError):
        analogy(space, "king", "", "woman")


def test_evaluate_excludes_operands_unless_asked(space):
    r = evaluate(space, "queen - woman + man", k=4)
    assert r.table.top == "king" and "queen" not in r.table.tokens
    assert list(r.operands) == ["queen", "woman", "man"]
    r2 = evaluate(space, "queen - woman + man", k=14, exclude_operands=False)
    assert "queen" in r2.table.tokens


def test_interpolate_slerp_and_lerp():
    a, b = np.array([3.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)
    s = interpolate(a, b, 5, "slerp", labels=("a", "b"))
    assert s.names == [f"interp.{i}" for i in range(5)] and s.labels[0] == "a" and s.labels[-1] == "b"
    v = s.vectors()
    np.testing.assert_allclose(v[0], a, atol=1e-6)
    np.testing.assert_allclose(v[-1], b, atol=1e-6)
    # slerp: the norm moves linearly, the direction turns at constant angular speed
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), np.linspace(3, 1, 5), atol=1e-5)
    angles = np.degrees(np.arctan2(v[:, 1], v[:, 0]))
    np.testing.assert_allclose(angles, np.linspace(0, 90, 5), atol=1e-3)
    lerp = interpolate(a, b, 3, "lerp").vectors()
    np.testing.assert_allclose(lerp[1], (a + b) / 2)
    assert np.linalg.norm(lerp[1]) < np.linalg.norm(v[2])  # lerp cuts the corner
    with pytest.raises(InputError):
        interpolate(a, b, 1)
    with pytest.raises(InputError):
        interpolate(a, b, 3, "cubic")
    with pytest.raises(VectorError):
        interpolate(a, np.ones(4), 3)
