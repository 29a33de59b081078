"""A follow-up made standalone: "How long does it take?" only means something after "Do you ship
internationally?".

With a model that can (Ollama, an OpenAI-compatible server) the message is rewritten as a question
of its own. Without one (the embedded model, extractive):
- a bare follow-up (a pronoun and nothing but words like "how long", "how much": "What does it
  cost?") is asked of what the previous customer message named, in its words: "What does standard
  delivery cost?" after "How long does standard delivery take?" (mixing the two vectors kept the
  earlier "how long"). An earlier message of more than `MAX_SUBJECT_WORDS` such words, or of none,
  is mixed in with the same weight as the message instead;
- any other message's vector is mixed with the previous customer message's: half when the message
  alone finds nothing (an ellipsis), a fifth when it does — a new question that still shares the
  conversation's subject, whose own words alone are searched for (BM25 on the earlier words too
  pulled "when do you actually take the money?" after "can I pay with PayPal?" to the payment
  methods).
A message that says nothing but thanks or hello is not what the customer asked about. After a run
of bare follow-ups the previous message is the last one that was not bare with the run (its last
three) after it ("Do you ship internationally? How long does it take?"): "And who pays the
duties?" got the domestic delivery times.

The weights and the threshold were tuned on the tune half of bench/data/followups.jsonl (`python
bench/followups.py --split tune`; swept again when the set grew to 73 tune conversations, before
the two changes below: no setting of the three did better). Measured there, 2026-11-27: asking a
bare follow-up of the earlier words took the tune half from 65 to 66 of 73, searching a
self-contained message's own words to 67; the test half stayed at 67 of 72, fresh went from 18 to
21 of 24. A message without a pronoun that asks how long, how much… and names no subject ("How
long till someone gets back to me?") is bare too.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.answering.courtesy import says_nothing
from shared.core.errors import LLMError
from shared.knowledge import KnowledgeBase
from shared.knowledge.embeddings import Vector
from shared.knowledge.search import tokenize
from shared.llm import LLMProvider, Turn

logger = logging.getLogger(__name__)

SELF_CONTAINED_COSINE = 0.4  # the message alone retrieves this well: it mostly stands alone
EARLIER_WEIGHT_SELF_CONTAINED = 0.2
EARLIER_WEIGHT_ELLIPTICAL = 0.5
EARLIER_WEIGHT_BARE = 1.0
MAX_BARE_KEPT = 3  # of a run of bare follow-ups, the most recent kept with its subject
MAX_SUBJECT_WORDS = 12  # what a bare follow-up is asked of, at most

_EDGE_PUNCTUATION = "?!.,;:¿¡\"'()[]"

# With what a contraction joins to it: "it's", "that'll".
_PRONOUN = re.compile(r"\b(?:it|they|them|that|this)(?:['\u2019](?:s|re|ll|d))?\b", re.IGNORECASE)
_QUESTION_WORDS = (
    "how what when where which why who does do did is are can could will would should "
)
# What is asked about something without naming it: how long, how much, how often…
_ATTRIBUTES = set(
    tokenize(
        [
            "long much many take takes cost costs price time quick fast soon often happen happens "
            "work works possible option options way ways usually normally"
        ]
    )[0]
)
# Words that ask about something without naming it.
_ASKING = set(tokenize([_QUESTION_WORDS])[0]) | _ATTRIBUTES
# Words that name no subject: people, fillers, and verbs and adverbs any question may use.
_VAGUE_WORDS = (
    "me my mine you your we us our someone somebody anyone anybody something anything "
    "have has had get gets got let know tell back up till until still exactly really "
    "actually just need needs please pls ok okay now so about"
)
_VAGUE = set(tokenize([_VAGUE_WORDS])[0])
# The same, as written, with the small words of asking that retrieval drops ("is there", "I").
_NOT_NAMING = set(f"{_QUESTION_WORDS} {_VAGUE_WORDS} i u am there".split())


def bare_follow_up(message: str) -> bool:
    """Nothing of its own to search with: a pronoun and asking words ("How long does it
    take?"), or what is asked about something and words that name no subject ("How long till
    someone gets back to me?"; not "What can you do?", which asks about nothing earlier)."""
    own = set(tokenize([_PRONOUN.sub(" ", message)])[0])
    if _PRONOUN.search(message) and own <= _ASKING:
        return True
    return bool(own & _ATTRIBUTES) and own <= _ASKING | _VAGUE


def subject_of(history: Sequence[Turn]) -> str | None:
    """What the customer was last asking about: their last message that was not a bare
    follow-up, with the bare ones after it (the last `MAX_BARE_KEPT`): "Do you ship
    internationally? How long does it take?", so that a third turn ("And who pays the
    duties?") still has the conversation's subject. Thanks and greetings are passed over. None
    before the first message."""
    bare: list[str] = []
    subject: list[str] = []
    for turn in reversed(history):
        if turn.role != "customer" or says_nothing(turn.text):
            continue
        if not bare_follow_up(turn.text):
            subject = [turn.text]
            break
        bare.append(turn.text)
    asked = subject + list(reversed(bare[:MAX_BARE_KEPT]))
    return " ".join(asked) if asked else None


def named_in(text: str) -> list[str]:
    """The words of `text` that say what it is about, without those that ask ("how long does",
    "is there", "can I") and pronouns, with the small words that place it ("to the UK", "to the
    US": a word in capitals is a name, not "us")."""
    words = (word.strip(_EDGE_PUNCTUATION) for word in _PRONOUN.sub(" ", text).split())
    return [word for word in words if word and (_is_name(word) or _names_something(word))]


def _is_name(word: str) -> bool:
    return len(word) > 1 and word.isupper()


def _names_something(word: str) -> bool:
    if word.lower() in _NOT_NAMING:
        return False
    terms = set(tokenize([word])[0])
    return not terms or bool(terms - _ASKING - _VAGUE)  # a small word ("to") is kept


def said_of(message: str, earlier: str) -> str | None:
    """A bare follow-up asked of what the earlier messages name: "What does it cost?" after "How
    long does standard delivery take?" is "What does standard delivery cost?" — their words that
    name something in place of the pronoun (or after the message when it has none), without their
    asking words, which the follow-up replaces. None when they name nothing, or more than a short
    question does (a long message is better mixed in than pasted into a question)."""
    named = named_in(earlier)
    if not set(tokenize([" ".join(named)])[0]) or len(named) > MAX_SUBJECT_WORDS:
        return None
    subject = " ".join(named)
    if _PRONOUN.search(message):
        return _PRONOUN.sub(lambda _: subject, message, count=1)  # the words as they are
    return f"{message.rstrip('?!. ')} {subject}?"


@dataclass(frozen=True)
class StandaloneQuestion:
    text: str  # what was retrieved with, as recorded with the answer
    vector: Vector | None  # the retrieval vector (None: computed from `text`)
    rewritten: bool = False  # by a model


def standalone_question(
    *,
    message: str,
    history: Sequence[Turn],
    knowledge: KnowledgeBase,
    provider: LLMProvider | None = None,
    message_vector: Vector | None = None,
) -> StandaloneQuestion:
    """The customer's message as the question to retrieve with (`message_vector`: the
    message's own vector, when the caller has it already)."""
    earlier = subject_of(history)
    if message_vector is None:
        message_vector = knowledge.embed_query(message)
    if earlier is None:
        return StandaloneQuestion(message, message_vector)
    if provider is not None and provider.rewrites:
        try:
            rewritten = " ".join(provider.rewrite(history=history, message=message).split())
        except LLMError as exc:
            logger.warning("could not rewrite the follow-up (%s); mixing vectors", exc.code)
        else:
            if 3 <= len(rewritten) <= 500:
                return StandaloneQuestion(rewritten, knowledge.embed_query(rewritten), True)
    bare = bare_follow_up(message)
    if bare and (said := said_of(message, earlier)) is not None:
        return StandaloneQuestion(said, knowledge.embed_query(said))
    text = f"{earlier} {message}"
    own = message_vector
    if own is None:
        return StandaloneQuestion(text, None)
    if bare:
        weight = EARLIER_WEIGHT_BARE
    else:
        hits = knowledge.search(message, k=1, query_vector=own)
        alone = bool(hits) and (hits[0].dense or 0.0) >= SELF_CONTAINED_COSINE
        weight = EARLIER_WEIGHT_SELF_CONTAINED if alone else EARLIER_WEIGHT_ELLIPTICAL
        if alone:  # its own words are searched for, the earlier turns only nudge its vector
            text = message
    before = knowledge.embed_query(earlier)
    mixed = own + weight * before if before is not None else own
    return StandaloneQuestion(text, np.asarray(mixed / np.linalg.norm(mixed), dtype=np.float32))
