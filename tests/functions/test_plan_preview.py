"""A plan preview through the admin API: asked for over HTTP, made by a queue function, read back."""

from __future__ import annotations

import httpx
import pytest

from shared.demo import drain
from tests.functions.conftest import World


def test_a_requested_preview_is_saved_as_a_report_run_and_changes_nothing(world: World) -> None:
    changes = len(world.sb.changes())

    asked = httpx.post(world.url("/api/admin/plan"), json={"policies": ["confluence"]})

    assert asked.status_code == 202, asked.text
    assert asked.json()["queued"] == ["confluence"]
    assert httpx.get(world.url("/api/admin/plan?policy=confluence")).status_code == 404
    assert drain(world.app, "previews", "make_preview") == 1
    shown = httpx.get(world.url("/api/admin/plan?policy=confluence"))
    assert shown.status_code == 200
    body = shown.json()
    assert body["run"]["status"] == "report"
    assert body["run"]["mode"] == "report"
    assert len(body["actions"]) == sum(body["run"]["counts"].values()) > 0
    assert {a["outcome"] for a in body["actions"]} == {"planned"}
    assert world.queued()["actions"] == 0
    assert len(world.sb.changes()) == changes


def test_a_preview_of_an_unknown_policy_or_a_malformed_body_is_400_and_queues_nothing(world: World) -> None:
    unknown = httpx.post(world.url("/api/admin/plan"), json={"policies": ["nope"]})
    malformed = httpx.post(
        world.url("/api/admin/plan"), content=b"{not json", headers={"content-type": "application/json"}
    )
    wrong_type = httpx.post(world.url("/api/admin/plan"), json={"policies": "confluence"})

    assert (unknown.status_code, malformed.status_code, wrong_type.status_code) == (400, 400, 400)
    assert "nope" in unknown.json()["error"]
    assert world.storage.queues.peek_count("previews") == 0


@pytest.mark.parametrize(
    "body",
    [b"NaN", b"1e999999", b"[]", b"null", b'{"polices": ["confluence"]}', b"[" * 50_000 + b"]" * 50_000],
    ids=["NaN", "infinity", "a-list", "null", "a-typo", "nested-past-the-stack"],
)
def test_a_preview_body_that_is_not_a_policies_object_is_400_not_every_policy(
    world: World, body: bytes
) -> None:
    # Regression (fuzzing): any JSON that was not an object asked for a preview of every policy,
    # a misspelt key too, and nesting past the stack was a 500.
    answer = httpx.post(world.url("/api/admin/plan"), content=body)
    assert answer.status_code == 400, answer.text
    assert "policies" in answer.json()["error"] or "nested" in answer.json()["error"]
    assert world.storage.queues.peek_count("previews") == 0


def test_the_plan_of_a_policy_needs_its_name(world: World) -> None:
    assert httpx.get(world.url("/api/admin/plan")).status_code == 400
