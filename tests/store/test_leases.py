"""Leases: one holder at a time, expiry frees a lease, only the holder lets go."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.store import Lease, LeaseHeld, Storage
from tests.store import open_storage

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix, clock=lambda: NOW)


def race_for(name: str, clients: list[Storage], now: datetime) -> list[Lease | None]:
    """Every client tries to acquire ``name`` at the same moment; what each got."""
    go = threading.Barrier(len(clients))
    got: list[Lease | None] = []

    def worker(storage: Storage, me: str) -> None:
        go.wait()
        got.append(storage.leases.acquire(name, me, TTL, now))

    threads = [threading.Thread(target=worker, args=(c, f"r{i}")) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_of_two_concurrent_acquirers_exactly_one_wins(azurite: str, table_prefix: str) -> None:
    clients = [open_storage(azurite, table_prefix) for _ in range(2)]
    for round_ in range(5):
        got = race_for(f"product-{round_}", clients, NOW)
        assert sum(1 for lease in got if lease is not None) == 1


def test_of_two_acquirers_of_an_expired_lease_exactly_one_takes_it_over(
    azurite: str, table_prefix: str
) -> None:
    clients = [open_storage(azurite, table_prefix) for _ in range(2)]
    for round_ in range(5):
        assert clients[0].leases.acquire(f"p{round_}", "dead", TTL, NOW) is not None
        got = race_for(f"p{round_}", clients, NOW + TTL + timedelta(seconds=1))
        assert sum(1 for lease in got if lease is not None) == 1


def test_a_held_lease_is_refused_even_to_the_same_holder_name(storage: Storage) -> None:
    assert storage.leases.acquire("p", "reconcile", TTL, NOW) is not None
    assert storage.leases.acquire("p", "reconcile", TTL, NOW + TTL - timedelta(seconds=1)) is None


def test_an_expired_lease_can_be_taken_over(storage: Storage) -> None:
    old = storage.leases.acquire("p", "crashed", TTL, NOW)
    assert old is not None
    new = storage.leases.acquire("p", "next", TTL, NOW + TTL)
    assert new is not None and new.holder == "next"
    assert not storage.leases.release(old)  # the crashed holder coming back cannot free it
    current = storage.leases.get("p")
    assert current is not None and current.holder == "next"


def test_release_by_a_non_holder_does_nothing(storage: Storage) -> None:
    mine = storage.leases.acquire("p", "me", TTL, NOW)
    assert mine is not None
    impostor = Lease("p", "me", mine.expires_at, token="not-mine", etag=mine.etag)
    assert not storage.leases.release(impostor)
    assert storage.leases.acquire("p", "other", TTL, NOW) is None
    assert storage.leases.release(mine)
    assert storage.leases.acquire("p", "other", TTL, NOW) is not None


def test_renew_extends_the_lease_and_fails_once_it_was_taken_over(storage: Storage) -> None:
    lease = storage.leases.acquire("p", "me", TTL, NOW)
    assert lease is not None
    renewed = storage.leases.renew(lease, TTL, NOW + timedelta(minutes=20))
    assert renewed.expires_at == NOW + timedelta(minutes=50)
    assert storage.leases.acquire("p", "other", TTL, NOW + timedelta(minutes=40)) is None
    taken = storage.leases.acquire("p", "other", TTL, NOW + timedelta(minutes=51))
    assert taken is not None
    with pytest.raises(LeaseHeld, match="held by other"):
        storage.leases.renew(renewed, TTL, NOW + timedelta(minutes=52))


def test_hold_raises_lease_held_while_someone_has_it_and_releases_on_exit(storage: Storage) -> None:
    with storage.leases.hold("p", "me", TTL) as lease:
        assert lease.holder == "me"
        with pytest.raises(LeaseHeld) as held, storage.leases.hold("p", "other", TTL):
            pass
        assert held.value.holder == "me" and held.value.until == NOW + TTL
    assert storage.leases.get("p") is None
