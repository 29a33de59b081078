"""Read the knowledge base: `Q:`/`A:` entries, and other markdown as passages under its headings."""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

KNOWLEDGE_SUFFIXES = (".md", ".txt")
_QUESTION_LINE = re.compile(r"^\s*Q:\s*(.*)$")
_ANSWER_LINE = re.compile(r"^\s*A:\s*(.*)$")
_HEADING_LINE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
PASSAGE_MAX_WORDS = 250
ANSWER_WORDS = 40  # of an answer, embedded with its question


class EntryKind(StrEnum):
    QA = "qa"
    PASSAGE = "passage"


@dataclass(frozen=True)
class Entry:
    id: str
    question: str  # the question of a Q/A entry, the heading path of a passage
    answer: str  # the answer, or the passage's text
    source: str
    kind: EntryKind = EntryKind.QA
    # Other ways customers ask the same question (the entry's further `Q:` lines): retrieval
    # matches them as it matches the question; the id and the answer's title use `question`.
    phrasings: tuple[str, ...] = ()

    @property
    def questions(self) -> tuple[str, ...]:
        """The question and its other phrasings."""
        return (self.question, *self.phrasings)

    @property
    def text(self) -> str:
        return "\n".join([*self.questions, self.answer])

    @property
    def units(self) -> list[str]:
        """The answer's smallest self-contained statements (see `answer_units`)."""
        return answer_units(self.answer)

    @property
    def dense_texts(self) -> tuple[str, str]:
        """What dense retrieval compares a query with: the question (or a passage's title) alone,
        and the question with the start of its answer."""
        return self.question, f"{self.question}: {' '.join(self.answer.split()[:ANSWER_WORDS])}"


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*)$")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def answer_units(answer: str) -> list[str]:
    """Split an answer into the units an answer is built from: its sentences, and each list item
    together with the sentence that introduces the list ("Delivery times depend on …:\n- Express:
    1-2 business days"), so that a unit never loses what it is about."""
    units: list[str] = []
    lead_in, introduced = "", False
    for line in answer.splitlines():
        if not line.strip():
            continue
        if item := _LIST_ITEM.match(line):
            units.append(f"{lead_in}\n- {item.group(1).strip()}" if lead_in else item.group(1))
            introduced = True
            continue
        if lead_in and not introduced:  # a sentence ending in ":" that no list followed
            units.append(lead_in)
        sentences = [part.strip() for part in _SENTENCE_BREAK.split(line.strip()) if part.strip()]
        lead_in = sentences.pop() if sentences and sentences[-1].endswith(":") else ""
        introduced = False
        units.extend(sentences)
    if lead_in and not introduced:
        units.append(lead_in)
    return _merge_short(units)


def _merge_short(units: list[str], *, min_words: int = 3) -> list[str]:
    """A unit too short to stand alone ("Yes.") belongs with the one after it."""
    merged: list[str] = []
    carry = ""
    for unit in units:
        unit = f"{carry} {unit}" if carry else unit
        if len(unit.split()) < min_words and "\n" not in unit:
            carry = unit
            continue
        merged.append(unit)
        carry = ""
    if carry and merged:
        merged[-1] = f"{merged[-1]} {carry}"
    elif carry:
        merged.append(carry)
    return merged


@dataclass(frozen=True)
class ParsedEntry:
    question: str
    answer: str
    kind: EntryKind
    # The lines it was read from, [first, last + 1) (of a Q/A entry: its first Q line to the
    # last line of its answer), so that an entry can be edited in place.
    lines: tuple[int, int] = (0, 0)
    phrasings: tuple[str, ...] = ()


