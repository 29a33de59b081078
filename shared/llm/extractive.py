"""No model at all: the answer is the entry's own statements that answer the question."""

from collections.abc import Sequence

from shared.llm.base import BackendStatus, Generation, Passage, StreamCollector, TokenSink, Turn


class ExtractiveProvider:
    name = "extractive"
    model = "best-entry"
    generative = False
    rewrites = False

    def generate(
        self,
        *,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenSink | None = None,
    ) -> Generation:
        collector = StreamCollector(on_token)
        collector.add("\n".join(passage.text for passage in passages))
        return collector.result(model=self.model)

    def rewrite(self, *, history: Sequence[Turn], message: str) -> str:
        raise NotImplementedError("the extractive provider does not write")

    def status(self) -> BackendStatus:
        return BackendStatus(ok=True, detail="answers with the entry's own statements")
