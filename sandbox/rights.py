"""A set of rights that may change while the sandbox serves: an API key's scopes, an app's
Graph permissions. ``None`` grants everything. Thread-safe: handlers read it per request."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Rights:
    def __init__(self, granted: Iterable[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._granted = None if granted is None else frozenset(granted)

    def set(self, granted: Iterable[str] | None) -> None:
        with self._lock:
            self._granted = None if granted is None else frozenset(granted)

    def get(self) -> frozenset[str] | None:
        with self._lock:
            return self._granted
