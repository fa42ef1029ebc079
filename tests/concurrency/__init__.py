"""Concurrency: the real functions in threads at once, on Azurite and the sandbox over HTTP.

The Functions host runs invocations concurrently in one worker and across instances; these
tests do the same with threads, and stop a thread at a chosen point in the product code
(`Gate`) to force the interleaving that matters. Every wait is bounded and says what it
waited for, so a broken interleaving fails instead of hanging.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from shared.store import LeaseRepo

#: The longest any thread waits for another, in seconds.
WAIT = 30.0


class Gate:
    """A point in product code where threads stop until the test opens the gate."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.arrivals: list[str] = []
        self._reached = threading.Event()
        self._open = threading.Event()

    def arrive(self) -> None:
        """Called from product code (in a patched method): wait here until the test opens."""
        self.arrivals.append(threading.current_thread().name)
        self._reached.set()
        if not self._open.wait(WAIT):
            raise AssertionError(f"gate {self.name!r} was never opened within {WAIT:.0f} s")

    def wait_reached(self) -> None:
        if not self._reached.wait(WAIT):
            raise AssertionError(f"no thread reached gate {self.name!r} within {WAIT:.0f} s")

    def open(self) -> None:
        self._open.set()


class Worker(threading.Thread):
    """A thread that runs ``target`` once and keeps its result or exception for `result()`."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._value: Any = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._target_fn()
        except BaseException as exc:
            self._error = exc

    def result(self) -> Any:
        """Wait (bounded) for the thread; its return value, or re-raise what it raised."""
        self.join(WAIT * 2)
        if self.is_alive():
            raise AssertionError(f"thread {self.name} did not finish within {WAIT * 2:.0f} s")
        if self._error is not None:
            raise self._error
        return self._value


class Inside:
    """Counts how many threads are inside a block at once: proof that work overlapped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self.now -= 1


def seatwarden_changes(sb: Any, since: int = 0) -> Counter[tuple[str, str, str]]:
    """What Seatwarden's writes did to the org, from the sandbox's change log.

    (account id, change kind, group id); SCIM's mirroring of Entra and the test's own edits
    (``via`` sandbox or scim) are not Seatwarden's.
    """
    found: Counter[tuple[str, str, str]] = Counter()
    for change in sb.changes(since):
        if change.system != "atlassian" or change.details.get("via") != "api":
            continue
        found[(change.details["account_id"], change.kind, change.details.get("group_id") or "")] += 1
    return found


_KIND = {
    ("add", "atlassian"): "membership_added",
    ("remove", "atlassian"): "membership_removed",
    ("suspend", "atlassian"): "user_suspended",
}


def audited_changes(storage: Any) -> Counter[tuple[str, str, str]]:
    """The same shape from the audit trail: every operation an entry says it changed."""
    found: Counter[tuple[str, str, str]] = Counter()
    for entry in storage.audit.query(limit=100_000):
        for op in (entry.after or {}).get("changed", []) if isinstance(entry.after, dict) else []:
            kind = _KIND.get((op["kind"], op["via"]))
            if kind is not None:
                found[(entry.account_id, kind, op.get("group_id") or "")] += 1
    return found


def audit_entries_per_action(storage: Any) -> Counter[str]:
    return Counter(e.action_id for e in storage.audit.query(limit=100_000) if e.action_id)


class Refusals:
    """Watches one lease: which threads were refused it (found it held by another)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.name = name
        self.threads: list[str] = []
        real_acquire = LeaseRepo.acquire

        def acquire(repo: LeaseRepo, lease_name: str, *args: Any, **kwargs: Any) -> Any:
            lease = real_acquire(repo, lease_name, *args, **kwargs)
            if lease is None and lease_name == name:
                self.threads.append(threading.current_thread().name)
            return lease

        monkeypatch.setattr(LeaseRepo, "acquire", acquire)

    def wait_refused(self, worker: Worker) -> None:
        """Wait until ``worker`` was refused the lease; fail at once if it finished instead."""
        deadline = time.monotonic() + WAIT
        while worker.name not in self.threads:
            if not worker.is_alive():
                raise AssertionError(f"{worker.name} went ahead without waiting for lease {self.name!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{worker.name} never asked for lease {self.name!r} within {WAIT:.0f} s")
            worker.join(0.01)


def assert_each_change_audited_once(world: Any, since: int = 0) -> None:
    """Every change Seatwarden made to the org since ``since`` has one audit entry, and no more;
    no action id has two entries; the hash chain verifies (`seatwarden audit verify`)."""
    made = seatwarden_changes(world.sb, since)
    assert made == audited_changes(world.storage)
    assert set(audit_entries_per_action(world.storage).values()) <= {1}
    report = world.storage.audit.verify()
    assert report.ok, report.problems


def log_in(world: Any, account_id: str) -> None:
    """The person logs in: the org audit-log webhook fires at the functions over HTTP."""
    delivery = world.sb.send_audit_webhook(
        world.url("/api/webhooks/atlassian"),
        "user_logged_in",
        account_id=account_id,
        authorization=world.env["ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION"],
    )
    assert delivery.status_code == 202, delivery.text


def stop_after_planning(monkeypatch: pytest.MonkeyPatch, product: str) -> tuple[Gate, list[Any]]:
    """The night stops once it has planned ``product`` (its snapshot read, its actions decided
    and not yet queued); the gate, and the plans made so far."""
    from shared.services import reconcile

    gate = Gate(f"the night has planned {product}")
    plans: list[Any] = []
    real_plan = reconcile.plan_product

    def plan_product(*args: Any, **kwargs: Any) -> Any:
        plan = real_plan(*args, **kwargs)
        plans.append(plan)
        if plan.product == product:
            gate.arrive()
        return plan

    monkeypatch.setattr(reconcile, "plan_product", plan_product)
    return gate, plans
