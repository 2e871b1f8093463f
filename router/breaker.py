"""Circuit breakers, one per provider x model, so a failing model stops costing callers time.

A model that keeps failing makes every call wait for its timeouts and retries before the
fallback serves it. The breaker remembers: after `breaker_failures` consecutive failures the
circuit opens and planning skips the model; after `breaker_cooldown_s` one call is let through
as a probe (half-open); its success closes the circuit, its failure opens it for another
cool-down. Only failures that say something about the upstream count (retryable ones: 429,
5xx, timeouts, network errors); a 400 is the caller's fault and leaves the breaker alone.

State is per proxy process (each replica learns on its own, as Envoy's outlier detection
does); changes are exported as Prometheus metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)


class CircuitState(Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


CIRCUIT_STATE = Gauge(
    "tollway_circuit_state",
    "Circuit breaker state per provider and model (0 closed, 1 half-open, 2 open)",
    ["provider", "model"],
)
CIRCUIT_TRANSITIONS = Counter(
    "tollway_circuit_transitions_total",
    "Circuit breaker state changes per provider and model",
    ["provider", "model", "state"],
)


@dataclass
class Circuit:
    """One provider x model's breaker."""

    provider: str
    model: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False  # a half-open probe is in flight: others keep skipping
    last_error: str = ""  # the failure that opened it (redacted, as in the call's attempts)

    def _move(self, state: CircuitState) -> None:
        if state is self.state:
            return
        log.warning(
            "circuit %s/%s: %s → %s", self.provider, self.model, self.state.name, state.name
        )
        self.state = state
        CIRCUIT_STATE.labels(self.provider, self.model).set(state.value)
        CIRCUIT_TRANSITIONS.labels(self.provider, self.model, state.name.lower()).inc()


class BreakerBoard:
    """All circuits of one proxy process. Single-threaded (one event loop): no locks needed."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[Circuit], None] | None = None,
    ) -> None:
        """`on_open(circuit)`: a closed circuit has just opened (router/proxy_alerts.py); a
        half-open probe that fails reopens it without calling again."""
        self._clock = clock
        self._circuits: dict[tuple[str, str], Circuit] = {}
        self.on_open = on_open

    def circuit(self, provider: str, model: str) -> Circuit:
        key = (provider, model)
        found = self._circuits.get(key)
        if found is None:
            found = self._circuits[key] = Circuit(provider, model)
        return found

    def state(self, provider: str, model: str) -> CircuitState:
        return self.circuit(provider, model).state

    def allow(self, provider: str, model: str, cooldown_s: float) -> bool:
        """Whether a call may try this model now; an open circuit past its cool-down lets this
        one call through as the half-open probe."""
        circuit = self.circuit(provider, model)
        if circuit.state is CircuitState.CLOSED:
            return True
        if circuit.state is CircuitState.OPEN:
            if self._clock() - circuit.opened_at < cooldown_s:
                return False
            circuit._move(CircuitState.HALF_OPEN)
        if circuit.probing:
            return False
        circuit.probing = True
        return True

    def retry_in(self, provider: str, model: str, cooldown_s: float) -> float:
        """Seconds until an open circuit will let a probe through (0 when it already would)."""
        circuit = self.circuit(provider, model)
        if circuit.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, cooldown_s - (self._clock() - circuit.opened_at))

    def succeeded(self, provider: str, model: str) -> None:
        circuit = self.circuit(provider, model)
        circuit.failures = 0
        circuit.probing = False
        circuit._move(CircuitState.CLOSED)

    def failed(self, provider: str, model: str, threshold: int, error: str = "") -> None:
        circuit = self.circuit(provider, model)
        circuit.failures += 1
        if circuit.state is CircuitState.HALF_OPEN or circuit.failures >= threshold:
            was = circuit.state
            circuit.probing = False
            circuit.opened_at = self._clock()
            circuit.last_error = error
            circuit._move(CircuitState.OPEN)
            if was is CircuitState.CLOSED and self.on_open is not None:
                self.on_open(circuit)

    def released(self, provider: str, model: str) -> None:
        """A probe that ended without a verdict (cancelled, non-retryable error): let the next
        call probe instead of leaving the circuit half-open for ever."""
        self.circuit(provider, model).probing = False
