"""Several executors on one actions queue, and one action delivered to two executors at once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.services import execute
from shared.services.execute import Current, Executor
from shared.store import LeaseHeld
from tests.concurrency import (
    Gate,
    Inside,
    Refusals,
    Worker,
    assert_each_change_audited_once,
    seatwarden_changes,
)
from tests.functions.conftest import World, queue_message, run_function
from tests.functions.test_executor import planned_actions

EXECUTORS = 4


def test_four_executors_draining_one_queue_apply_each_action_once_with_one_audit_entry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.nightly()
    queued = world.storage.queues.peek_count("actions")
    assert queued >= 10, "the seeded night should queue work for several executors"
    since = len(world.sb.changes())
    inside = Inside()
    real_apply = Executor.apply

    async def apply(self: Executor, message: Any) -> str:
        with inside:
            return await real_apply(self, message)

    monkeypatch.setattr(Executor, "apply", apply)

    def executor() -> int:
        """What the host does per instance: take a few messages, run the function, delete them."""
        done = 0
        while batch := world.storage.queues.receive("actions", 4, visibility=timedelta(minutes=5)):
            for message, body in batch:
                run_function("execute_action", queue_message(body, message.id, message.dequeue_count))
                world.storage.queues.delete("actions", message)
                done += 1
        return done

    workers = [Worker(f"executor-{n}", executor) for n in range(EXECUTORS)]
    assert sum(w.result() for w in workers) == queued
    assert inside.most >= 2, "the executors never overlapped: this proves nothing about concurrency"

    assert seatwarden_changes(world.sb, since), "the night's actions changed the org"
    assert_each_change_audited_once(world, since)
    for run in (world.storage.runs.get(r.run_id) for r in world.storage.runs.list(limit=50)):
        assert sum(run.outcomes.values()) == run.actions_total, run


def test_one_action_delivered_to_two_executors_at_once_is_applied_and_audited_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A message whose invocation outlives its visibility timeout is delivered again while the
    # first invocation still runs: two executors hold the same action.
    body = next(b for b in planned_actions(world) if b["action"]["reason"] == "INACTIVE")
    person, run_id = body["action"]["account_id"], body["run_id"]
    since = len(world.sb.changes())
    # The first has read the person and stops there, before applying anything.
    read = Gate("the first delivery has read the person")
    real_current = Executor.current

    async def current(self: Executor, account_id: str) -> Current:
        found = await real_current(self, account_id)
        if threading.current_thread().name == "delivery-1":
            read.arrive()
        return found

    monkeypatch.setattr(Executor, "current", current)
    lease = Refusals(monkeypatch, f"person-{person}")

    first = Worker("delivery-1", lambda: run_function("execute_action", queue_message(body, "m", 1)))
    try:
        read.wait_reached()
        second = Worker("delivery-2", lambda: run_function("execute_action", queue_message(body, "m", 2)))
        lease.wait_refused(second)  # the second waits for the first to finish with the person
    finally:
        read.open()
    first.result()
    second.result()

    product = body["action"]["product"]
    access, marker = (world.sb.org.group_by_name(f"{product}-{g}").id for g in ("users", "unlicensed-users"))
    assert seatwarden_changes(world.sb, since) == Counter(
        {(person, "membership_removed", access): 1, (person, "membership_added", marker): 1}
    )
    assert len(world.audit_for(person)) == 1
    assert_each_change_audited_once(world, since)
    assert world.storage.results.get(run_id, person)["outcome"] == "applied"
    assert world.storage.runs.get(run_id).outcomes.get("applied") == 1, "counted once"


def test_an_executor_that_cannot_get_the_person_leaves_the_action_to_its_queue_and_says_why(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = next(b for b in planned_actions(world) if b["action"]["reason"] == "INACTIVE")
    person, run_id = body["action"]["account_id"], body["run_id"]
    monkeypatch.setattr(execute, "PERSON_LEASE_WAIT_SECONDS", 0.3)
    since = len(world.sb.changes())
    # Another writer holds the person, longer than an executor waits.
    other = world.storage.leases.acquire(
        f"person-{person}", "events", timedelta(minutes=2), datetime.now(UTC)
    )
    assert other is not None

    with pytest.raises(LeaseHeld, match="held by events"):
        run_function("execute_action", queue_message(body, "m", 1))
    assert seatwarden_changes(world.sb, since) == Counter()
    assert world.audit_for(person) == []
    assert world.storage.results.get(run_id, person)["outcome"] == "planned"

    world.storage.leases.release(other)
    run_function("execute_action", queue_message(body, "m", 2))  # the queue's retry
    assert world.storage.results.get(run_id, person)["outcome"] == "applied"
    assert len(world.audit_for(person)) == 1
