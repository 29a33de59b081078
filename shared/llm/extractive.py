"""No model at all: the answer is the entry's own statements that answer the question."""

from shared.llm.base import BackendStatus, Generation, Passage, StreamCollector, TokenSink


class ExtractiveProvider:
    name = "extractive"
    model = "best-entry"
    generative = False

    def generate(
        self, *, question: str, passages: list[Passage], on_token: TokenSink | None = None
    ) -> Generation:
        collector = StreamCollector(on_token)
        collector.add("\n".join(passage.text for passage in passages))
        return collector.result(model=self.model)

    def status(self) -> BackendStatus:
        return BackendStatus(ok=True, detail="answers with the entry's own statements")