def parse_document(text: str) -> list[ParsedEntry]:
    """Split one document; only a line's start opens a Q or an A, a heading closes an answer.
    `Q:` lines one under the other before an `A:` are one entry asked several ways (the first is
    its question, the others its phrasings); a `Q:` after a blank line starts a new entry."""
    parsed: list[ParsedEntry] = []
    headings: list[str] = []
    questions: list[list[str]] | None = None  # the open entry's Q lines, with their continuations
    answer: list[str] | None = None
    opened = 0  # the line of the open entry's first Q
    last = 0  # the last line with text of the open entry
    prose: list[str] = []

    def flush_entry() -> None:
        nonlocal questions, answer
        if questions is not None and answer is not None:
            asked = [q for q in (" ".join(lines).strip() for lines in questions) if q]
            a = "\n".join(answer).strip()
            if asked and a:
                first, *others = asked
                phrasings = tuple(dict.fromkeys(q for q in others if q != first))
                parsed.append(ParsedEntry(first, a, EntryKind.QA, (opened, last + 1), phrasings))
        questions, answer = None, None

    def flush_prose() -> None:
        body = "\n".join(prose).strip()
        prose.clear()
        if body and len(body.split()) >= 3:
            title = " > ".join(headings) or "Introduction"
            for chunk in _chunks(body, max_words=PASSAGE_MAX_WORDS):
                parsed.append(ParsedEntry(title, chunk, EntryKind.PASSAGE))

    for number, line in enumerate(text.splitlines()):
        if match := _QUESTION_LINE.match(line):
            if questions is not None and answer is None and last == number - 1:
                questions.append([match.group(1)])  # the line after a Q: one more way to ask it
                last = number
                continue
            flush_entry()
            flush_prose()
            questions, opened, last = [[match.group(1)]], number, number
        elif questions is not None and answer is None and (match := _ANSWER_LINE.match(line)):
            answer, last = [match.group(1)], number
        elif heading := _HEADING_LINE.match(line):
            flush_entry()
            flush_prose()
            level = len(heading.group(1))
            headings[level - 1 :] = [heading.group(2)]
        elif answer is not None:
            answer.append(line.rstrip())
            last = number if line.strip() else last
        elif questions is not None:
            if line.strip():
                questions[-1].append(line.strip())
                last = number
        else:
            prose.append(line.rstrip())
    flush_entry()
    flush_prose()
    return parsed


def _chunks(body: str, *, max_words: int) -> list[str]:
    """Paragraph-aligned pieces of at most about `max_words` words."""
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in re.split(r"\n\s*\n", body):
        if current and len(" ".join(current).split()) + len(paragraph.split()) > max_words:
            chunks.append("\n\n".join(current))
            current = []
        current.append(paragraph.strip())
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def slugify(text: str, *, max_length: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "entry"


def knowledge_files(path: Path) -> list[Path]:
    """The files a knowledge path stands for, in a stable order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"knowledge path {path} does not exist")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in KNOWLEDGE_SUFFIXES)


def entry_ids(name: str, parsed: list[ParsedEntry]) -> list[str]:
    """The ids of one file's entries: its name and the question's slug, numbered when repeated."""
    ids: list[str] = []
    seen: set[str] = set()
    for entry in parsed:
        base_id = f"{name}#{slugify(entry.question)}"
        entry_id, n = base_id, 2
        while entry_id in seen:
            entry_id, n = f"{base_id}-{n}", n + 1
        seen.add(entry_id)
        ids.append(entry_id)
    return ids


def file_name(file: Path, root: Path) -> str:
    """How entry ids name a file: its path under the knowledge root, without its suffix."""
    return file.relative_to(root).with_suffix("").as_posix()


def load_entries(files: Iterable[Path], *, root: Path) -> list[Entry]:
    """Parse every file into entries whose ids (file + slug) stay stable across edits."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for file in files:
        name = file_name(file, root)
        parsed = parse_document(file.read_text(encoding="utf-8"))
        for entry_id, entry in zip(entry_ids(name, parsed), parsed, strict=True):
            unique, n = entry_id, 2
            while unique in seen:  # "faq.md" and "faq.txt" both name "faq"
                unique, n = f"{entry_id}-{n}", n + 1
            seen.add(unique)
            entries.append(
                Entry(unique, entry.question, entry.answer, name, entry.kind, entry.phrasings)
            )
    return entries


def phrasing_rows(entries: Iterable[Entry]) -> list[tuple[int, str]]:
    """Every phrasing of the entries as (entry index, text), in entry order: the rows of the
    phrasing vectors."""
    return [(i, text) for i, entry in enumerate(entries) for text in entry.phrasings]


def content_version(entries: Iterable[Entry]) -> str:
    """A short hash of the loaded content: equal bases have equal versions."""
    digest = hashlib.sha256()
    for entry in entries:
        asked = "\0".join(entry.questions)
        digest.update(f"{entry.id}\0{asked}\0{entry.answer}\0".encode())
    return digest.hexdigest()[:12]
