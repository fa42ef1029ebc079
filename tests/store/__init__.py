"""Integration tests of shared.store against a real Azurite (the session's `azurite` fixture).

Helpers shared by the test modules live here; each module declares its own small fixtures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shared.store import Storage


def open_storage(conn: str, prefix: str, **client_options: Any) -> Storage:
    """A ready Storage under a test's own prefix (tables and queues created)."""
    storage = Storage.from_connection_string(conn, prefix, **client_options)
    storage.ensure()
    return storage


class RequestCounter:
    """A `raw_request_hook` that counts the HTTP requests the SDK sends, by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.urls: list[str] = []

    def __call__(self, request: Any) -> None:
        with self._lock:
            self.urls.append(str(request.http_request.url))

    @property
    def transactions(self) -> int:
        return sum(1 for url in self.urls if url.endswith("/$batch"))

    def reset(self) -> None:
        with self._lock:
            self.urls.clear()


def at_once(clients: list[Storage], work: Callable[[Storage, int], Any]) -> list[Any]:
    """Each client does ``work(client, i)`` in its own thread, all released at one moment;
    what each returned, in no particular order."""
    go = threading.Barrier(len(clients))
    got: list[Any] = []

    def worker(storage: Storage, i: int) -> None:
        go.wait()
        got.append(work(storage, i))

    threads = [threading.Thread(target=worker, args=(c, i)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got
