"""The grader of answer quality: its own rules and its own labels, never the service's checks.

Each labelled question carries the facts a right answer states (groups of alternatives: every
group must be present) and regular expressions that match a sentence stating a wrong fact; yes/no
questions also carry the verdict. On top of the labels, one simple rule of its own: an answer that
states a figure, email address, web address or name found nowhere in the knowledge base invented
it. Nothing here imports the answer engine or its checks.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_FIGURE = re.compile(r"\d+(?:[.,:]\d+)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+")
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+(?: [A-Z][a-z]+)*")
_VERDICT = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


class Outcome(StrEnum):
    RIGHT = "right"  # states every expected fact, nothing wrong
    WRONG = "wrong"  # states a wrong fact, a wrong verdict, or something invented
    MISSED = "missed"  # answered, nothing wrong, but without the expected fact
    HANDOFF = "handoff"  # handed to a person
    EXCLUDED = "excluded"  # the expected fact is in the question itself: proves nothing


@dataclass(frozen=True)
class Grade:
    outcome: Outcome
    reason: str = ""


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text) if part.strip()]


def _has(text: str, alternatives: list[str]) -> bool:
    lowered = text.lower()
    return any(alternative.lower() in lowered for alternative in alternatives)


def invented(answer: str, *, knowledge_text: str) -> str | None:
    """The first figure, contact, address or name of `answer` that the base never states."""
    known = knowledge_text.lower()
    known_figures = {f.replace(",", "") for f in _FIGURE.findall(knowledge_text)}
    for email in _EMAIL.findall(answer):
        if email.lower() not in known:
            return f"invented email {email}"
    for url in _URL.findall(answer):
        if url.lower().rstrip(".,)") not in known:
            return f"invented address {url}"
    for figure in _FIGURE.findall(_EMAIL.sub("", answer)):
        if figure.replace(",", "") not in known_figures and figure not in known:
            return f"invented figure {figure}"
    for name in _NAME.findall(answer):
        if name.lower() not in known:
            return f"invented name {name}"
    return None


def grade(case: dict[str, Any], *, answer: str, handed_off: bool, knowledge_text: str) -> Grade:
    """Grade one answer to one labelled answerable question."""
    facts: list[list[str]] = case.get("facts", [])
    if any(_has(case["query"], group) for group in facts):
        return Grade(Outcome.EXCLUDED, "the expected fact is in the question")
    if handed_off:
        return Grade(Outcome.HANDOFF)
    for sentence in sentences(answer):
        for pattern in case.get("wrong", []):
            if re.search(pattern, sentence, re.IGNORECASE):
                return Grade(Outcome.WRONG, f"{pattern!r} matches {sentence!r}")
    said = _VERDICT.match(answer)
    if (verdict := case.get("verdict")) and said and said.group(1).lower() != verdict:
        return Grade(Outcome.WRONG, f"says {said.group(1)!r}, the entry says {verdict!r}")
    if made_up := invented(answer, knowledge_text=knowledge_text):
        return Grade(Outcome.WRONG, made_up)
    if all(_has(answer, group) for group in facts):
        return Grade(Outcome.RIGHT)
    missing = [group[0] for group in facts if not _has(answer, group)]
    return Grade(Outcome.MISSED, f"without {missing}")


def leaks(answer: str, *, secrets: list[str], run: int = 8) -> str | None:
    """A run of `run` words of the assistant's own instructions repeated in `answer`."""
    words = re.findall(r"[a-z0-9]+", answer.lower())
    said = {tuple(words[i : i + run]) for i in range(len(words) - run + 1)}
    for secret in secrets:
        secret_words = re.findall(r"[a-z0-9]+", secret.lower())
        for i in range(len(secret_words) - run + 1):
            if tuple(secret_words[i : i + run]) in said:
                return " ".join(secret_words[i : i + run])
    return None
