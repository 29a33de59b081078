"""What a customer says that asks nothing: "hi", "thanks!", "ok great". It is not a question for
the knowledge base — looked up, it found nothing and went to a person — and it names no subject
for the next message to follow up on."""

from enum import StrEnum

from shared.knowledge.search import tokenize

_GREETINGS = set(tokenize(["hi hello hey hiya morning afternoon evening"])[0])
_ONLY_WITH_A_GREETING = set(tokenize(["there good"])[0])  # "hi there", "good morning"
_COURTESY = _GREETINGS | set(
    tokenize(
        [
            "thanks thank thx ty so very much lot you ok okay k great cool nice perfect awesome "
            "brilliant lovely good fine alright yes yeah yep there cheers bye goodbye got see "
            "understood oh ah wow"
        ]
    )[0]
)


class Courtesy(StrEnum):
    GREETING = "greeting"  # "hi", "hello there"
    THANKS = "thanks"  # "thanks!", "ok great", "cool, cheers"


def says_nothing(message: str) -> bool:
    """Nothing to search with or to follow up on: courtesy ("thanks so much", "ok great!"), or
    not even a word that names something ("no", "is it?"); not "Please get back to me"."""
    return set(tokenize([message])[0]) <= _COURTESY


def courtesy(message: str) -> Courtesy | None:
    """The courtesy a message is, to be answered in kind; None for anything that asks (a
    question mark, a word that names something: "Are you sure?", "thanks, and the duties?")."""
    terms = set(tokenize([message])[0])
    if not terms or not terms <= _COURTESY or "?" in message:
        return None
    if terms <= _GREETINGS | _ONLY_WITH_A_GREETING:
        return Courtesy.GREETING
    return Courtesy.THANKS
