"""The cyclic collector is held off for a span and given back as it was found."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.collector import collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_span_pauses_the_collector_and_gives_it_back() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_spans_keep_it_off_until_the_last_ends() -> None:
    gc.enable()
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_gives_it_back() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the read failed")
    assert gc.isenabled()


@pytest.mark.anyio
async def test_the_snapshot_read_runs_with_the_collector_paused() -> None:
    from shared.services.snapshot import SnapshotReader

    seen: list[bool] = []

    class Client:
        async def search_groups(self) -> list[object]:
            seen.append(gc.isenabled())
            return []

        async def iter_user_pages(self):  # type: ignore[no-untyped-def]
            seen.append(gc.isenabled())
            return
            yield

    gc.enable()
    await SnapshotReader(Client(), None, {}).read([], datetime(2026, 12, 1, tzinfo=UTC))
    assert seen == [False, False] and gc.isenabled()
