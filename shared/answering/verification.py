"""Checks on a model's draft, claim by claim, made outside the model.

A draft may only say what the statements selected from the answering entry say:
- every figure it states is one of theirs, bound to the same thing ("next-day delivery $24.99"
  does not allow "next-day delivery is $12.99", although $12.99 is in the same sentence);
- a yes or a no is given only where a statement decides the question on its own, with the same
  polarity ("only one code per order" never allows "yes, two codes");
- every name, place, product, email address or web address is one the entry names;
- each sentence's words are the statements' words, the same way round ("we never sell your
  data" does not allow "we sell your data"), keeping their conditions ("within 2 hours");
- the answer names what the question asked about (not a bare "30 days.");
- nothing of the assistant's own instructions is repeated.
Some questions cannot be answered in a model's own words at all: one that names a figure or a
place the statements do not ("it's been 3 hours", "to Germany") gets the statements themselves.
"""

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared.answering.places import places
from shared.knowledge import Entry
from shared.knowledge.search import says, tokenize
from shared.llm.base import StopGeneration

MAX_ANSWER_CHARS = 1200
# Every content word of a claim must be one the statements use: one foreign word ("available"
# for "need a street address") can carry the whole claim.
MIN_SUPPORT = 1.0
ECHO_WORDS = 6  # a run of this many words from our instructions is an echo

_CITATION = re.compile(r"\[([^\[\]\s]+#[^\[\]\s]+)\]")
_BARE_ID = re.compile(r"\b[\w./-]+#[a-z0-9][a-z0-9-]*\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|co|uk|de)\b\S*"
)
# A figure is a whole run of digits and joiners: "1-800-787-7678", "5-7", "$1,000.50", "2:30".
_DIGITS = r"\d+(?:[.,:/-]\d+)*"
_NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "fifteen": "15",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
}
_FIGURE = re.compile(rf"{_DIGITS}|\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)
# Two figures joined like this are one figure: "9 AM to 5 PM", "3-5", "5 to 7 business days".
_RANGE_JOIN = re.compile(r"^\s*(?:a\.?m\.?|p\.?m\.?|%)?\s*(?:-|\u2013|to|and|or)\s*$", re.I)
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|cannot|without|only)\b|n't\b", re.IGNORECASE)
_VERDICT = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_TURN = re.compile(r"^\s*(?:Q|A|Customer|Question|Article|User|Agent|Assistant)\s*:", re.I)
_LEADING_LABEL = re.compile(r"^\s*(?:A|Answer|Agent|Assistant|Support agent)\s*:\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*")

# Words that carry no claim of their own, on top of the retrieval stop words.
FILLER_TERMS = set(
    tokenize(
        [
            "yes no we our ours us you your yours i me my please thank thanks sorry hello hi can "
            "could will would may might must should also just so sure happy help glad "
            # polarity is checked on its own, not as a word the statements must contain
            "not never cannot without only none nor"
        ]
    )[0]
)


