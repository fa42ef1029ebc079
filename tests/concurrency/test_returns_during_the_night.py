"""A return event and the nightly run acting on the same person at the same time.

Whoever acts last must act on what is true now: a person who came back keeps the license,
whether the return lands between the night's snapshot and its action, or while the executor
is in the middle of taking the license.
"""

from __future__ import annotations

from collections import Counter

import pytest

from shared.model import Op, OpKind, Reason
from shared.services.execute import Executor
from tests.concurrency import (
    Gate,
    Refusals,
    Worker,
    assert_each_change_audited_once,
    log_in,
    seatwarden_changes,
    stop_after_planning,
)
from tests.functions.conftest import World, queue_message, run_function
from tests.functions.test_executor import planned_actions
from tests.functions.test_graph import eligible

PRODUCT = "confluence"


def use_the_product(world: World, account_id: str) -> None:
    """The person opens Confluence (Atlassian records the use) and logs in (the webhook fires)."""
    sb = world.sb
    sb.org.record_activity(
        sb.org.user(account_id), sb.org.product_index(PRODUCT), int(sb.clock.now().timestamp())
    )
    log_in(world, account_id)


def test_a_person_who_returns_between_the_nights_plan_and_its_action_keeps_the_license(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The night stops right after planning, its snapshot read and its INACTIVE decided.
    planned, plans = stop_after_planning(monkeypatch, PRODUCT)
    night = Worker("night", world.nightly)
    try:
        planned.wait_reached()
        plan = next(p for p in plans if p.product == PRODUCT)
        person = next(a.account_id for a in plan.actions if a.reason is Reason.INACTIVE)
        use_the_product(world, person)
        assert world.drain("returns") == 1  # the return event, handled while the night waits
    finally:
        planned.open()
    night.result()
    since = len(world.sb.changes())
    world.drain("actions")

    assert world.sb.org.is_licensed(person, PRODUCT)
    assert world.audit_for(person) == []
    run_id = next(r.run_id for r in world.storage.runs.list(policy=PRODUCT))
    result = world.storage.results.get(run_id, person)
    assert (result["reason"], result["outcome"]) == ("INACTIVE", "skipped")
    assert "used" in result["detail"]
    assert_each_change_audited_once(world, since)


def test_a_person_who_returns_while_the_executor_takes_the_license_gets_it_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = next(
        b
        for b in planned_actions(world)
        if (b["action"]["reason"], b["action"]["product"]) == ("INACTIVE", PRODUCT)
    )
    person = body["action"]["account_id"]

    # The executor has checked the person and taken the license, and stops before the marker.
    removed = Gate("the executor has removed the access")
    real_apply_op = Executor._apply_op

    async def apply_op(self: Executor, op: Op, account_id: str, entra_id: str | None) -> None:
        await real_apply_op(self, op, account_id, entra_id)
        if account_id == person and op.kind is OpKind.REMOVE:
            removed.arrive()

    monkeypatch.setattr(Executor, "_apply_op", apply_op)
    lease = Refusals(monkeypatch, f"person-{person}")
    since = len(world.sb.changes())

    executor = Worker("executor", lambda: run_function("execute_action", queue_message(body)))
    try:
        removed.wait_reached()
        use_the_product(world, person)  # too late for the executor's check
        returns = Worker("returns", lambda: world.drain("returns"))
        lease.wait_refused(returns)  # the return waits for the executor to finish with the person
    finally:
        removed.open()
    executor.result()
    assert returns.result() == 1

    assert world.sb.org.is_licensed(person, PRODUCT), "came back while the license was being taken"
    assert person not in world.sb.org.members(f"{PRODUCT}-unlicensed-users")
    assert [e.action for e in reversed(world.audit_for(person))] == ["INACTIVE", "RELICENSE"]
    assert_each_change_audited_once(world, since)


def test_a_person_entitled_again_between_the_nights_plan_and_its_action_keeps_the_license(
    world: World,
) -> None:
    sb = world.sb
    gid = sb.org.entra_group_id(PRODUCT)
    # Taken out of the Entra group before the night (its notification is not delivered): the
    # night plans REVOKE_UNENTITLED.
    person = next(
        a for a in sorted(world.entitled(PRODUCT)) if sb.org.is_licensed(a, PRODUCT) and eligible(world, a)
    )
    assert sb.entra_remove_member(gid, sb.org.user(person).entra_object_id)
    body = next(
        b
        for b in planned_actions(world)
        if (b["action"]["reason"], b["action"]["account_id"]) == ("REVOKE_UNENTITLED", person)
    )
    # Before the executor gets to it, an Entra admin puts the person back; Graph notifies.
    assert sb.entra_add_member(gid, sb.org.user(person).entra_object_id)
    delivery = sb.send_graph_notification(
        world.url("/api/webhooks/graph"), group_id=gid, client_state=world.env["GRAPH_CLIENT_STATE"]
    )
    assert delivery.status_code == 202, delivery.text
    assert world.drain("graph") == 1
    since = len(sb.changes())

    run_function("execute_action", queue_message(body))  # the night's stale REVOKE_UNENTITLED

    assert sb.org.is_licensed(person, PRODUCT), "entitled again, and the stale plan took the license"
    result = world.storage.results.get(body["run_id"], person)
    assert (result["outcome"], "entitled" in result["detail"]) == ("skipped", True)
    assert seatwarden_changes(sb, since) == Counter()
