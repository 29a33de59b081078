import pytest

from api.waiting import parse_prefer


@pytest.mark.parametrize(
    ("header", "wait", "applied"),
    [
        (None, 30.0, []),
        ("respond-async", 0.0, ["respond-async"]),
        ("RESPOND-ASYNC", 0.0, ["respond-async"]),
        ("wait=5", 5.0, ["wait=5"]),
        ("respond-async, wait=7", 7.0, ["respond-async", "wait=7"]),
        ("wait=500", 120.0, ["wait=500"]),
        ("wait=abc", 30.0, []),
        ("wait=nan", 30.0, []),
        ("wait=inf", 30.0, []),
        ("handling=lenient", 30.0, []),
    ],
)
def test_prefer_header_sets_the_wait(header: str | None, wait: float, applied: list[str]) -> None:
    assert parse_prefer(header, default=30.0, maximum=120.0) == (wait, applied)
