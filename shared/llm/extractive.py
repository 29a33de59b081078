"""No model at all: answer with the best-matching entry's own text, labelled as such."""

from shared.knowledge import SearchHit
from shared.llm.base import BackendStatus, Generation, StreamCollector, TokenSink


def quote_entry(hit: SearchHit) -> str:
    """The best entry's own answer, labelled as coming from the help center."""
    return f'From our help center, "{hit.entry.question}":\n\n{hit.entry.answer}'


class ExtractiveProvider:
    name = "extractive"
    model = "best-entry"
    generative = False

    def generate(
        self, *, question: str, context: list[SearchHit], on_token: TokenSink | None = None
    ) -> Generation:
        collector = StreamCollector(on_token)
        collector.add(quote_entry(context[0]))
        return collector.result(model=self.model)

    def status(self) -> BackendStatus:
        return BackendStatus(ok=True, detail="answers with the best knowledge-base entry")
