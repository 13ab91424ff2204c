"""A circuit breaker for the WorldService client.

States::

    closed --(failure_threshold consecutive failures)--> open
    open --(reset_timeout seconds elapsed)--> half_open (exactly one trial call admitted)
    half_open --trial succeeds--> closed
    half_open --trial fails--> open (the timer starts again)

While open, and while a half-open trial is in flight, :meth:`CircuitBreaker.admit` raises
:class:`CircuitOpen` at once, so callers answer 503 fast instead of queueing on a dead
upstream. The breaker is used from one event loop; it never awaits, so no lock is needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker", "CircuitOpen"]

logger = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The breaker refused the call; ``retry_after`` is seconds until a trial is admitted."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; next trial in {retry_after:.3f}s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """An immutable view of the breaker for health reports."""

    state: BreakerState
    consecutive_failures: int
    retry_after: float


class CircuitBreaker:
    """Counts consecutive failures of one upstream and short-circuits calls while it is down.

    Args:
        failure_threshold: consecutive failures that open the circuit (>= 1).
        reset_timeout: seconds the circuit stays open before one trial call is admitted.
        clock: monotonic seconds (``time.monotonic``); tests pass a fake clock.
        on_change: called with the new state on every transition (metrics, logs).
    """

    def __init__(self, *, failure_threshold: int, reset_timeout: float,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[BreakerState], None] | None = None) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_timeout <= 0:
            raise ValueError(f"reset_timeout must be > 0, got {reset_timeout}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an open circuit whose timeout has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._retry_after() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(self.state, self._failures, max(self._retry_after(), 0.0))

    def admit(self) -> None:
        """Let one call through or raise :class:`CircuitOpen`.

        Every admitted call must be followed by :meth:`record_success` or
        :meth:`record_failure` (or :meth:`record_neutral` for a call that proved nothing).
        """
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            remaining = self._retry_after()
            if remaining > 0:
                raise CircuitOpen(remaining)
            self._transition(BreakerState.HALF_OPEN)
        # half-open: one trial at a time; the others fail fast until it reports back.
        if self._trial_in_flight:
            raise CircuitOpen(0.0)
        self._trial_in_flight = True

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            if self._state is not BreakerState.OPEN:
                self._transition(BreakerState.OPEN)

    def record_neutral(self) -> None:
        """The admitted call ended without telling whether the upstream is healthy
        (e.g. it was cancelled); a half-open trial slot is released."""
        self._trial_in_flight = False

    def _retry_after(self) -> float:
        if self._state is not BreakerState.OPEN:
            return 0.0
        return self._opened_at + self.reset_timeout - self._clock()

    def _transition(self, state: BreakerState) -> None:
        previous, self._state = self._state, state
        level = logging.WARNING if state is BreakerState.OPEN else logging.INFO
        logger.log(level, "worldservice circuit %s -> %s (consecutive failures: %d)",
                   previous.value, state.value, self._failures,
                   extra={"breaker_state": state.value})
        if self._on_change is not None:
            self._on_change(state)
