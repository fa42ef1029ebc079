"""Runs: ids that name their row, newest-first listing, guarded changes and counters."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.store import RunNotFound, StaleWrite, Storage
from tests.store import open_storage

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix, clock=lambda: T0 + timedelta(hours=1))


def test_a_created_run_is_found_by_its_id_with_every_field(storage: Storage) -> None:
    run = storage.runs.create("confluence-inactive", "confluence", "enforce", T0)
    assert run.run_id.startswith("confluence-inactive.")
    assert run.status == "planning"
    assert storage.runs.get(run.run_id) == run
    changed = storage.runs.set_status(
        run.run_id,
        "held",
        counts={"INACTIVE": 40, "GRANT": 2},
        verdict={"held": True, "revocations": 40, "limit": 25, "why": "over"},
        licensed_before=100,
        licensed_after=62,
        actions_total=42,
        finished_at=T0 + timedelta(minutes=3),
        error="",
    )
    again = storage.runs.get(run.run_id)
    assert again == changed
    assert again is not None and again.counts == {"INACTIVE": 40, "GRANT": 2}
    assert again.verdict["limit"] == 25 and again.finished_at == T0 + timedelta(minutes=3)
    assert again.to_dict()["started_at"] == "2026-03-01T02:00:00.000000Z"


def test_unknown_run_ids_are_not_found(storage: Storage) -> None:
    assert storage.runs.get("no-such-policy.9999999999999") is None
    assert storage.runs.get("not a run id") is None
    with pytest.raises(RunNotFound):
        storage.runs.increment("ghost.1234567890123", "actions_applied")


def test_runs_list_newest_first_per_policy_and_across_policies(storage: Storage) -> None:
    made = [storage.runs.create("alpha", "confluence", "report", T0 + timedelta(days=d)) for d in range(3)]
    made += [storage.runs.create("beta", "jira", "report", T0 + timedelta(days=d, hours=1)) for d in range(3)]
    alpha = storage.runs.list("alpha")
    assert [r.run_id for r in alpha] == [r.run_id for r in reversed(made[:3])]
    assert [r.run_id for r in storage.runs.list("alpha", limit=2)] == [made[2].run_id, made[1].run_id]
    everyone = storage.runs.list(limit=4)
    assert [r.started_at for r in everyone] == sorted((r.started_at for r in made), reverse=True)[:4]


def test_two_runs_started_in_the_same_millisecond_get_different_ids(storage: Storage) -> None:
    first = storage.runs.create("alpha", "confluence", "report", T0)
    second = storage.runs.create("alpha", "confluence", "report", T0)
    assert first.run_id != second.run_id
    assert storage.runs.get(first.run_id) is not None and storage.runs.get(second.run_id) is not None


def test_saving_a_run_read_before_someone_elses_change_raises_stale_write(storage: Storage) -> None:
    run = storage.runs.create("alpha", "confluence", "enforce", T0)
    storage.runs.set_status(run.run_id, "applying")
    with pytest.raises(StaleWrite):
        storage.runs.save(replace(run, status="failed"))
    found = storage.runs.get(run.run_id)
    assert found is not None and found.status == "applying"


def test_set_status_refuses_unknown_statuses_and_fields(storage: Storage) -> None:
    run = storage.runs.create("alpha", "confluence", "enforce", T0)
    with pytest.raises(ValueError, match="unknown run status"):
        storage.runs.set_status(run.run_id, "finished")
    with pytest.raises(TypeError, match="run_id"):
        storage.runs.set_status(run.run_id, "done", **{"run_id": "other"})


def test_concurrent_increments_from_two_clients_all_count(azurite: str, table_prefix: str) -> None:
    clients = [open_storage(azurite, table_prefix) for _ in range(2)]
    run = clients[0].runs.create("alpha", "confluence", "enforce", T0)
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(storage: Storage) -> None:
        try:
            go.wait()
            for _ in range(25):
                storage.runs.increment(run.run_id, "actions_applied")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = clients[0].runs.get(run.run_id)
    assert found is not None and found.actions_applied == 50


def test_the_last_recorded_outcome_finishes_an_applying_run(storage: Storage) -> None:
    run = storage.runs.create("alpha", "confluence", "enforce", T0)
    storage.runs.set_status(run.run_id, "applying", actions_total=3)
    storage.runs.record_outcome(run.run_id, "applied")
    middle = storage.runs.record_outcome(run.run_id, "unchanged")
    assert middle.status == "applying"
    done = storage.runs.record_outcome(run.run_id, "failed")
    assert done.status == "done"
    assert done.finished_at == T0 + timedelta(hours=1)
    assert (done.actions_applied, done.actions_failed, done.actions_poisoned) == (1, 1, 0)
    assert done.outcomes == {"applied": 1, "unchanged": 1, "failed": 1}
    with pytest.raises(ValueError, match="unknown outcome"):
        storage.runs.record_outcome(run.run_id, "exploded")
