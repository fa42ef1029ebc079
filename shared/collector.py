"""Python's cyclic garbage collector, held off while a big read or plan is built.

The nightly read and the planner build a large, long-lived heap (a person, their groups and
their activity per product, for up to a hundred thousand people) and make almost no
reference cycles: what they drop, reference counting frees at once. The cyclic collector
does not know that. Each full collection walks every tracked object, and the heap's growth
keeps triggering them. With the collector paused in the read (and users pages parsed from
bytes, ``shared.atlassian``), the client's CPU for a steady night of the nights benchmark's
100,000-person org fell from a median of 20.8 s to 11.6 s (activity mode,
``python -m bench.nights_bench``; bench/results.json before and after this module).

``collector_paused()`` switches the collector off for the span of a ``with`` and back on
when the last such span ends, only if it was on before the first began. Spans may overlap
(two reads in one event loop, or threads): the collector stays off until all have ended.
Cycles made meanwhile are not lost, only collected later.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_spans = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the ``with``; the collector's prior state restored after."""
    global _spans, _was_enabled
    with _lock:
        if _spans == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _spans += 1
    try:
        yield
    finally:
        with _lock:
            _spans -= 1
            if _spans == 0 and _was_enabled:
                gc.enable()
