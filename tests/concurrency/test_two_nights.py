"""Two nightly runs at once: the lease lets one plan each product; the other leaves and says so."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.services.snapshot import SnapshotReader, product_key
from tests.concurrency import Gate, Worker, assert_each_change_audited_once, seatwarden_changes
from tests.functions.conftest import World, run_function, timer


def reconcile_logs(caplog: pytest.LogCaptureFixture, thread: str) -> list[dict[str, Any]]:
    """The outcomes `nightly_reconcile` logged from one thread, one per policy."""
    return [
        json.loads(r.getMessage().removeprefix("reconcile "))
        for r in caplog.records
        if r.name == "seatwarden.functions"
        and r.threadName == thread
        and r.getMessage().startswith("reconcile ")
    ]


def test_of_two_nightly_runs_at_once_one_plans_each_product_and_the_other_leaves_saying_so(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The first night stops inside its leases, at the snapshot read, until the second has gone.
    inside = Gate("the first night's snapshot read")
    real_read = SnapshotReader.read

    async def read(self: SnapshotReader, *args: Any, **kwargs: Any) -> Any:
        inside.arrive()
        return await real_read(self, *args, **kwargs)

    monkeypatch.setattr(SnapshotReader, "read", read)
    caplog.set_level(logging.INFO, logger="seatwarden.functions")

    first = Worker("night-1", lambda: run_function("nightly_reconcile", timer()))
    inside.wait_reached()
    second = Worker("night-2", lambda: run_function("nightly_reconcile", timer()))
    second.result()  # it ends while the first still holds every lease
    inside.open()
    first.result()

    assert inside.arrivals == ["night-1"], "the second night must not read the org at all"
    names = {p.name for p in world.policies.policies}
    left = reconcile_logs(caplog, "night-2")
    assert {o["policy"] for o in left} == names
    assert all(o["status"] == "skipped" and "lease" in o["why"] and o["run_id"] is None for o in left)
    planned = reconcile_logs(caplog, "night-1")
    assert {o["policy"] for o in planned} == names
    assert all(o["status"] != "skipped" and o["run_id"] for o in planned)
    for policy in world.policies.policies:
        runs = world.storage.runs.list(policy=policy.name)
        assert [r.run_id for r in runs] == [o["run_id"] for o in planned if o["policy"] == policy.name]
        assert world.storage.leases.get(f"product-{product_key(policy.product)}") is None, "lease released"

    # What the one plan queued is applied once, each change with one audit entry.
    since = len(world.sb.changes())
    world.drain("actions")
    assert seatwarden_changes(world.sb, since), "the night's actions changed the org"
    assert_each_change_audited_once(world, since)
