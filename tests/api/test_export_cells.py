"""A customer's text that a spreadsheet would run as a formula is exported as text."""

import pytest

from api.routes.analytics import _cell


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx"])
def test_formula_cells_are_quoted(text: str) -> None:
    assert _cell(text) == "'" + text


def test_other_cells_are_left_alone() -> None:
    assert _cell("How long does shipping take?") == "How long does shipping take?"
    assert _cell(None) is None and _cell(["a"]) == ["a"]
