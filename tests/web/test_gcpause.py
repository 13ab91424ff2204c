"""The counted, process-wide pause of the cyclic garbage collector."""

from __future__ import annotations

import gc
import threading

from qmtl.web.gcpause import gc_paused


def test_gc_pause_nests_and_restores() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still running
    assert gc.isenabled()
    with gc_paused(active=False):
        assert gc.isenabled()


def test_gc_pause_overlapping_threads() -> None:
    entered = threading.Event()
    release = threading.Event()

    def other() -> None:
        with gc_paused():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(10)
    with gc_paused():
        pass
    assert not gc.isenabled()  # the other thread's pause continues
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_gc_pause_keeps_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
