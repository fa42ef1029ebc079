"""Deliveries, cursors and subscription records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from shared.store import Storage, Subscription
from tests.store import open_storage


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix)


def test_a_delivery_is_first_time_once_and_seen_after(storage: Storage) -> None:
    assert not storage.deliveries.seen("jira", "d-1")
    assert storage.deliveries.first_time("jira", "d-1")
    assert not storage.deliveries.first_time("jira", "d-1")
    assert storage.deliveries.seen("jira", "d-1")
    assert storage.deliveries.first_time("audit-webhook", "d-1")  # sources do not mix


def test_a_forgotten_delivery_is_first_time_again_and_a_source_lists_its_ids(storage: Storage) -> None:
    assert storage.deliveries.first_time("warning", "confluence|712020:a|2026-03-09")
    assert storage.deliveries.first_time("warning", "jira/b")
    assert storage.deliveries.first_time("other", "c")
    assert sorted(storage.deliveries.ids("warning")) == ["confluence|712020:a|2026-03-09", "jira/b"]
    storage.deliveries.forget("warning", "jira/b")
    storage.deliveries.forget("warning", "never-recorded")  # nothing to forget is fine
    assert storage.deliveries.ids("warning") == ["confluence|712020:a|2026-03-09"]
    assert storage.deliveries.first_time("warning", "jira/b")


def test_delivery_ids_with_slashes_hashes_and_control_characters_work(storage: Storage) -> None:
    for odd in ("a/b", "x#y", "q?r", "back\\slash", "tab\tnewline\n", "50%", "~h~looks-hashed"):
        assert storage.deliveries.first_time("jira", odd), odd
        assert not storage.deliveries.first_time("jira", odd), odd


def test_of_many_concurrent_deliveries_of_one_id_exactly_one_is_first(
    azurite: str, table_prefix: str
) -> None:
    clients = [open_storage(azurite, table_prefix) for _ in range(6)]
    go = threading.Barrier(len(clients))
    firsts: list[bool] = []

    def worker(storage: Storage) -> None:
        go.wait()
        firsts.append(storage.deliveries.first_time("action", "abc"))

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(firsts) == [False] * 5 + [True]


def test_cursors_round_trip_and_can_be_forgotten(storage: Storage) -> None:
    link = "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=abc#/x?y"
    assert storage.cursors.get("graph-delta/entitlement") is None
    storage.cursors.set("graph-delta/entitlement", link)
    assert storage.cursors.get("graph-delta/entitlement") == link
    storage.cursors.set("graph-delta/entitlement", link + "2")
    assert storage.cursors.get("graph-delta/entitlement") == link + "2"
    storage.cursors.delete("graph-delta/entitlement")
    assert storage.cursors.get("graph-delta/entitlement") is None


def test_subscriptions_are_upserted_listed_soonest_first_and_deleted(storage: Storage) -> None:
    late = Subscription(
        "s-2", "/groups/g2/members", "g2", datetime(2026, 4, 20, tzinfo=UTC), "kv:graph-state"
    )
    soon = Subscription("s-1", "/groups/g1/members", "g1", datetime(2026, 4, 2, tzinfo=UTC), "kv:graph-state")
    storage.subscriptions.upsert(late)
    storage.subscriptions.upsert(soon)
    assert storage.subscriptions.get("s-1") == soon
    assert storage.subscriptions.list() == [soon, late]
    renewed = Subscription(soon.id, soon.resource, soon.group_id, datetime(2026, 4, 30, tzinfo=UTC), "kv:x")
    storage.subscriptions.upsert(renewed)
    assert storage.subscriptions.list() == [late, renewed]
    storage.subscriptions.delete("s-2")
    assert storage.subscriptions.get("s-2") is None
    assert storage.subscriptions.list() == [renewed]
