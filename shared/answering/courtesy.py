"""What a customer says that asks nothing: "hi", "thanks!", "ok great". It is not a question for
the knowledge base — looked up, it found nothing and went to a person — and it names no subject
for the next message to follow up on."""

import re
from enum import StrEnum

from shared.knowledge.search import tokenize


def _words(text: str) -> set[str]:
    return set(text.split())


# Words, as written, that a greeting is made of.
_GREETING_WORDS = _words(
    "hi hello hey hiya howdy yo morning afternoon evening day good there team all everyone "
    "guys folks"
)
# A thanks or an acknowledgement needs one of these ("you there" is neither)…
_THANKS_WORDS = _words(
    "thanks thank thankyou thx thnx ty tyvm ok okay k kk great cool nice perfect awesome "
    "brilliant lovely excellent fine alright sure yes yeah yep cheers bye goodbye understood "
    "noted appreciate appreciated wow helps helped helpful"
)
# …and may have these around it.
_FILLER_WORDS = _words(
    "u you so very much many lot lots a it that that's thats this was really got see ya later "
    "mate oh ah"
)
# A word that turns courtesy into a complaint or a question: "not ok", "no good", "ok but…".
_NEGATION = _words("no not never nope nor but")
_WORD = re.compile(r"[a-z]+(?:['\u2019][a-z]+)?")

# Words that name nothing to search with or follow up on ("ok sure", "right", "yes"), stemmed.
_NAMES_NOTHING = set(
    tokenize([f"{' '.join(_GREETING_WORDS | _THANKS_WORDS | _FILLER_WORDS)} right no nope"])[0]
)


class Courtesy(StrEnum):
    GREETING = "greeting"  # "hi", "hello there", "good morning"
    THANKS = "thanks"  # "thanks!", "ok great", "cool, cheers"


def says_nothing(message: str) -> bool:
    """Nothing to search with or to follow up on: courtesy ("thanks so much", "ok sure"), or not
    even a word that names something ("no", "is it?"); not "Please get back to me"."""
    return set(tokenize([message])[0]) <= _NAMES_NOTHING


def courtesy(message: str) -> Courtesy | None:
    """The courtesy a message is, to be answered in kind: every word a greeting's ("hello?" too)
    or a thanks' ("thanks :)"). None for anything else — a question ("thanks, and the
    duties?"), a complaint ("not ok", "no good", "ok but…"), a word it does not know."""
    words = _WORD.findall(message.lower().replace("\u2019", "'"))
    if words[:1] == ["no"] and len(words) > 1 and words[1] in ("thanks", "thank", "thx", "ty"):
        words = words[1:]  # "no thanks", "no thank you": a polite no
    if not words or any(word in _NEGATION or word.endswith("n't") for word in words):  # "isn't"
        return None
    if all(word in _GREETING_WORDS for word in words):
        return Courtesy.GREETING
    known = _THANKS_WORDS | _FILLER_WORDS | _GREETING_WORDS
    if "?" not in message and all(w in known for w in words) and set(words) & _THANKS_WORDS:
        return Courtesy.THANKS
    return None
