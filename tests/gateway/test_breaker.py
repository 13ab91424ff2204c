"""Unit tests of the circuit breaker state machine (a fake clock replaces time; no I/O)."""

from __future__ import annotations

import pytest

from qmtl.gateway.breaker import CircuitBreaker, CircuitOpen


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, reset: float = 10.0) -> tuple[CircuitBreaker, FakeClock, list[str]]:
    clock = FakeClock()
    changes: list[str] = []
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout=reset, clock=clock,
                             on_change=lambda s: changes.append(s.value))
    return breaker, clock, changes


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.admit()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _, changes = make(threshold=3)
    fail(breaker, 2)
    assert breaker.state.value == "closed"
    fail(breaker, 1)
    assert breaker.state.value == "open"
    assert changes == ["open"]
    with pytest.raises(CircuitOpen) as info:
        breaker.admit()
    assert info.value.retry_after == pytest.approx(10.0)


def test_success_resets_the_failure_count() -> None:
    breaker, _, _ = make(threshold=3)
    fail(breaker, 2)
    breaker.admit()
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state.value == "closed"


def test_half_open_admits_exactly_one_trial_then_closes_on_success() -> None:
    breaker, clock, changes = make(threshold=1, reset=5.0)
    fail(breaker, 1)
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        breaker.admit()
    clock.now += 0.2
    assert breaker.state.value == "half_open"
    breaker.admit()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.admit()  # a second caller while the trial is in flight fails fast
    breaker.record_success()
    assert breaker.state.value == "closed"
    breaker.admit()
    breaker.admit()
    assert changes == ["open", "half_open", "closed"]


def test_failed_trial_reopens_and_restarts_the_timer() -> None:
    breaker, clock, changes = make(threshold=2, reset=5.0)
    fail(breaker, 2)
    clock.now += 5.0
    breaker.admit()
    breaker.record_failure()
    assert breaker.state.value == "open"
    clock.now += 4.0
    with pytest.raises(CircuitOpen) as info:
        breaker.admit()
    assert info.value.retry_after == pytest.approx(1.0)
    assert changes == ["open", "half_open", "open"]


def test_neutral_outcome_releases_the_trial_slot() -> None:
    breaker, clock, _ = make(threshold=1, reset=1.0)
    fail(breaker, 1)
    clock.now += 1.0
    breaker.admit()
    breaker.record_neutral()
    breaker.admit()  # a new trial is allowed
    assert breaker.state.value == "half_open"


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_invalid_parameters_are_refused(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, reset_timeout=reset)
