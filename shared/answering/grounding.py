"""Checks on a model's draft, made outside the model: what it says must come from the entries.

A draft is refused when it repeats our instructions, cites an entry that was not retrieved, states
a number, amount, duration, email, phone number or URL found in none of the retrieved entries,
names a place, person or product they do not name, or makes a sentence whose content words the
entries do not support. The service then answers with the
best entry's own text instead, so even a tiny model cannot invent a policy.
"""

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared.knowledge import SearchHit
from shared.knowledge.search import tokenize
from shared.llm.base import StopGeneration
from shared.llm.prompt import instruction_texts

MAX_ANSWER_CHARS = 1200
MIN_SUPPORT = 0.6  # share of a sentence's content words that must occur in the entries
ECHO_WORDS = 6  # a run of this many words from our instructions is an echo

_CITATION = re.compile(r"\[([^\[\]\s]+#[^\[\]\s]+)\]")
_BARE_ID = re.compile(r"\b[\w./-]+#[a-z0-9][a-z0-9-]*\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|co|uk|de)\b\S*"
)
# A figure is a whole run of digits and joiners: "1-800-787-7678", "5-7", "$1,000.50", "2:30".
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|cannot|without|n't)\b|n't\b", re.IGNORECASE)
_TURN = re.compile(r"^\s*(?:Q|A|Customer|Question|Article|User|Agent|Assistant)\s*:", re.I)
_LEADING_LABEL = re.compile(r"^\s*(?:A|Answer|Agent|Assistant|Support agent)\s*:\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*")
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "sixty": "60", "ninety": "90", "hundred": "100", "thousand": "1000",
}  # fmt: skip


# Words that carry no claim of their own, on top of the retrieval stop words.
FILLER_TERMS = set(tokenize([
    "yes no we our ours us you your yours i me my please thank thanks sorry hello hi can could "
    "will would may might must should also just so sure happy help glad"
])[0])  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str | None = None  # stable, stored as the answer's `fallback_reason`
    detail: str | None = None  # for operators (may quote the draft): never logged at INFO


def clean_output(text: str, *, max_chars: int = MAX_ANSWER_CHARS) -> str:
    """Drop a leading role label, stop at an invented next turn, cap the length at a sentence."""
    text = _LEADING_LABEL.sub("", text.lstrip())
    kept: list[str] = []
    for line in text.splitlines():
        if kept and _TURN.match(line):
            break
        kept.append(line)
    text = "\n".join(kept).strip()
    if len(text) > max_chars:
        cut = text[:max_chars]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("\n"))
        text = cut[: end + 1] if end > max_chars // 2 else cut
    return text.strip()


def invents_turn(text: str) -> bool:
    """Whether the model went on to write another turn of the conversation."""
    return any(_TURN.match(line) for line in text.lstrip().splitlines()[1:])


def strip_citations(text: str) -> str:
    """The customer-facing text: citations become sources, not bracketed ids."""
    return re.sub(r"\s+([.,!?])", r"\1", re.sub(r"\s*" + _CITATION.pattern, "", text)).strip()


def _numbers(text: str) -> set[str]:
    """The figures a text states, whole ("1-800-787-7678"), and number words as digits."""
    found = {re.sub(r"(?<=\d),(?=\d{3})", "", n) for n in _NUMBER.findall(text)}
    words = _WORD.findall(text.lower())
    found |= {NUMBER_WORDS[w] for w in words if w in NUMBER_WORDS}
    return found


def _allowed_numbers(text: str) -> set[str]:
    """Figures an answer may state: each whole figure of the text and each of its parts
    ("5-7 days" allows "5 to 7 days"; "1-800-787-7678" does not allow "1-800-800-7678")."""
    whole = _numbers(text)
    return whole | {part for n in whole for part in re.split(r"[.,:/-]", n) if part}


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


