"""The knowledge base: files of entries, their index, and the store every process answers from."""

from shared.knowledge.loader import Entry
from shared.knowledge.search import RetrievalMethod, SearchHit
from shared.knowledge.store import KnowledgeBase, KnowledgeStore, create_embedder

__all__ = [
    "Entry",
    "KnowledgeBase",
    "KnowledgeStore",
    "RetrievalMethod",
    "SearchHit",
    "create_embedder",
]
