"""Prometheus counters of events that pass through the API: what the support team and the
customers do (replies, resolutions, ratings, knowledge changes), and answers the API gives from
the answer cache as a message arrives."""

from prometheus_client import CollectorRegistry, Counter


class ApiCounters:
    """Events that pass through the API (handoffs, and answers from a worker, are counted by
    the workers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.agent_replies = Counter(
            "support_agent_replies_total", "Replies of the support team to customers.",
            registry=registry,
        )  # fmt: skip
        self.resolutions = Counter(
            "support_resolutions_total", "Conversations resolved by a person.", registry=registry
        )
        self.handbacks = Counter(
            "support_handbacks_total", "Conversations handed back to the assistant.",
            registry=registry,
        )  # fmt: skip
        self.feedback = Counter(
            "support_feedback_total", "Customers' ratings of replies, by rating.", ["rating"],
            registry=registry,
        )  # fmt: skip
        self.suggestions = Counter(
            "support_suggestions_total",
            "Knowledge suggestions, by event (drafted, approved, rejected).",
            ["event"],
            registry=registry,
        )
        self.knowledge_changes = Counter(
            "support_knowledge_changes_total", "Changes to the knowledge files, by action.",
            ["action"], registry=registry,
        )  # fmt: skip
        self.answered_on_arrival = Counter(
            "support_answered_on_arrival_total",
            "First messages the API answered from the answer cache as they arrived (same words; "
            "no task queued). The workers count their own hits in "
            "support_answer_cache_lookups_total.",
            registry=registry,
        )
