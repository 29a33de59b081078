import pytest
from pydantic import ValidationError

from shared.questions.schemas import AskRequest


def test_question_is_stripped() -> None:
    assert AskRequest(question="   Where is my parcel?  ").question == "Where is my parcel?"


@pytest.mark.parametrize(
    "question",
    ["", "  ", "ab", "   ab   ", "?!?!", "x" * 2001, "refund\x00policy", "bad\x1bescape"],
)
def test_rejects_unusable_questions(question: str) -> None:
    with pytest.raises(ValidationError):
        AskRequest(question=question)


def test_accepts_the_limits_and_any_script() -> None:
    assert AskRequest(question="abc").question == "abc"
    assert len(AskRequest(question="y" * 2000).question) == 2000
    assert AskRequest(question="返金は可能ですか").question == "返金は可能ですか"
    assert AskRequest(question="line one\nline two").question == "line one\nline two"


def test_context_method_defaults_to_hybrid_and_is_checked() -> None:
    assert AskRequest(question="refund?").context_method == "hybrid"
    assert AskRequest(question="refund?", context_method="keyword").context_method == "keyword"
    assert AskRequest(question="refund?", context_method="all").context_method == "all"
    with pytest.raises(ValidationError):
        AskRequest(question="refund?", context_method="semantic")  # type: ignore[arg-type]
