"""Courtesy is answered in kind; anything that asks or complains is not courtesy."""

import pytest

from shared.answering.courtesy import Courtesy, courtesy, says_nothing


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("hi", Courtesy.GREETING),
        ("hello?", Courtesy.GREETING),
        ("Good morning", Courtesy.GREETING),
        ("thanks!", Courtesy.THANKS),
        ("thank you so much!!", Courtesy.THANKS),
        ("thanks :)", Courtesy.THANKS),
        ("ok great", Courtesy.THANKS),
        ("cheers mate", Courtesy.THANKS),
        ("that helps, thanks", Courtesy.THANKS),
        ("no thanks", Courtesy.THANKS),
    ],
)
def test_a_greeting_or_thanks_is_courtesy(message: str, kind: Courtesy) -> None:
    assert courtesy(message) is kind


@pytest.mark.parametrize(
    "message",
    [
        # complaints: the words retrieval drops ("not", "no") are what they say
        "that's not good",
        "no good",
        "not ok",
        "this isn't okay",
        "ok but",
        "oh no",
        # questions and requests
        "Are you sure?",
        "thanks, and who pays the duties?",
        "Hi, where is my order?",
        "Please get back to me",
        "you there",
        "ok?",
    ],
)
def test_what_asks_or_complains_is_not_courtesy(message: str) -> None:
    assert courtesy(message) is None


@pytest.mark.parametrize("message", ["ok sure", "right", "no", "thanks!", "hi there"])
def test_what_names_nothing_is_no_subject_to_follow_up_on(message: str) -> None:
    assert says_nothing(message)


def test_a_request_names_something() -> None:
    assert not says_nothing("Please get back to me")
