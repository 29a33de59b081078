"""When the assistant does not answer but a person does, and why."""

import re
import weakref
from enum import StrEnum

import numpy as np

from shared.knowledge.embeddings import Embedder, Vector, Vectors


class HandoffReason(StrEnum):
    LOW_CONFIDENCE = "low_confidence"  # the knowledge base does not cover the question
    CUSTOMER_REQUEST = "customer_request"  # the customer asked for a person
    MODEL_FAILED = "model_failed"  # the model backend failed for good


_SOMEONE = (
    r"(?:a |an |the |some |your |one of your )?(?:real |live |actual |human )?"
    r"(?:person|human|agent|representative|rep|operator|someone|somebody|staff|manager|"
    r"employee|supervisor|customer service|support team|team member)(?![-\w])"
)
_WANTS_A_PERSON = re.compile(
    "|".join(
        [
            # "talk to a human", "speak with someone", "chat with an agent"
            rf"\b(?:talk|speak|chat)\w*\s+(?:directly\s+)?(?:to|with)\s+{_SOMEONE}",
            # "connect me to customer service", "put me through to an agent"
            rf"\b(?:connect|transfer|put|pass|escalate|forward)\w*\s+(?:me|this|my \w+)\s+"
            rf"(?:through\s+|over\s+)?(?:to|with)\s+{_SOMEONE}",
            # "get me a representative", "I need a human", "I want a real person"
            rf"\b(?:get|give|find) me\s+{_SOMEONE}",
            rf"\bI (?:need|want|would like|'d like|'d rather(?: deal with| have)?)\s+"
            rf"(?:to reach\s+)?{_SOMEONE}",
            # "is there a human I can talk to?"
            r"\b(?:someone|somebody|a human|a person|anyone)\s+(?:I|we)\s+(?:can|could)\s+"
            r"(?:talk|speak|chat)",
            # "agent please", "human!", "real person"
            r"\b(?:human|person|agent|representative|operator)\s*(?:please|pls|now)\b",
            r"^\W*(?:human|agent|person|representative|operator|real person|live agent)\W*$",
            r"\bnot (?:a |the |with a )?(?:bot|robot|machine|ai)\b",
        ]
    ),
    re.IGNORECASE,
)
_A_REAL_PERSON = r"\b(?:(?:real|live|actual) (?:person|human|agent)s?|(?:someone|somebody) real)\b"
_MENTIONS_A_PERSON = re.compile(_A_REAL_PERSON, re.IGNORECASE)
# A question about when such a person answers ("how long till a real person replies?") asks for
# the live chat's reply time, not for a person now: that one sentence does not count.
_REPLY_TIME = re.compile(
    rf"\b(?:how (?:long|soon|fast|quickly)|when|what time)\b[^.?!]*?{_A_REAL_PERSON}"
    r"[^.?!]*?\b(?:repl|answer|respond|gets? back|pick|join|available|online|start|work)",
    re.IGNORECASE,
)
# Other phrasings, recognised by meaning (the knowledge base's embedding model).
EXAMPLES = [
    "I want to talk to a real person",
    "Can I speak to a human agent?",
    "Connect me with customer service staff",
    "I'd like to chat with someone from your team, not a bot",
    "Please get a person to help me",
    "Let me speak to your manager",
]
SIMILARITY = 0.75


_EXAMPLE_VECTORS: "weakref.WeakKeyDictionary[Embedder, Vectors]" = weakref.WeakKeyDictionary()


def _example_vectors(embedder: Embedder) -> Vectors:
    if (vectors := _EXAMPLE_VECTORS.get(embedder)) is None:
        vectors = _EXAMPLE_VECTORS[embedder] = embedder.embed(EXAMPLES)
    return vectors


def asks_for_a_person(
    message: str, embedder: Embedder | None = None, *, vector: Vector | None = None
) -> bool:
    """Whether the customer asks to be passed to a person, in any phrasing (`vector`: the
    message's vector by `embedder`, when the caller has it already)."""
    if _WANTS_A_PERSON.search(message):
        return True
    if _MENTIONS_A_PERSON.search(_REPLY_TIME.sub(" ", message)):
        return True
    if embedder is None:
        return False
    if vector is None:
        vector = embedder.embed([message])[0]
    return bool(np.max(_example_vectors(embedder) @ vector) >= SIMILARITY)
