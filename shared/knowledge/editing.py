"""Changing the knowledge files: add, edit and remove `Q:`/`A:` entries in place.

The files stay what a person (or git) reads: an entry is written as a `Q:` line (one more for each
other phrasing of its question), an `A:` line and its continuation lines, separated from its
neighbours by a blank line; nothing else in the file moves. Every change takes a lock beside the
files (one writer at a time, across processes) and replaces the file atomically (a reader sees the
old file or the new one, never half of one).
"""

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from shared.core.errors import AppError, NotFound
from shared.knowledge.loader import (
    EntryKind,
    ParsedEntry,
    entry_ids,
    file_name,
    knowledge_files,
    parse_document,
)

LOCK_NAME = ".support-assistant.lock"
LEARNED_FILE = "learned.md"  # where approved suggestions go, under a knowledge folder
LEARNED_HEADING = "# Learned from conversations"
_STRUCTURE = re.compile(r"^\s*(?:Q:|A:|#{1,6}\s)")
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 4000
MAX_PHRASINGS = 20


class EntryNotFound(NotFound):
    code = "entry_not_found"


class InvalidEntry(AppError):
    status_code = 422
    code = "invalid_entry"


@dataclass(frozen=True)
class EntryText:
    """A question, its other phrasings and its answer as they will be written. Phrasings None:
    those the entry has (an edit that does not mention them keeps them)."""

    question: str
    answer: str
    phrasings: tuple[str, ...] | None = None

    @classmethod
    def checked(
        cls, question: str, answer: str, phrasings: Sequence[str] | None = None
    ) -> "EntryText":
        """Refuses what would not read back as the same entry: a question over several lines, an
        answer line that would open another entry or a heading, empty or oversized text."""
        question = _checked_question(question)
        lines = [line.rstrip() for line in answer.strip().splitlines()]
        if not any(lines):
            raise InvalidEntry("an entry needs a question and an answer")
        if len(answer) > MAX_ANSWER_CHARS:
            raise InvalidEntry(f"at most {MAX_ANSWER_CHARS} characters of answer")
        if any(_STRUCTURE.match(line) for line in lines):
            raise InvalidEntry("a line may not start with 'Q:', 'A:' or a markdown heading")
        if phrasings is not None:
            if len(phrasings) > MAX_PHRASINGS:
                raise InvalidEntry(f"at most {MAX_PHRASINGS} phrasings of a question")
            unique: dict[str, str] = {question.casefold(): question}
            for phrasing in phrasings:
                phrasing = _checked_question(phrasing)
                unique.setdefault(phrasing.casefold(), phrasing)
            phrasings = tuple(list(unique.values())[1:])
        return cls(question, "\n".join(lines), phrasings)

    def block(self) -> list[str]:
        first, *rest = self.answer.splitlines()
        asked = [f"Q: {q}" for q in (self.question, *(self.phrasings or ()))]
        return [*asked, f"A: {first}", *rest]


