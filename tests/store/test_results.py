"""Per-person results: a saved plan comes back as the same actions, outcomes are recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.model import Action, Facts, GroupRole, Op, OpKind, Plan, Reason, Via, Waiting, action_id
from shared.store import EntityTooLarge, Storage
from tests.store import RequestCounter, at_once, open_storage

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix)


def inactive(account_id: str, note: str = "") -> Action:
    return Action(
        id=action_id("conf", account_id, Reason.INACTIVE, NOW.date()),
        policy="conf",
        product="confluence",
        account_id=account_id,
        reason=Reason.INACTIVE,
        ops=(
            Op(OpKind.REMOVE, GroupRole.ACCESS, "g-access"),
            Op(OpKind.ADD, GroupRole.MARKER, "g-marker", Via.ATLASSIAN),
        ),
        facts=Facts(True, True, False, date(2025, 11, 1), 120, 90, f"{account_id}@example.com", note),
    )


def grant(account_id: str) -> Action:
    return Action(
        id=action_id("conf", account_id, Reason.GRANT, NOW.date()),
        policy="conf",
        product="confluence",
        account_id=account_id,
        reason=Reason.GRANT,
        ops=(Op(OpKind.ADD, GroupRole.ACCESS, "g-access", Via.ENTRA),),
        facts=Facts(True, False, False),
    )


def plan_of(actions: list[Action], waiting: tuple[Waiting, ...] = ()) -> Plan:
    return Plan("conf", "confluence", NOW, tuple(sorted(actions, key=lambda a: a.account_id)), waiting, 10, 8)


def test_a_saved_plan_gives_back_equal_actions(storage: Storage) -> None:
    plan = plan_of([inactive("a1"), grant("a2"), inactive("x/y#z", note="odd id")])
    storage.results.save_plan("conf.123", plan)
    assert storage.results.actions("conf.123") == list(plan.actions)


def test_waiting_decisions_are_rows_but_not_actions(storage: Storage) -> None:
    plan = plan_of([grant("a1")], (Waiting("a2", Reason.GRANT, "seat cap 10 reached"),))
    storage.results.save_plan("conf.124", plan)
    rows = {r["account_id"]: r for r in storage.results.rows("conf.124")}
    assert rows["a2"]["outcome"] == "waiting" and rows["a2"]["detail"] == "seat cap 10 reached"
    assert rows["a2"]["action_id"] is None
    assert rows["a1"]["outcome"] == "planned"
    assert rows["a1"]["ops"] == [op.to_dict() for op in plan.actions[0].ops]
    assert rows["a1"]["facts"] == plan.actions[0].facts.to_dict()
    assert [a.account_id for a in storage.results.actions("conf.124")] == ["a1"]


def test_a_plan_of_250_people_is_saved_in_three_transactions(azurite: str, table_prefix: str) -> None:
    counter = RequestCounter()
    storage = open_storage(azurite, table_prefix, raw_request_hook=counter)
    plan = plan_of([inactive(f"u{i:03d}") for i in range(250)])
    counter.reset()
    assert storage.results.save_plan("conf.125", plan) == 250
    assert counter.transactions == 3
    assert len(storage.results.actions("conf.125")) == 250


def test_saving_the_same_plan_twice_changes_nothing(storage: Storage) -> None:
    plan = plan_of([inactive("a1"), grant("a2")])
    storage.results.save_plan("conf.126", plan)
    storage.results.save_plan("conf.126", plan)
    assert storage.results.actions("conf.126") == list(plan.actions)


def test_set_outcome_records_the_outcome_and_returns_the_one_before(storage: Storage) -> None:
    storage.results.save_plan("conf.127", plan_of([inactive("a1")]))
    assert storage.results.set_outcome("conf.127", "a1", "applied") == "planned"
    assert storage.results.set_outcome("conf.127", "a1", "applied", "again") == "applied"
    row = storage.results.get("conf.127", "a1")
    assert row is not None and (row["outcome"], row["detail"]) == ("applied", "again")
    assert storage.results.actions("conf.127") == [inactive("a1")]
    with pytest.raises(ValueError, match="unknown outcome"):
        storage.results.set_outcome("conf.127", "a1", "done")


def test_of_two_executors_recording_one_outcome_at_once_one_replaced_planned(
    azurite: str, table_prefix: str
) -> None:
    writers = [open_storage(azurite, table_prefix) for _ in range(2)]
    for round_ in range(5):
        writers[0].results.save_plan(f"conf.{round_}", plan_of([inactive("a1")]))
        told = at_once(
            writers,
            lambda storage, _i, run_id=f"conf.{round_}": storage.results.set_outcome(run_id, "a1", "applied"),
        )
        assert sorted(told, key=str) == ["applied", "planned"], "counted by one of them only"


def test_facts_too_large_for_a_table_property_are_refused_before_sending(storage: Storage) -> None:
    with pytest.raises(EntityTooLarge, match="action facts"):
        storage.results.save_plan("conf.128", plan_of([inactive("a1", note="x" * 40_000)]))
