"""The executor function against current state: stale plans skip, repeats change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.crashes import Crash, crashing
from tests.functions.conftest import World, queue_message, run_function


def planned_actions(world: World) -> list[dict[str, Any]]:
    """Run the night and take every queued action message off the queue, as the host would."""
    world.nightly()
    bodies = []
    while batch := world.storage.queues.receive("actions", max_messages=32):
        for message, body in batch:
            world.storage.queues.delete("actions", message)
            bodies.append(body)
    assert bodies
    return bodies


def test_an_inactive_action_is_skipped_when_the_person_used_the_product_after_the_plan(world: World) -> None:
    sb = world.sb
    body = next(b for b in planned_actions(world) if b["action"]["reason"] == "INACTIVE")
    person, product = body["action"]["account_id"], body["action"]["product"]
    assert sb.org.is_licensed(person, product)
    user = sb.org.user(person)
    sb.org.record_activity(user, sb.org.product_index(product), int(sb.clock.now().timestamp()))
    changes = len(sb.changes())

    run_function("execute_action", queue_message(body))

    assert sb.org.is_licensed(person, product)
    assert len(sb.changes()) == changes
    assert world.audit_for(person) == []
    result = world.storage.results.get(body["run_id"], person)
    assert result is not None and result["outcome"] == "skipped"
    assert world.storage.runs.get(body["run_id"]).outcomes.get("skipped") == 1


def test_a_repeated_action_message_changes_nothing_and_writes_no_second_audit_entry(world: World) -> None:
    sb = world.sb
    body = next(b for b in planned_actions(world) if b["action"]["reason"] == "INACTIVE")
    person, product = body["action"]["account_id"], body["action"]["product"]

    run_function("execute_action", queue_message(body, "first"))
    assert not sb.org.is_licensed(person, product)
    changes = len(sb.changes())
    assert len(world.audit_for(person)) == 1

    run_function("execute_action", queue_message(body, "again", dequeue_count=2))
    assert len(sb.changes()) == changes
    assert len(world.audit_for(person)) == 1
    assert world.storage.results.get(body["run_id"], person)["outcome"] == "applied"


def planned(world: World, reason: str) -> tuple[dict[str, Any], str, str]:
    """Tonight's first action message of `reason`, its person and its product."""
    body = next(b for b in planned_actions(world) if b["action"]["reason"] == reason)
    return body, body["action"]["account_id"], body["action"]["product"]


def test_a_retry_after_a_crash_before_the_audit_write_records_the_change_as_made(world: World) -> None:
    sb = world.sb
    body, person, product = planned(world, "INACTIVE")
    with crashing("before-audit"), pytest.raises(Crash):
        run_function("execute_action", queue_message(body, "first"))
    assert not sb.org.is_licensed(person, product)  # the change was made; no entry says so
    assert world.audit_for(person) == []

    run_function("execute_action", queue_message(body, "first", dequeue_count=2))

    [entry] = world.audit_for(person)
    made = {(op["kind"], op["role"]) for op in entry.after["changed"]}
    assert made == {("remove", "access"), ("add", "marker")}
    assert entry.after["already_in_effect"] == []


def test_an_op_made_by_someone_else_is_recorded_as_found_not_made(world: World) -> None:
    sb = world.sb
    body, person, product = planned(world, "INACTIVE")
    access = sb.org.group_by_name(f"{product}-users")
    sb.org.remove_member(access.id, person, via="sandbox")  # an admin got there first

    run_function("execute_action", queue_message(body))

    [entry] = world.audit_for(person)
    assert [(op["kind"], op["role"]) for op in entry.after["already_in_effect"]] == [("remove", "access")]
    assert [(op["kind"], op["role"]) for op in entry.after["changed"]] == [("add", "marker")]


def test_a_retry_that_skips_a_stale_action_still_audits_what_its_first_try_changed(world: World) -> None:
    sb = world.sb
    body, person, product = planned(world, "INACTIVE")
    with crashing("after-change"), pytest.raises(Crash):  # after the access removal, its first op
        run_function("execute_action", queue_message(body, "first"))
    assert not sb.org.is_licensed(person, product)
    user = sb.org.user(person)  # the person comes back before the retry
    sb.org.record_activity(user, sb.org.product_index(product), int(sb.clock.now().timestamp()))

    run_function("execute_action", queue_message(body, "first", dequeue_count=2))

    [entry] = world.audit_for(person)
    assert entry.after["outcome"] == "skipped"
    assert [(op["kind"], op["role"]) for op in entry.after["changed"]] == [("remove", "access")]


def test_a_grant_whose_worker_dies_after_the_audit_write_has_its_licensed_since_day(world: World) -> None:
    # Found by the fault campaign: the state update came after the audit entry; a worker
    # that died between them left a granted person without a licensed-since day, the
    # redelivery stopped at "duplicate", and the next night took the fresh license for a
    # use years before the grant (INACTIVE, idle 900 days).
    body, person, product = planned(world, "GRANT")
    with crashing("after-audit"), pytest.raises(Crash):
        run_function("execute_action", queue_message(body, "first"))
    run_function("execute_action", queue_message(body, "first", dequeue_count=2))

    stored = world.storage.users.get(product, person)
    assert stored is not None
    assert stored[0].licensed and stored[0].licensed_since == world.sb.clock.now().date()
    assert len(world.audit_for(person)) == 1
