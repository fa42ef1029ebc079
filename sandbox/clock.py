"""The sandbox's movable clock.

Seatwarden's rules depend on how many days pass; tests cannot wait for them. The clock
runs at wall-clock speed from a chosen start (so event timestamps still differ and
increase), and ``advance`` jumps it forward. It never runs backwards, which keeps the
event stream and the change log in time order.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from .timeutil import UTC


class Clock:
    """Sandbox time: ``start`` plus real time elapsed plus every ``advance``.

    ``frozen=True`` stops the real-time part, for tests that want exact instants.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._frozen = frozen
        self._origin = time.monotonic()
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    @property
    def start(self) -> datetime:
        """The instant the clock was started at; the generator's "today"."""
        return self._start

    def now(self) -> datetime:
        with self._lock:
            elapsed = 0.0 if self._frozen else time.monotonic() - self._origin
            return self._start + self._offset + timedelta(seconds=elapsed)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` (negative is refused) and return the new now."""
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()
