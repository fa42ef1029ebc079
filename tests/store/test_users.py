"""User states: round trips, ETag-guarded updates, forward-only dates, the bulk write."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date, timedelta

import pytest

import shared.store._base
from shared.store import StaleWrite, Storage, UserState
from tests.store import RequestCounter, open_storage

DAY = date(2026, 3, 1)


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix)


def state(account_id: str, **changes: object) -> UserState:
    base = UserState(
        account_id=account_id,
        product="confluence",
        email=f"{account_id}@example.com",
        entitled=True,
        licensed=True,
        last_active=DAY,
        licensed_since=date(2025, 1, 1),
        last_seen=DAY,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_user_state_reads_back_exactly_as_written_with_its_etag(storage: Storage) -> None:
    written = state(
        "acc-1", marked=True, marked_at=DAY, warned_for=date(2026, 4, 1), last_lookup=DAY, last_active=None
    )
    storage.users.update("confluence", "acc-1", lambda _: written)
    found = storage.users.get("confluence", "acc-1")
    assert found is not None
    read, etag = found
    assert read == written
    assert etag
    assert storage.users.get("confluence", "nobody") is None
    assert storage.users.get("jira-software", "acc-1") is None


def test_all_returns_every_state_of_one_product_only(storage: Storage) -> None:
    storage.users.upsert_many("confluence", [state(f"c{i}") for i in range(30)])
    storage.users.upsert_many("jira-software", [replace(state("j1"), product="jira-software")])
    everyone = storage.users.all("confluence")
    assert sorted(everyone) == sorted(f"c{i}" for i in range(30))
    assert everyone["c7"] == state("c7")


def test_account_ids_with_characters_keys_forbid_round_trip(storage: Storage) -> None:
    odd = "team/a#b?c\\d%e"
    storage.users.update("confluence", odd, lambda _: state(odd))
    assert storage.users.all("confluence") == {odd: state(odd)}
    found = storage.users.get("confluence", odd)
    assert found is not None and found[0].account_id == odd


def test_update_gives_mutate_none_for_a_new_person_and_the_stored_state_after(storage: Storage) -> None:
    seen: list[UserState | None] = []

    def mutate(current: UserState | None) -> UserState:
        seen.append(current)
        return current or state("acc-2")

    storage.users.update("confluence", "acc-2", mutate)
    storage.users.update("confluence", "acc-2", mutate)
    assert seen == [None, state("acc-2")]


def test_a_write_never_moves_last_active_back(storage: Storage) -> None:
    storage.users.update("confluence", "acc-3", lambda _: state("acc-3", last_active=DAY))
    written = storage.users.update(
        "confluence",
        "acc-3",
        lambda cur: replace(cur or state("acc-3"), last_active=DAY - timedelta(days=40)),
    )
    assert written.last_active == DAY
    storage.users.upsert_many("confluence", [state("acc-3", last_active=None)])
    assert storage.users.all("confluence")["acc-3"].last_active == DAY


def test_mutate_may_not_return_another_persons_state(storage: Storage) -> None:
    with pytest.raises(ValueError, match="not of confluence/acc-4"):
        storage.users.update("confluence", "acc-4", lambda _: state("someone-else"))


def test_two_clients_updating_one_person_concurrently_lose_no_update(azurite: str, table_prefix: str) -> None:
    # warned_for counts up a day per update: a lost update would leave it short.
    clients = [open_storage(azurite, table_prefix) for _ in range(2)]
    start = date(2026, 1, 1)
    clients[0].users.update("confluence", "busy", lambda _: state("busy", warned_for=start))
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def bump(current: UserState | None) -> UserState:
        assert current is not None and current.warned_for is not None
        return replace(current, warned_for=current.warned_for + timedelta(days=1))

    def worker(storage: Storage) -> None:
        try:
            go.wait()
            for _ in range(50):
                # Harder than production: two writers on one row without pause.
                storage.users.update("confluence", "busy", bump, max_tries=100)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = clients[0].users.get("confluence", "busy")
    assert found is not None
    assert found[0].warned_for == start + timedelta(days=100)


def test_a_stale_write_without_retry_raises_and_leaves_the_winners_row(
    azurite: str, table_prefix: str
) -> None:
    mine, theirs = open_storage(azurite, table_prefix), open_storage(azurite, table_prefix)
    mine.users.update("confluence", "acc-5", lambda _: state("acc-5", email="first@example.com"))

    def racing(current: UserState | None) -> UserState:
        # Another process writes between our read and our write.
        theirs.users.update(
            "confluence", "acc-5", lambda c: replace(c or state("acc-5"), email="theirs@example.com")
        )
        return replace(current or state("acc-5"), email="mine@example.com")

    with pytest.raises(StaleWrite, match="acc-5"):
        mine.users.update("confluence", "acc-5", racing, max_tries=1)
    found = mine.users.get("confluence", "acc-5")
    assert found is not None and found[0].email == "theirs@example.com"


def test_upsert_many_writes_250_people_in_three_transactions(azurite: str, table_prefix: str) -> None:
    counter = RequestCounter()
    storage = open_storage(azurite, table_prefix, raw_request_hook=counter)
    people = [state(f"p{i:03d}") for i in range(250)]
    counter.reset()
    sent = storage.users.upsert_many("confluence", people)
    assert counter.transactions <= 3
    assert sent == counter.transactions
    assert len(counter.urls) == counter.transactions  # nothing but the transactions
    assert storage.users.all("confluence") == {p.account_id: p for p in people}


def test_upsert_many_after_all_replaces_rows_it_read_in_transactions(azurite: str, table_prefix: str) -> None:
    counter = RequestCounter()
    storage = open_storage(azurite, table_prefix, raw_request_hook=counter)
    storage.users.upsert_many("confluence", [state(f"p{i}") for i in range(120)])
    stored = storage.users.all("confluence")
    counter.reset()
    storage.users.upsert_many("confluence", [replace(s, marked=True) for s in stored.values()])
    assert counter.transactions == 2 and len(counter.urls) == 2
    assert all(s.marked for s in storage.users.all("confluence").values())


def test_upsert_many_redoes_a_row_changed_since_it_was_read_without_moving_dates_back(
    azurite: str, table_prefix: str
) -> None:
    nightly, executor = open_storage(azurite, table_prefix), open_storage(azurite, table_prefix)
    nightly.users.upsert_many("confluence", [state(f"p{i}") for i in range(10)])
    stored = nightly.users.all("confluence")
    later = DAY + timedelta(days=3)
    # A return event records newer use after the nightly read...
    executor.users.update("confluence", "p4", lambda c: replace(c or state("p4"), last_active=later))
    # ...and a person the nightly never read appears meanwhile.
    executor.users.update("confluence", "new", lambda _: state("new", email="executor@example.com"))
    nightly.users.upsert_many(
        "confluence",
        [replace(s, licensed=False) for s in stored.values()] + [state("new", email="nightly@example.com")],
    )
    after = nightly.users.all("confluence")
    assert after["p4"].last_active == later
    assert not after["p4"].licensed
    assert all(not s.licensed for k, s in after.items() if k != "new")
    assert after["new"].email == "nightly@example.com"
    assert len(after) == 11


def test_a_bulk_write_keeps_what_an_executor_in_the_same_process_changed_after_the_read(
    storage: Storage,
) -> None:
    storage.users.upsert_many("confluence", [state("p1"), state("p2")])
    night = storage.users.separate()
    night.all("confluence")
    # After the night's read, an executor sharing the process's repository takes p1's license.
    storage.users.update(
        "confluence", "p1", lambda c: replace(c or state("p1"), licensed=False, marked=True, marked_at=DAY)
    )
    later = DAY + timedelta(days=2)
    night.upsert_many(
        "confluence", [state("p1", last_active=later, email="new@example.com"), state("p2", entitled=False)]
    )
    after = storage.users.all("confluence")
    assert (after["p1"].licensed, after["p1"].marked, after["p1"].marked_at) == (False, True, DAY)
    assert (after["p1"].last_active, after["p1"].email) == (later, "new@example.com")
    assert not after["p2"].entitled


def test_upsert_many_refuses_a_state_of_another_product(storage: Storage) -> None:
    with pytest.raises(ValueError, match="jira"):
        storage.users.upsert_many("confluence", [replace(state("x"), product="jira")])


def test_upsert_many_writes_a_person_given_twice_once_with_the_last_state(storage: Storage) -> None:
    storage.users.upsert_many("confluence", [state("twice", email="old@example.com"), state("twice")])
    assert storage.users.all("confluence") == {"twice": state("twice")}


def test_all_reads_the_same_through_the_fast_path_and_the_sdk(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [state(f"q'{i}", marked=i % 2 == 0, last_active=None if i % 3 else DAY) for i in range(25)]
    storage.users.upsert_many("conf'luence", [replace(p, product="conf'luence") for p in people])
    fast = storage.users.all("conf'luence")
    monkeypatch.setattr(shared.store._base, "RAW_QUERIES", False)
    slow = storage.users.all("conf'luence")
    assert fast == slow and len(fast) == 25


def test_the_fast_path_follows_continuations_across_pages(storage: Storage) -> None:
    storage.users.upsert_many("confluence", [state(f"p{i:02d}") for i in range(20)])
    table = storage.users._table
    rows = list(shared.store._base.query_json(table, "PartitionKey eq 'confluence'", "test", page_size=7))
    assert [r["account_id"] for r in rows] == [f"p{i:02d}" for i in range(20)]
    assert all(r["odata.etag"] for r in rows)