@dataclass
class Grounding:
    """What the retrieved entries allow an answer to say."""

    context: list[SearchHit]
    question: str
    entry_ids: set[str] = field(init=False)
    _text: str = field(init=False)
    _numbers: set[str] = field(init=False)
    _terms: set[str] = field(init=False)
    _echo: set[tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self.entry_ids = {hit.entry.id for hit in self.context}
        self._text = "\n".join(hit.entry.text for hit in self.context)
        # Numbers the customer gave ("after three weeks") may be repeated back.
        self._numbers = _allowed_numbers(self._text) | _allowed_numbers(self.question)
        self._terms = set(tokenize([self._text])[0])
        self._sentences = [
            (set(tokenize([sentence])[0]) - FILLER_TERMS, _negated(sentence))
            for hit in self.context
            for sentence in split_sentences(hit.entry.answer)
        ]
        self._echo = {
            gram
            for text in instruction_texts()
            for gram in _ngrams(_WORD.findall(text.lower()), ECHO_WORDS)
        } - set(_ngrams(_WORD.findall(self._text.lower()), ECHO_WORDS))

    def check_sentence(self, sentence: str) -> Verdict:
        """Check one sentence of a draft (used while streaming, before it reaches the customer)."""
        for cited in _CITATION.findall(sentence) + _BARE_ID.findall(sentence):
            if cited not in self.entry_ids:
                return Verdict(
                    False, "cites_unknown_entry", f"cites {cited!r}, which was not retrieved"
                )
        text = _CITATION.sub("", sentence)
        lowered = self._text.lower()
        for email in _EMAIL.findall(text):
            if email.lower() not in lowered:
                return Verdict(
                    False, "unsupported_email", f"states the email {email!r}, found in no entry"
                )
        for url in _URL.findall(_EMAIL.sub("", text)):
            if url.lower().rstrip(".,;:!?)") not in lowered:
                return Verdict(
                    False, "unsupported_url", f"states the address {url!r}, found in no entry"
                )
        plain = _EMAIL.sub("", text)
        for number in sorted(_numbers(plain), key=plain.find):
            if number not in self._numbers:
                return Verdict(
                    False, "unsupported_figure", f"states the number {number!r}, found in no entry"
                )
        for name in _NAME.findall(text.strip()):
            if name.lower() not in lowered and name.lower() not in self.question.lower():
                return Verdict(False, "unsupported_name", f"names {name!r}, found in no entry")
        if set(_ngrams(_WORD.findall(text.lower()), ECHO_WORDS)) & self._echo:
            return Verdict(False, "echoes_instructions", "repeats the assistant's instructions")
        terms = [term for term in tokenize([text])[0] if term not in FILLER_TERMS]
        if len(terms) >= 2:
            supported = sum(term in self._terms for term in terms) / len(terms)
            if supported < MIN_SUPPORT:
                return Verdict(
                    False, "unsupported_claim", f"says what no entry supports: {text.strip()!r}"
                )
            if self._contradicts(set(terms), text):
                return Verdict(
                    False, "contradicts_entry", f"turns an entry around: {text.strip()!r}"
                )
        return Verdict(True)

    def _contradicts(self, terms: set[str], text: str) -> bool:
        """Whether the entry sentence closest to `text` says it with the opposite polarity
        ("we never sell your data" against "yes, we sell your data")."""
        best, overlap = None, 0
        for sentence_terms, negated in self._sentences:
            shared = len(terms & sentence_terms)
            if shared > overlap:
                best, overlap = negated, shared
        return best is not None and overlap >= 2 and best != _negated(text)

    def check(self, draft: str) -> Verdict:
        """Check a whole draft."""
        if not draft.strip():
            return Verdict(False, "empty_draft", "the model gave no answer")
        for sentence in split_sentences(draft):
            verdict = self.check_sentence(sentence)
            if not verdict.ok:
                return verdict
        best = _numbers(self.context[0].entry.answer) if self.context else set()
        if best and not best & _numbers(draft):
            return Verdict(False, "omits_figures", "leaves out every figure of the best entry")
        return Verdict(True)


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _ngrams(words: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


class GatedStream:
    """Passes a model's tokens on a sentence at a time, each sentence checked first.

    The first sentence that fails stops the stream (`StopGeneration`), so nothing unchecked ever
    reaches the customer; `text` keeps the whole draft for the final decision.
    """

    def __init__(self, grounding: Grounding, publish: Callable[[str], None] | None) -> None:
        self.grounding = grounding
        self.publish = publish
        self.text = ""
        self.published = 0  # characters of the cleaned draft already sent
        self.verdict = Verdict(True)

    def feed(self, token: str) -> None:
        self.text += token
        if invents_turn(self.text) or len(self.text) > MAX_ANSWER_CHARS:
            raise StopGeneration("the draft ended or reached its length limit")
        cleaned = clean_output(self.text)
        # Everything up to the last sentence end is complete and can be checked.
        ends = [m.end() for m in _SENTENCE_END.finditer(cleaned)]
        complete = ends[-1] if ends else 0
        if complete > self.published:
            self._release(cleaned[self.published : complete])
            self.published = complete

    def finish(self) -> str:
        """The cleaned draft; the unsent tail is checked and published too."""
        cleaned = clean_output(self.text)
        if self.verdict.ok and len(cleaned) > self.published:
            with contextlib.suppress(StopGeneration):
                self._release(cleaned[self.published :])
        return cleaned

    def _release(self, chunk: str) -> None:
        for sentence in split_sentences(chunk):
            verdict = self.grounding.check_sentence(sentence)
            if not verdict.ok:
                self.verdict = verdict
                raise StopGeneration(verdict.code or "ungrounded")
        if self.publish is not None and chunk.strip():
            trailing = chunk[len(chunk.rstrip()) :]
            self.publish(strip_citations(chunk) + trailing)
