"""Prometheus counters of events that pass through the API: what the support team and the
customers do (replies, resolutions, ratings, knowledge changes), and answers the API gives from
the answer cache as a message arrives."""

from prometheus_client import CollectorRegistry, Counter


class ApiCounters:
    """Events that pass through the API (handoffs and answers are counted by workers)."""

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
        # The same name as the workers' lookups: summed over processes, every hit counts once.
        self.cache_lookups = Counter(
            "support_answer_cache_lookups_total",
            "Answer-cache lookups, by kind (same_words_on_arrival: a first message answered by "
            "the API at once; repeated, equivalent: in a worker) and result (hit, miss).",
            ["kind", "result"],
            registry=registry,
        )
