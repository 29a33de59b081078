"""Answer one question: retrieve the relevant entries, then ask the model to answer from them."""

from dataclasses import dataclass
from typing import Any

from shared.knowledge import KnowledgeBase, SearchHit
from shared.llm import LLMProvider

NO_MATCH_ANSWER = (
    "I'm sorry, I couldn't find anything about that in our help center. "
    "Please contact our support team and a person will help you."
)


@dataclass(frozen=True)
class Answer:
    text: str
    sources: list[dict[str, Any]]
    provider: str
    model: str


def retrieve(
    *, knowledge: KnowledgeBase, question: str, context_method: str, k: int
) -> list[SearchHit]:
    """The entries the answer may use: the best `k`, or every matching entry for `all`."""
    return knowledge.search(question, k=len(knowledge.entries) if context_method == "all" else k)


def source_list(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [
        {"id": hit.entry.id, "question": hit.entry.question, "score": round(hit.score, 4)}
        for hit in hits
    ]


def answer_question(
    *, question: str, context_method: str, knowledge: KnowledgeBase, provider: LLMProvider, k: int
) -> Answer:
    """Answer from the knowledge base; with nothing relevant, say so instead of asking the model."""
    hits = retrieve(knowledge=knowledge, question=question, context_method=context_method, k=k)
    if not hits:
        return Answer(
            text=NO_MATCH_ANSWER, sources=[], provider=provider.name, model=provider.model
        )
    generation = provider.generate(question=question, context=hits)
    return Answer(
        text=generation.text,
        sources=source_list(hits[:k]),
        provider=provider.name,
        model=generation.model,
    )
