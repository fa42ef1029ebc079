"""The audit trail: one hash chain under concurrent appenders, and verify finds tampering."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from shared.store import GENESIS_HASH, AuditEntry, AuditLog, Storage
from tests.store import at_once, open_storage


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 31, 23, 59, 0, tzinfo=UTC))


@pytest.fixture
def storage(azurite: str, table_prefix: str, clock: Clock) -> Storage:
    return open_storage(azurite, table_prefix, clock=clock)


@pytest.fixture
def raw_table(azurite: str, storage: Storage) -> Callable[[], object]:
    """The audit table as a tamperer sees it: the plain SDK, no Seatwarden in the way."""
    service = TableServiceClient.from_connection_string(azurite)
    return lambda: service.get_table_client(storage.table_names["audit"])


def append(log: AuditLog, n: int, **fields: object) -> list[AuditEntry]:
    return [
        log.append(
            {"actor": "executor", "action": "INACTIVE", "product": "confluence", "account_id": f"acc-{i}"},
            before={"licensed": True},
            after={"licensed": False, "i": i},
            why={"idle_days": 120 + i},
            **fields,
        )
        for i in range(n)
    ]


def test_entries_link_each_to_the_one_before_and_verify_ok(storage: Storage) -> None:
    entries = append(storage.audit, 3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert all(e.hash == e.compute_hash() for e in entries)
    report = storage.audit.verify()
    assert (report.ok, report.entries, report.problems) == (True, 3, [])


def test_an_empty_trail_verifies(storage: Storage) -> None:
    report = storage.audit.verify()
    assert report.ok and report.entries == 0


def test_fifty_appends_from_four_threads_make_one_contiguous_chain(azurite: str, table_prefix: str) -> None:
    writers = [open_storage(azurite, table_prefix) for _ in range(4)]
    go = threading.Barrier(4)
    made: list[AuditEntry] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int, storage: Storage) -> None:
        try:
            go.wait()
            for i in range(n):
                entry = storage.audit.append(
                    actor=f"executor-{id(storage)}", action="GRANT", account_id=f"a{i}"
                )
                with lock:
                    made.append(entry)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(n, s)) for n, s in zip((13, 13, 12, 12), writers, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(e.seq for e in made) == list(range(1, 51))
    by_seq = {e.seq: e for e in made}
    assert all(by_seq[s].prev_hash == by_seq[s - 1].hash for s in range(2, 51))
    report = writers[0].audit.verify()
    assert report.problems == [] and report.ok and report.entries == 50


def test_two_writers_appending_one_action_at_once_record_it_once(azurite: str, table_prefix: str) -> None:
    writers = [open_storage(azurite, table_prefix) for _ in range(2)]
    writers[0].audit.append(actor="executor", action="GRANT", account_id="before")
    for round_ in range(5):
        made = at_once(
            writers,
            lambda storage, i, round_=round_: storage.audit.append(
                actor=f"w{i}", action="INACTIVE", account_id="a", action_id=f"act-{round_}"
            ),
        )
        assert len(made) == 2 and made[0] == made[1], "both are told of the one entry"
    entries = writers[0].audit.query(limit=100)
    assert sorted(e.action_id for e in entries) == ["", *(f"act-{r}" for r in range(5))]
    report = writers[1].audit.verify()
    assert report.ok and report.entries == 6


def test_an_entry_edited_in_the_table_is_named_by_its_seq(storage: Storage, raw_table: Callable) -> None:
    entries = append(storage.audit, 5)
    table = raw_table()
    target = entries[2]
    row = table.get_entity(target.month, target.row_key)
    row["after"] = '{"licensed":true}'
    table.update_entity(row, mode=UpdateMode.REPLACE)
    report = storage.audit.verify()
    assert not report.ok
    assert any(p.startswith("seq 3: hash does not match") for p in report.problems), report.problems


def test_an_edit_with_a_recomputed_hash_still_breaks_the_chain(storage: Storage, raw_table: Callable) -> None:
    entries = append(storage.audit, 4)
    table = raw_table()
    forged = AuditEntry(**{**entries[1].__dict__, "actor": "cli:mallory"})
    row = table.get_entity(forged.month, forged.row_key)
    row["actor"] = forged.actor
    row["hash"] = forged.compute_hash()
    table.update_entity(row, mode=UpdateMode.REPLACE)
    problems = storage.audit.verify().problems
    assert "seq 3: prev_hash does not match the hash of seq 2" in problems
    assert "seq 2: hash differs from the one recorded when it was appended" in problems


def test_a_deleted_middle_entry_is_reported_missing(storage: Storage, raw_table: Callable) -> None:
    entries = append(storage.audit, 5)
    raw_table().delete_entity(entries[2].month, entries[2].row_key)
    report = storage.audit.verify()
    assert not report.ok
    assert "missing entry seq 3" in report.problems


def test_a_deleted_last_entry_is_reported_because_the_head_is_ahead(
    storage: Storage, raw_table: Callable
) -> None:
    entries = append(storage.audit, 4)
    raw_table().delete_entity(entries[3].month, entries[3].row_key)
    report = storage.audit.verify()
    assert not report.ok
    assert any(p.startswith("missing entry seq 4 (the chain head is at seq 4") for p in report.problems)


def test_an_append_that_crashed_after_its_claim_is_completed_by_the_next(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(storage.audit, 2)

    def crash(self: AuditLog, entry: AuditEntry, head: object) -> None:
        raise SystemExit("process died after claiming its seq")

    with monkeypatch.context() as patched:
        patched.setattr(AuditLog, "_complete", crash)
        with pytest.raises(SystemExit):
            storage.audit.append(actor="executor", action="GRANT", action_id="act-3")
    pending = storage.audit.verify()
    assert pending.ok and pending.entries == 2
    assert pending.notes and pending.notes[0].startswith("seq 3 is claimed")
    assert storage.audit.has_action("act-3")  # the claim counts, and has_action completes it
    nxt = storage.audit.append(actor="executor", action="GRANT")
    assert nxt.seq == 4
    report = storage.audit.verify()
    assert (report.ok, report.entries, report.notes) == (True, 4, [])
    assert [e.action_id for e in storage.audit.query(limit=2)] == ["", "act-3"]


def test_has_action_knows_the_action_ids_appended(storage: Storage) -> None:
    storage.audit.append(actor="executor", action="GRANT", action_id="abc123")
    assert storage.audit.has_action("abc123")
    assert not storage.audit.has_action("other")


def test_query_filters_and_returns_newest_first_across_months(storage: Storage, clock: Clock) -> None:
    log = storage.audit
    log.append(actor="executor", action="INACTIVE", account_id="alice")  # 2026-03-31 23:59
    clock.now += timedelta(minutes=2)  # April now
    log.append(actor="executor", action="GRANT", account_id="bob")
    clock.now += timedelta(minutes=1)
    log.append(actor="cli:carol", action="RELICENSE", account_id="alice")
    assert [e.seq for e in log.query()] == [3, 2, 1]
    assert [e.seq for e in log.query(account_id="alice")] == [3, 1]
    assert [e.seq for e in log.query(action="GRANT")] == [2]
    assert [e.seq for e in log.query(limit=2)] == [3, 2]
    april = datetime(2026, 4, 1, tzinfo=UTC)
    assert [e.seq for e in log.query(since=april)] == [3, 2]
    assert [e.seq for e in log.query(until=april)] == [1]
    assert [e.seq for e in log.query(since=april, until=april + timedelta(minutes=1, seconds=30))] == [2]
    assert log.query(account_id="nobody") == []
    first = log.query(account_id="alice")[-1]
    assert first.at == datetime(2026, 3, 31, 23, 59, tzinfo=UTC) and first.month == "2026-03"


def test_entry_times_never_run_backwards_along_the_chain(storage: Storage, clock: Clock) -> None:
    first = storage.audit.append(actor="executor", action="GRANT")
    clock.now -= timedelta(minutes=5)  # a writer whose clock is behind
    second = storage.audit.append(actor="executor", action="GRANT")
    assert second.at >= first.at
    assert storage.audit.verify().ok


def test_append_refuses_unknown_fields_and_entries_without_actor(storage: Storage) -> None:
    with pytest.raises(TypeError, match="seq"):
        storage.audit.append(actor="x", action="y", seq=7)
    with pytest.raises(ValueError, match="actor"):
        storage.audit.append(action="GRANT")


def test_an_entry_edited_into_nonsense_is_reported_not_a_crash(storage: Storage, raw_table: Callable) -> None:
    entries = append(storage.audit, 3)
    table = raw_table()
    row = table.get_entity(entries[1].month, entries[1].row_key)
    row["why"] = "{not json"
    table.update_entity(row, mode=UpdateMode.REPLACE)
    report = storage.audit.verify()
    assert not report.ok
    assert any("(seq 2) cannot be read" in p for p in report.problems), report.problems
    assert "missing entry seq 2" in report.problems
