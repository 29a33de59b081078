"""The knowledge base a process answers from, reloaded when its files change."""

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.knowledge.loader import Entry, content_version, knowledge_files, load_entries
from shared.knowledge.search import BM25Index, SearchHit

__all__ = ["Entry", "KnowledgeBase", "KnowledgeStore", "SearchHit"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnowledgeBase:
    """One loaded, indexed version of the knowledge base."""

    entries: list[Entry]
    version: str
    index: BM25Index = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> "KnowledgeBase":
        files = knowledge_files(path)
        root = path if path.is_dir() else path.parent
        entries = load_entries(files, root=root)
        return cls(entries=entries, version=content_version(entries), index=BM25Index(entries))

    def search(self, query: str, *, k: int) -> list[SearchHit]:
        return self.index.search(query, k=k)


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        files = knowledge_files(path)
    except FileNotFoundError:
        return ()
    stats = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:  # removed between listing and stat
            continue
        stats.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(stats)


class KnowledgeStore:
    """Hands out the current knowledge base; re-reads the files when they change on disk."""

    def __init__(self, path: Path, *, check_interval: float = 2.0) -> None:
        self.path = path
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._fingerprint = _fingerprint(path)
        self._current = KnowledgeBase.load(path)
        self._checked_at = time.monotonic()
        logger.info(
            "knowledge base loaded: %d entries, version %s, from %s",
            len(self._current.entries),
            self._current.version,
            path,
        )

    def current(self) -> KnowledgeBase:
        """The knowledge base as the files are now (checked at most every `check_interval` s)."""
        if time.monotonic() - self._checked_at >= self.check_interval:
            self.reload(force=False)
        return self._current

    def reload(self, *, force: bool = True) -> KnowledgeBase:
        """Re-read the files if they changed (or always, when forced)."""
        with self._lock:
            self._checked_at = time.monotonic()
            fingerprint = _fingerprint(self.path)
            if force or fingerprint != self._fingerprint:
                try:
                    base = KnowledgeBase.load(self.path)
                except (OSError, UnicodeDecodeError):
                    logger.exception(
                        "knowledge reload failed; keeping version %s", self._current.version
                    )
                    return self._current
                self._fingerprint, self._current = fingerprint, base
                logger.info(
                    "knowledge base reloaded: %d entries, version %s",
                    len(base.entries),
                    base.version,
                )
            return self._current