def _checked_question(question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise InvalidEntry("an entry needs a question and an answer")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidEntry(f"at most {MAX_QUESTION_CHARS} characters of question")
    if _STRUCTURE.match(question):
        raise InvalidEntry("a question may not start with 'Q:', 'A:' or a markdown heading")
    return question


@dataclass(frozen=True)
class EntryChange:
    entry_id: str  # after the change (before it, for a removal)
    file: str  # the file's path under the knowledge root
    before: EntryText | None
    after: EntryText | None


class KnowledgeFiles:
    """The knowledge files under `path` (a folder, or one file) as entries to change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path if path.is_dir() else path.parent

    def add(self, text: EntryText, *, file: str | None = None) -> EntryChange:
        """Append an entry to `file` (a path under the knowledge folder; `learned.md` unless
        said), created with a heading if it does not exist."""
        text = replace(text, phrasings=text.phrasings or ())
        target = self._target(file)
        with self._locked():
            lines = _read_lines(target)
            for found_id, entry in self._entries(target, lines):
                if (entry.question, entry.answer) == (text.question, text.answer):
                    # Written already (say, by an approval whose commit then failed): adding it
                    # again would only make a duplicate.
                    return EntryChange(found_id, self._relative(target), None, _text_of(entry))
            if not lines:
                lines = [LEARNED_HEADING] if target.name == LEARNED_FILE else []
            while lines and not lines[-1].strip():
                lines.pop()
            lines += ["", *text.block()] if lines else text.block()
            _write_lines(target, lines)
            entry_id = self._id_of(target, text.question, last=True)
        return EntryChange(entry_id, self._relative(target), None, text)

    def update(self, entry_id: str, text: EntryText) -> EntryChange:
        """Rewrite an entry in place. Its id follows its question: a new question, a new id."""
        with self._locked():
            target, lines, found = self._find(entry_id)
            if text.phrasings is None:  # the entry's own, less the new question if among them
                text = EntryText.checked(text.question, text.answer, found.phrasings)
            start, end = found.lines
            lines[start:end] = text.block()
            _write_lines(target, lines)
            new_id = self._id_at(target, start)
        return EntryChange(new_id, self._relative(target), _text_of(found), text)

    def add_phrasing(self, entry_id: str, phrasing: str) -> EntryChange:
        """Add one more way of asking an entry's question (say, a customer's own words that
        retrieval missed); the entry keeps its id."""
        phrasing = _checked_question(phrasing)
        with self._locked():
            target, lines, found = self._find(entry_id)
            before = _text_of(found)
            if phrasing.casefold() in {q.casefold() for q in (found.question, *found.phrasings)}:
                return EntryChange(entry_id, self._relative(target), before, before)
            if len(found.phrasings) >= MAX_PHRASINGS:
                raise InvalidEntry(f"at most {MAX_PHRASINGS} phrasings of a question")
            # Only the new line is checked: the entry as it is was read from the file.
            text = replace(before, phrasings=(*found.phrasings, phrasing))
            start, end = found.lines
            lines[start:end] = text.block()
            _write_lines(target, lines)
        return EntryChange(entry_id, self._relative(target), before, text)

    def remove(self, entry_id: str) -> EntryChange:
        """Delete an entry and the blank line after it."""
        with self._locked():
            target, lines, found = self._find(entry_id)
            start, end = found.lines
            if end < len(lines) and not lines[end].strip():
                end += 1
            del lines[start:end]
            _write_lines(target, lines)
        return EntryChange(entry_id, self._relative(target), _text_of(found), None)

    def _target(self, file: str | None) -> Path:
        if self.path.is_file():
            return self.path
        name = file or LEARNED_FILE
        target = (self.root / name).resolve()
        if not target.is_relative_to(self.root.resolve()) or target.suffix not in (".md", ".txt"):
            raise InvalidEntry("the file must be a .md or .txt file inside the knowledge folder")
        return target

    def _relative(self, file: Path) -> str:
        return file.resolve().relative_to(self.root.resolve()).as_posix()

    def _find(self, entry_id: str) -> tuple[Path, list[str], ParsedEntry]:
        for file in knowledge_files(self.path):
            name = file_name(file, self.root)
            if not entry_id.startswith(f"{name}#"):
                continue
            lines = _read_lines(file)
            parsed = parse_document("\n".join(lines))
            for found_id, entry in zip(entry_ids(name, parsed), parsed, strict=True):
                if found_id == entry_id:
                    if entry.kind is not EntryKind.QA:
                        raise InvalidEntry("only Q:/A: entries can be changed here")
                    return file, lines, entry
        raise EntryNotFound(f"no entry {entry_id!r} in the knowledge files")

    def _entries(self, file: Path, lines: list[str]) -> list[tuple[str, ParsedEntry]]:
        parsed = parse_document("\n".join(lines))
        return list(zip(entry_ids(file_name(file, self.root), parsed), parsed, strict=True))

    def _id_at(self, file: Path, line: int) -> str:
        parsed = parse_document(file.read_text(encoding="utf-8"))
        ids = entry_ids(file_name(file, self.root), parsed)
        return next(i for i, entry in zip(ids, parsed, strict=True) if entry.lines[0] == line)

    def _id_of(self, file: Path, question: str, *, last: bool) -> str:
        parsed = parse_document(file.read_text(encoding="utf-8"))
        ids = entry_ids(file_name(file, self.root), parsed)
        matching = [i for i, entry in zip(ids, parsed, strict=True) if entry.question == question]
        return matching[-1] if last else matching[0]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / LOCK_NAME).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _text_of(entry: ParsedEntry) -> EntryText:
    return EntryText(entry.question, entry.answer, entry.phrasings)


def _read_lines(file: Path) -> list[str]:
    return file.read_text(encoding="utf-8").splitlines() if file.exists() else []


def _write_lines(file: Path, lines: list[str]) -> None:
    """Replace the file at once: write a temporary file beside it, then rename it over."""
    file.parent.mkdir(parents=True, exist_ok=True)
    mode = file.stat().st_mode & 0o777 if file.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(lines).rstrip("\n") + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