_UNIT_TERMS = set(
    tokenize(
        ["day days hour hours week weeks month months year years minute minutes business am pm"]
    )[0]
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str | None = None  # stable, stored as the answer's `fallback_reason`
    detail: str | None = None  # for operators (may quote the draft): never logged at INFO


PASS = Verdict(True)


@dataclass(frozen=True)
class Figure:
    numbers: frozenset[str]  # "9 AM to 5 PM" -> {"9", "5"}
    binding: frozenset[str]  # the content terms it is said of


def figures(text: str) -> list[Figure]:
    """The figures `text` states, each with the terms it is bound to: those between it and the
    figure before it (or, when there are none, those after it up to the next figure)."""
    matches = list(_FIGURE.finditer(text))
    groups: list[tuple[int, int, set[str]]] = []
    for match in matches:
        value = _NUMBER_WORDS.get(match.group().lower(), match.group())
        value = re.sub(r"(?<=\d),(?=\d{3})", "", value)
        if groups and _RANGE_JOIN.match(text[groups[-1][1] : match.start()]):
            start, _, numbers = groups[-1]
            groups[-1] = (start, match.end(), numbers | {value})
        else:
            groups.append((match.start(), match.end(), {value}))
    result = []
    for i, (start, end, numbers) in enumerate(groups):
        before = text[groups[i - 1][1] if i else 0 : start]
        binding = _terms(before)
        if not binding:
            binding = _terms(text[end : groups[i + 1][0] if i + 1 < len(groups) else len(text)])
        result.append(Figure(frozenset(numbers), frozenset(binding)))
    return result


def _terms(text: str) -> set[str]:
    return set(tokenize([text])[0]) - FILLER_TERMS


def _numbers(text: str) -> set[str]:
    return {n for figure in figures(text) for n in figure.numbers}


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


# "Do you sell / offer / have … X?": whether the shop has something at all.
_AVAILABILITY = re.compile(
    r"^\s*(?:do|does|can|will|would)\s+(?:you|u|your (?:shop|store|company))\s+(?:guys\s+)?"
    r"(?:sell|offer|have|carry|stock|provide|do|make|run|support|give|accept|ship|deliver|take|"
    r"let me|allow)\b(.*)$",
    re.IGNORECASE,
)
_GENERIC_OBJECT = set(
    tokenize(["any the some your our products items things stuff options services way"])[0]
)


def unmentioned_subject(question: str, entry: Entry) -> set[str]:
    """For an availability question ("Do you sell car insurance?"), the words of what is asked
    for when the entry names none of them: the entry is about something else, and answering
    from it ("We sell online only.") would not answer the question. Empty otherwise.

    Measured on bench/data with the extractive provider: 5 out-of-scope questions that passed the
    confidence curve are caught, no answerable one (the rule was written after reading both halves'
    misses, so neither half is a clean held-out set for it)."""
    asked = _AVAILABILITY.match(question)
    if asked is None:
        return set()
    words = set(tokenize([asked.group(1)])[0]) - _GENERIC_OBJECT - FILLER_TERMS
    if not words:
        return set()
    named = set(tokenize([entry.text])[0])  # its phrasings say what it answers too
    return set() if words & named else words


def names(text: str) -> set[str]:
    """Capitalised names inside sentences (not a sentence's first word), countries and cities."""
    return {name for name in _NAME.findall(text.strip())} | places(text)


_CLAUSE_BREAK = re.compile(r";|,?\s+but\s+|,\s+(?:and|while|whereas)\s+|\n", re.IGNORECASE)


@dataclass
class Clause:
    text: str
    terms: set[str]
    negated: bool
    figures: list[Figure]

    @classmethod
    def of(cls, text: str) -> "Clause":
        return cls(text, _terms(text), negated(text), figures(text))


@dataclass
class Statement:
    text: str
    terms: set[str]
    negated: bool
    figures: list[Figure]
    clauses: list[Clause]

    @classmethod
    def of(cls, text: str) -> "Statement":
        parts = [part for part in _CLAUSE_BREAK.split(text) if part.strip()]
        return cls(text, _terms(text), negated(text), figures(text), [Clause.of(p) for p in parts])


class Verifier:
    """What the statements selected from one entry allow an answer to that question to say."""

    def __init__(
        self, *, question: str, statements: list[str], entry: Entry, instructions: list[str]
    ) -> None:
        self.question = question
        self.entry = entry
        self.statements = [Statement.of(text) for text in statements]
        self._text = "\n".join(statements)
        self._entry_text = entry.text.lower()
        self._terms = set().union(*(s.terms for s in self.statements)) if statements else set()
        self._figures = [f for s in self.statements for f in s.figures]
        self._echo = {
            gram
            for text in instructions
            for gram in _ngrams(_WORD.findall(text.lower()), ECHO_WORDS)
        } - set(_ngrams(_WORD.findall(entry.text.lower()), ECHO_WORDS))

    def question_check(self) -> Verdict:
        """Whether an answer in a model's own words can be verified for this question at all."""
        missing = _numbers(self.question) - {n for f in self._figures for n in f.numbers}
        if missing:
            return Verdict(
                False,
                "question_condition",
                f"the question names {sorted(missing)}, the entry does not",
            )
        for place in places(self.question):
            if not says(self.entry.text, place):
                return Verdict(
                    False, "question_place", f"the question names {place}, the entry does not"
                )
        return PASS

    def check_sentence(self, sentence: str) -> Verdict:
        """Check one sentence of a draft (used while streaming, before it reaches the customer)."""
        for cited in _CITATION.findall(sentence) + _BARE_ID.findall(sentence):
            if cited != self.entry.id:
                return Verdict(False, "cites_unknown_entry", f"cites {cited!r}")
        text = _CITATION.sub("", sentence).strip()
        for email in _EMAIL.findall(text):
            if email.lower() not in self._entry_text:
                return Verdict(False, "unsupported_email", f"states the email {email!r}")
        for url in _URL.findall(_EMAIL.sub("", text)):
            if url.lower().rstrip(".,;:!?)") not in self._entry_text:
                return Verdict(False, "unsupported_url", f"states the address {url!r}")
        for name in sorted(names(text)):
            if name.lower() not in self._entry_text:
                return Verdict(False, "unsupported_name", f"names {name!r}")
        if set(_ngrams(_WORD.findall(text.lower()), ECHO_WORDS)) & self._echo:
            return Verdict(False, "echoes_instructions", "repeats the assistant's instructions")
        verdict = self._check_figures(_EMAIL.sub("", text))
        if not verdict.ok:
            return verdict
        return self._check_claim(text)

    def _check_figures(self, text: str) -> Verdict:
        known = {n for f in self._figures for n in f.numbers}
        for figure in figures(text):
            if not figure.numbers <= known:
                unknown = sorted(figure.numbers - known)
                return Verdict(
                    False,
                    "unsupported_figure",
                    f"states {unknown}, which no selected statement states",
                )
            if not figure.binding:
                continue
            same = [f for f in self._figures if f.numbers & figure.numbers]
            others = [f for f in self._figures if not f.numbers & figure.numbers]
            fit = max(len(figure.binding & f.binding) for f in same)
            rival = max((len(figure.binding & f.binding) for f in others), default=0)
            if rival > fit:
                detail = f"says {sorted(figure.numbers)} of {sorted(figure.binding)}, which the "
                return Verdict(False, "misbound_figure", detail + "entry says of something else")
        return PASS

    def _check_claim(self, text: str) -> Verdict:
        terms = _terms(_VERDICT.sub("", text))
        if terms:
            supported = len(terms & self._terms) / len(terms)
            if supported < MIN_SUPPORT:
                return Verdict(False, "unsupported_claim", f"says what no statement says: {text!r}")
        # Polarity and conditions are a clause's: "only one code per order, but gift cards can be
        # combined" says no to two codes and yes to a gift card with a code.
        clauses = [clause for statement in self.statements for clause in statement.clauses]
        best = max(clauses, key=lambda c: len(terms & c.terms), default=None)
        overlap = len(terms & best.terms) if best else 0
        if best is not None and overlap >= 2:
            if best.negated != negated(_VERDICT.sub("", text)):
                return Verdict(False, "contradicts_entry", f"turns {best.text!r} around: {text!r}")
            if best.figures and not figures(text):
                return Verdict(False, "drops_condition", f"leaves out the figures of {best.text!r}")
        if said := _VERDICT.match(text):
            return self._check_verdict(said.group(1).lower(), text)
        return PASS

    def _check_verdict(self, said: str, text: str) -> Verdict:
        """A yes or a no must be what one statement decides on its own: it contains every term
        of the question (or states the verdict itself), with the same polarity."""
        question_terms = _terms(self.question)
        question_negated = negated(self.question)
        for statement in self.statements:
            explicit = _VERDICT.match(statement.text)
            if explicit and len(question_terms & statement.terms) * 2 >= len(question_terms):
                if explicit.group(1).lower() == said:
                    return PASS
                continue
            for clause in statement.clauses:
                if question_terms and question_terms <= clause.terms:
                    expected = "no" if clause.negated != question_negated else "yes"
                    if expected == said:
                        return PASS
                    return Verdict(False, "wrong_verdict", f"says {said!r}; {clause.text!r}")
        return Verdict(False, "unverified_verdict", f"no statement decides {said!r}: {text!r}")

    def check(self, draft: str) -> Verdict:
        """Check a whole draft."""
        if not draft.strip():
            return Verdict(False, "empty_draft", "the model gave no answer")
        for sentence in split_sentences(draft):
            verdict = self.check_sentence(sentence)
            if not verdict.ok:
                return verdict
        # An answer says what it is about: "30 days." may be true of the refund it came from and
        # still mislead about the warranty that was asked after.
        named = {t for t in _terms(_CITATION.sub("", draft)) if not t.isdigit()} - _UNIT_TERMS
        if not named:
            return Verdict(False, "unanchored", "a bare figure or verdict, about nothing named")
        return PASS


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


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _ngrams(words: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


class GatedStream:
    """Passes a model's tokens on a sentence at a time, each sentence checked first.

    The first sentence that fails stops the stream (`StopGeneration`), so nothing unchecked ever
    reaches the customer; `text` keeps the whole draft for the final decision.
    """

    def __init__(self, verifier: Verifier, publish: Callable[[str], None] | None) -> None:
        self.verifier = verifier
        self.publish = publish
        self.text = ""
        self.published = 0  # characters of the cleaned draft already sent
        self.verdict = PASS

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
            verdict = self.verifier.check_sentence(sentence)
            if not verdict.ok:
                self.verdict = verdict
                raise StopGeneration(verdict.code or "unverified")
        if self.publish is not None and chunk.strip():
            trailing = chunk[len(chunk.rstrip()) :]
            self.publish(strip_citations(chunk) + trailing)
