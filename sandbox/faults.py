"""Injected faults: what a flaky network or an overloaded vendor does to a client.

A rule matches requests whose target (path and query) contains ``path_contains``; it
fires ``count`` times, or on each match with ``probability`` (drawn from a seeded RNG, so
a run repeats), or both (fires with the probability until it has fired ``count`` times).

- ``5xx``: the vendor's error body with status 500 or 503 (``status``), request not applied.
- ``429``: throttled, with ``Retry-After``; request not applied.
- ``timeout``: no answer until the client gives up (or ``timeout_s`` passes); not applied.
- ``drop``: the connection closes without any response; not applied.
- ``truncated``: the request IS applied, the response promises its full Content-Length
  and the connection closes halfway through the body: the client cannot know whether a
  write happened, which is exactly what idempotent clients must survive.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FAULT_KINDS = ("5xx", "timeout", "truncated", "drop", "429")


@dataclass
class FaultRule:
    kind: str
    path_contains: str = ""
    remaining: int | None = 1  # None: no count limit
    probability: float | None = None
    status: int = 503  # for 5xx
    retry_after: int = 1  # seconds, for 429


class Faults:
    """The active fault rules of one sandbox. Thread-safe."""

    def __init__(self, seed: int, timeout_s: float = 30.0) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.timeout_s = timeout_s

    def inject(
        self,
        kind: str,
        path_contains: str = "",
        count: int | None = 1,
        probability: float | None = None,
        status: int | None = None,
        retry_after: int = 1,
    ) -> FaultRule:
        """Add a rule. ``count=None`` with no probability fires until ``clear()``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None)")
        if probability is not None and not 0 < probability <= 1:
            raise ValueError("probability must be in (0, 1]")
        if status is not None and not 500 <= status <= 599:
            raise ValueError("a 5xx fault needs a status from 500 to 599")
        rule = FaultRule(kind, path_contains, count, probability, status or 503, retry_after)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reseed(self, seed: int) -> None:
        """Clear every rule and draw probabilities afresh from ``seed``, as a new sandbox would."""
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(f"{seed}:faults")

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, target: str, kinds: tuple[str, ...] = FAULT_KINDS) -> FaultRule | None:
        """The rule that fires for this request target, if any, counting it down."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or rule.path_contains not in target:
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule
        return None
