"""A plan over the blast radius is held; an approval through the admin API releases it."""

from __future__ import annotations

import httpx

from shared.config import parse_policy
from tests.functions.conftest import World, policies_with

PRODUCT = "confluence"


def test_a_run_over_the_blast_radius_is_held_and_applied_only_after_approval(world: World) -> None:
    sb = world.sb
    raw = policies_with(
        sb, mode="enforce", blast_radius={"max_revocations": 0, "max_revocation_percent": 60}
    ).model_dump(mode="json")
    raw["policies"] = [p for p in raw["policies"] if p["product"] == PRODUCT]
    world.set_policies(parse_policy(raw, "held policy"))
    changes = len(sb.changes())

    world.nightly()
    (run,) = world.storage.runs.list(limit=5)
    assert run.status == "held"
    assert run.counts.get("INACTIVE", 0) + run.counts.get("REVOKE_UNENTITLED", 0) > 0
    assert world.queued()["actions"] == 0
    assert len(sb.changes()) == changes

    answer = httpx.post(world.url(f"/api/admin/runs/{run.run_id}/approve"))
    assert answer.status_code == 202, answer.text
    enqueued = answer.json()["enqueued"]
    assert enqueued == sum(run.counts.values())
    assert world.queued()["actions"] == enqueued
    assert [e.action for e in world.storage.audit.query(action="APPROVE_RUN", limit=5)] == ["APPROVE_RUN"]

    again = httpx.post(world.url(f"/api/admin/runs/{run.run_id}/approve"))
    assert again.status_code == 409
    assert world.queued()["actions"] == enqueued

    assert world.drain("actions") == enqueued
    applied = sb.changes()[changes:]
    assert applied, "the approved actions change the org"
    shown = httpx.get(world.url(f"/api/admin/runs/{run.run_id}")).json()
    outcomes = {row.get("outcome") for row in shown["results"]}
    assert outcomes <= {"applied", "unchanged", "waiting"}
    assert "applied" in outcomes
    marked = sb.org.members(f"{PRODUCT}-unlicensed-users")
    assert all(not sb.org.is_licensed(a, PRODUCT) for a in marked)


def test_approving_an_unknown_run_is_404(world: World) -> None:
    answer = httpx.post(world.url("/api/admin/runs/nope/approve"))
    assert answer.status_code == 404
