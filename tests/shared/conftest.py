import pytest

from shared.core.config import Settings
from shared.knowledge import KnowledgeBase, KnowledgeStore

SETTINGS = Settings(_env_file=None, embedding_cache_dir=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def knowledge() -> KnowledgeBase:
    """The default knowledge base (knowledge/), with the default embedding model."""
    return KnowledgeStore.from_settings(SETTINGS).current()
