"""Read the knowledge base: line-anchored `Q:`/`A:` entries from markdown and text files."""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KNOWLEDGE_SUFFIXES = (".md", ".txt")
_QUESTION_LINE = re.compile(r"^\s*Q:\s*(.*)$")
_ANSWER_LINE = re.compile(r"^\s*A:\s*(.*)$")
_HEADING_LINE = re.compile(r"^#{1,6}\s")


@dataclass(frozen=True)
class Entry:
    id: str
    question: str
    answer: str
    source: str

    @property
    def text(self) -> str:
        return f"{self.question}\n{self.answer}"


def slugify(text: str, *, max_length: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "entry"


def parse_entries(text: str) -> list[tuple[str, str]]:
    """Split one document into (question, answer) pairs; only a line's start opens a Q or an A."""
    pairs: list[tuple[str, str]] = []
    question: list[str] | None = None
    answer: list[str] | None = None

    def flush() -> None:
        if question is not None and answer is not None:
            q, a = " ".join(question).strip(), "\n".join(answer).strip()
            if q and a:
                pairs.append((q, a))

    for line in text.splitlines():
        if match := _QUESTION_LINE.match(line):
            flush()
            question, answer = [match.group(1)], None
        elif question is not None and answer is None and (match := _ANSWER_LINE.match(line)):
            answer = [match.group(1)]
        elif _HEADING_LINE.match(line):
            flush()
            question, answer = None, None
        elif answer is not None:
            answer.append(line.rstrip())
        elif question is not None and line.strip():
            question.append(line.strip())
    flush()
    return pairs


def knowledge_files(path: Path) -> list[Path]:
    """The files a knowledge path stands for, in a stable order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"knowledge path {path} does not exist")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in KNOWLEDGE_SUFFIXES)


def load_entries(files: Iterable[Path], *, root: Path) -> list[Entry]:
    """Parse every file into entries whose ids (file + question slug) stay stable across edits."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for file in files:
        name = file.relative_to(root).with_suffix("").as_posix() if file != root else file.stem
        for question, answer in parse_entries(file.read_text(encoding="utf-8")):
            base_id = f"{name}#{slugify(question)}"
            entry_id, n = base_id, 2
            while entry_id in seen:
                entry_id, n = f"{base_id}-{n}", n + 1
            seen.add(entry_id)
            entries.append(Entry(id=entry_id, question=question, answer=answer, source=name))
    return entries


def content_version(entries: Iterable[Entry]) -> str:
    """A short hash of the loaded content: equal bases have equal versions."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.id}\0{entry.question}\0{entry.answer}\0".encode())
    return digest.hexdigest()[:12]
