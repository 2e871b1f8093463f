"""The Kafka topics of the design, their keys and cleanup policies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    cleanup_policy: str  # "delete" or "compact"


@dataclass(frozen=True)
class Topics:
    """Topic names, optionally under a namespace prefix (tests and tenants use one)."""

    namespace: str = ""

    def _name(self, base: str) -> str:
        return f"{self.namespace}{base}"

    @property
    def calls(self) -> str:
        return self._name("tollway.calls.v1")

    @property
    def calls_dlq(self) -> str:
        return self._name("tollway.calls.dlq.v1")

    @property
    def budget_status(self) -> str:
        return self._name("tollway.budget-status.v1")

    @property
    def budget_holds(self) -> str:
        """What each proxy instance holds per budget window (reserved + not yet counted)."""
        return self._name("tollway.budget-holds.v1")

    @property
    def budget_alerts(self) -> str:
        return self._name("tollway.budget-alerts.v1")

    @property
    def routing_stats(self) -> str:
        return self._name("tollway.routing-stats.v1")

    @property
    def keys(self) -> str:
        """Virtual-key records (hashes and metadata only), so every proxy replica knows them."""
        return self._name("tollway.keys.v1")

    @property
    def budgets(self) -> str:
        """Budgets set or deleted through the admin API, so every role of every replica knows
        them."""
        return self._name("tollway.budgets.v1")

    @property
    def rate_usage(self) -> str:
        """Each proxy instance's per-key rate-limit counts (router/rate_sharing.py)."""
        return self._name("tollway.rate-usage.v1")

    @property
    def session_spend(self) -> str:
        """Each proxy instance's spend per session (router/session_sharing.py)."""
        return self._name("tollway.session-spend.v1")

    @property
    def audit(self) -> str:
        """Changes made through the admin API, and refused attempts (tollway/audit.py)."""
        return self._name("tollway.audit.v1")

    @property
    def feedback(self) -> str:
        return self._name("tollway.feedback.v1")

    def specs(self, partitions: int = 4) -> list[TopicSpec]:
        return [
            TopicSpec(self.calls, partitions, "delete"),
            TopicSpec(self.calls_dlq, 1, "delete"),
            TopicSpec(self.budget_status, 1, "compact"),
            TopicSpec(self.budget_holds, 1, "compact"),
            TopicSpec(self.budget_alerts, 1, "delete"),
            TopicSpec(self.routing_stats, 1, "compact"),
            TopicSpec(self.feedback, partitions, "delete"),
            TopicSpec(self.keys, 1, "compact"),
            TopicSpec(self.budgets, 1, "compact"),
            TopicSpec(self.audit, 1, "delete"),
            TopicSpec(self.rate_usage, 1, "compact"),
            TopicSpec(self.session_spend, 1, "compact"),
        ]
