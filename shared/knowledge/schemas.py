"""What the API says about the loaded knowledge base."""

from pydantic import BaseModel


class KnowledgeInfo(BaseModel):
    version: str
    entries: int
    path: str
