"""No model at all: answer with the best-matching entry's own text, labelled as such."""

from shared.knowledge import SearchHit
from shared.llm.base import BackendStatus, Generation


class ExtractiveProvider:
    name = "extractive"
    model = "best-entry"

    def generate(self, *, question: str, context: list[SearchHit]) -> Generation:
        best = context[0].entry
        return Generation(
            text=f'From our help center, "{best.question}":\n\n{best.answer}', model=self.model
        )

    def status(self) -> BackendStatus:
        return BackendStatus(ok=True, detail="answers with the best knowledge-base entry")
