"""Pause the cyclic garbage collector around bulk object creation.

Parsing and planning 100,000 positions creates a few hundred thousand small objects
(pydantic models, dicts, floats). Each young-generation overflow makes CPython's collector
run, and every tenth of those a full collection scans every live object again — measured
at 2-3x the cost of the work itself for a 100k-position plan. Reference counting still frees
everything that is not cyclic while the collector is paused; cyclic garbage waits until
the pause ends.

The collector is process-wide, so pauses are counted: the collector is re-enabled when the
last overlapping pause ends, and only if it was enabled when the first one began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_reenable = False


@contextmanager
def gc_paused(active: bool = True) -> Iterator[None]:
    """Disable the cyclic GC for the block (a no-op when ``active`` is false)."""
    global _depth, _reenable
    if not active:
        yield
        return
    with _lock:
        if _depth == 0:
            _reenable = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _reenable:
                gc.enable()
