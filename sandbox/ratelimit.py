"""Per-endpoint-class token buckets, sized in requests per minute.

Each class is one bucket holding up to a minute's worth of requests and refilling
continuously, so a client may burst to the limit and then gets the steady rate. The
defaults follow what the vendors say where they say anything; the rest are the
sandbox's choice, marked below. ``rate_scale`` multiplies every default (a benchmark
raises them, a throttling test lowers them); ``set_limit`` sets one class exactly.
Time is real time: clients really wait out a ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from .timeutil import UTC

USERS_SEARCH = "users-search"
GROUPS = "groups"
MEMBERSHIPS = "memberships"
SUSPEND_RESTORE = "suspend-restore"
LAST_ACTIVE = "last-active"
EVENTS = "events"
GRAPH = "graph"
TOKEN = "token"  # noqa: S105 - an endpoint class name, not a secret

ENDPOINT_CLASSES = (USERS_SEARCH, GROUPS, MEMBERSHIPS, SUSPEND_RESTORE, LAST_ACTIVE, EVENTS, GRAPH, TOKEN)

DEFAULT_PER_MINUTE: dict[str, float] = {
    # Atlassian documents no per-endpoint numbers for these (only that every call is
    # rate limited: https://developer.atlassian.com/cloud/admin/organization/rest/intro/).
    # Sandbox choice: 10 requests a second.
    USERS_SEARCH: 600,
    GROUPS: 600,
    MEMBERSHIPS: 600,
    SUSPEND_RESTORE: 600,
    # "About 200 a minute has been reported" (shared/DESIGN.md); not in Atlassian's docs.
    LAST_ACTIVE: 200,
    # 10 requests per minute per user and path: jira.js src/admin/api/events.ts (WIRE.md §6).
    EVENTS: 10,
    # Entra ID writes: 3,000 per 2.5 minutes per app and tenant
    # (https://learn.microsoft.com/graph/throttling-limits, identity and access service).
    GRAPH: 1_200,
    # Entra publishes no token-endpoint rate for one app; sandbox choice.
    TOKEN: 600,
}


@dataclass(frozen=True)
class Admission:
    """The bucket's verdict on one request, with what the rate-limit headers report."""

    allowed: bool
    limit: int  # requests per minute
    remaining: int
    retry_after: int  # whole seconds until a request would pass (0 when allowed)
    reset_at: datetime  # wall-clock instant the bucket is full again


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.tokens = per_minute
        self.updated = time.monotonic()

    def take(self) -> Admission:
        now = time.monotonic()
        rate = self.per_minute / 60.0
        self.tokens = min(self.per_minute, self.tokens + (now - self.updated) * rate)
        self.updated = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        missing = 0.0 if allowed else 1.0 - self.tokens
        full_in = (self.per_minute - self.tokens) / rate
        return Admission(
            allowed=allowed,
            limit=int(self.per_minute),
            remaining=int(self.tokens),
            retry_after=0 if allowed else max(1, math.ceil(missing / rate)),
            reset_at=datetime.now(UTC) + timedelta(seconds=full_in),
        )


class RateLimiter:
    """Buckets per endpoint class; a class without a limit is never throttled."""

    def __init__(self, scale: float = 1.0, defaults: dict[str, float] | None = None) -> None:
        if scale <= 0:
            raise ValueError("rate_scale must be positive")
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {
            name: _Bucket(max(1.0, per_minute * scale))
            for name, per_minute in (defaults or DEFAULT_PER_MINUTE).items()
        }

    def set_limit(self, endpoint_class: str, per_minute: float | None) -> None:
        """Set one class's limit exactly (not scaled); ``None`` turns its limit off."""
        with self._lock:
            if per_minute is None:
                self._buckets.pop(endpoint_class, None)
            elif per_minute <= 0:
                raise ValueError("per_minute must be positive (or None for no limit)")
            else:
                self._buckets[endpoint_class] = _Bucket(float(per_minute))

    def limits(self) -> dict[str, float]:
        with self._lock:
            return {name: bucket.per_minute for name, bucket in self._buckets.items()}

    def admit(self, endpoint_class: str) -> Admission | None:
        """Take a token for one request; None when the class has no limit."""
        with self._lock:
            bucket = self._buckets.get(endpoint_class)
            return None if bucket is None else bucket.take()
