"""Injected faults, rate limits, latency and request counts, and their HTTP controls."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

import httpx
import pytest

from sandbox import Sandbox

from .conftest import atlassian_client, directory_path, graph_client

SEARCH = "/users/search"


def test_5xx_fault_answers_in_the_vendors_shape_then_clears(sb: Sandbox) -> None:
    sb.faults.inject(kind="5xx", path_contains=SEARCH, count=2, status=500)
    with atlassian_client(sb) as client:
        statuses = [client.post(directory_path(sb, SEARCH), json={}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [500, 500, 200]
    error = statuses[0].json()["errors"][0]
    assert error["status"] == "500" and error["code"].startswith("ADMIN-500")


def test_graph_5xx_fault_uses_graphs_error_shape(sb: Sandbox) -> None:
    with graph_client(sb) as client:
        sb.faults.inject(kind="5xx", path_contains="/transitiveMembers")
        group_id = sb.org.entra_group_id("confluence")
        failed = client.get(f"/groups/{group_id}/transitiveMembers")
    assert failed.status_code == 503 and "code" in failed.json()["error"]


def test_timeout_fault_leaves_the_client_waiting(start_sandbox: Callable[..., Sandbox]) -> None:
    sb = start_sandbox(fault_timeout_s=5)
    sb.faults.inject(kind="timeout", path_contains=SEARCH)
    began = time.monotonic()
    with atlassian_client(sb, timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.post(directory_path(sb, SEARCH), json={})
    assert time.monotonic() - began < 2


def test_timeout_fault_holds_past_descriptor_1024(start_sandbox: Callable[..., Sandbox]) -> None:
    """Regression: the wait used select.select, which refuses a descriptor numbered 1024 or
    more; late in a long session the fault then hung up at once instead of holding."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert max(held) >= 1024
        test_timeout_fault_leaves_the_client_waiting(start_sandbox)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_truncated_fault_cuts_the_body_after_applying_the_request(sb: Sandbox) -> None:
    group = sb.org.group_by_name("jira-software-users")
    person = next(u.account_id for u in sb.org.users if u.account_id not in group.members)
    sb.faults.inject(kind="truncated", path_contains="/memberships")
    with atlassian_client(sb) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post(directory_path(sb, f"/groups/{group.id}/memberships"), json={"accountId": person})
    assert person in sb.org.members("jira-software-users")


def test_drop_fault_closes_without_a_response(sb: Sandbox) -> None:
    sb.faults.inject(kind="drop", path_contains=SEARCH)
    with atlassian_client(sb) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(directory_path(sb, SEARCH), json={})
        assert client.post(directory_path(sb, SEARCH), json={}).status_code == 200


def test_429_fault_carries_retry_after_and_rate_limit_headers(sb: Sandbox) -> None:
    sb.faults.inject(kind="429", path_contains=SEARCH, retry_after=7)
    with atlassian_client(sb) as client:
        throttled = client.post(directory_path(sb, SEARCH), json={})
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(throttled.headers)
    assert throttled.json()["errors"][0]["code"] == "ADMIN-429-1"


def test_probability_faults_hit_some_requests_not_all(sb: Sandbox) -> None:
    sb.faults.inject(kind="5xx", path_contains=SEARCH, count=None, probability=0.5)
    with atlassian_client(sb) as client:
        statuses = [client.post(directory_path(sb, SEARCH), json={"limit": 1}).status_code for _ in range(30)]
    assert 3 < statuses.count(503) < 27
    sb.faults.clear()
    with atlassian_client(sb) as client:
        assert client.post(directory_path(sb, SEARCH), json={}).status_code == 200


def test_rate_limit_throttles_with_atlassian_headers(sb: Sandbox) -> None:
    sb.set_rate_limit("last-active", 2)
    person = sb.org.users[0].account_id
    path = f"/v1/orgs/{sb.org_id}/directory/users/{person}/last-active-dates"
    with atlassian_client(sb) as client:
        responses = [client.get(path) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    ok, throttled = responses[0], responses[2]
    assert ok.headers["X-RateLimit-Limit"] == "2"
    assert ok.headers["X-RateLimit-Remaining"] == "1"
    assert ok.headers["X-RateLimit-Reset"].endswith("Z")
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["X-RateLimit-Remaining"] == "0"
    error = throttled.json()["errors"][0]
    assert error == {**error, "status": "429", "code": "ADMIN-429-1"}


def test_default_limits_follow_the_docs_and_scale(start_sandbox: Callable[..., Sandbox]) -> None:
    assert start_sandbox().rate_limits()["events"] == 10
    scaled = start_sandbox(rate_scale=3).rate_limits()
    assert scaled["events"] == 30 and scaled["last-active"] == 600


def test_graph_throttling_uses_graphs_shape(sb: Sandbox) -> None:
    group_id = sb.org.entra_group_id("confluence")
    with graph_client(sb) as client:
        sb.set_rate_limit("graph", 1)
        client.get(f"/groups/{group_id}")
        throttled = client.get(f"/groups/{group_id}")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"]
    assert throttled.json()["error"]["code"] == "TooManyRequests"


def test_latency_is_added_to_every_request(sb: Sandbox) -> None:
    sb.set_latency(150)
    with atlassian_client(sb) as client:
        began = time.monotonic()
        client.post(directory_path(sb, SEARCH), json={"limit": 1})
        assert time.monotonic() - began >= 0.15


def test_requests_are_counted_per_endpoint_class(sb: Sandbox) -> None:
    with atlassian_client(sb) as client:
        for _ in range(3):
            client.post(directory_path(sb, SEARCH), json={"limit": 1})
        client.post(directory_path(sb, "/groups/search"))
        client.get(f"/v1/orgs/{sb.org_id}/events-stream")
    with graph_client(sb) as client:
        client.get(f"/groups/{sb.org.entra_group_id('confluence')}")
    counts = sb.request_counts()
    assert counts["users-search"] == 3 and counts["groups"] == 1 and counts["events"] == 1
    assert counts["token"] == 1 and counts["graph"] == 1 and counts["total"] == 7
    sb.reset_counts()
    assert sb.request_counts() == {}


def test_controls_work_over_http(sb: Sandbox) -> None:
    group = sb.org.group_by_name("jira-software-users")
    person = next(u.account_id for u in sb.org.users if u.account_id not in group.members)
    with httpx.Client(base_url=sb.control_base, trust_env=False) as control, atlassian_client(sb) as client:
        assert control.post("/faults", json={"kind": "5xx", "path_contains": SEARCH}).status_code == 201
        assert client.post(directory_path(sb, SEARCH), json={}).status_code == 503
        client.post(directory_path(sb, f"/groups/{group.id}/memberships"), json={"accountId": person})
        changes = control.get("/changes").json()["data"]
        advanced = control.post("/advance", json={"days": 2}).json()
        counts = control.get("/counts").json()
        assert control.delete("/faults").status_code == 204
        assert control.post("/latency", json={"ms": 0}).status_code == 204
        limited = control.post("/rate-limits", json={"endpoint_class": "groups", "per_minute": 5}).json()
        bad = control.post("/faults", json={"kind": "meteor"})
    assert [c["kind"] for c in changes] == ["membership_added"]
    assert changes[0]["details"]["account_id"] == person and changes[0]["at"].endswith("Z")
    assert advanced["uses"] > 0
    assert counts["users-search"] == 1 and counts["memberships"] == 1
    assert limited["groups"] == 5
    assert bad.status_code == 400


def test_load_serves_a_fresh_org_on_the_running_servers_with_faults_cleared(
    start_sandbox: Callable[..., Sandbox],
) -> None:
    sb = start_sandbox(users=20, seed=3)
    group = sb.org.group_by_name("jira-software-users")
    person = next(u.account_id for u in sb.org.users if u.account_id not in group.members)
    with atlassian_client(sb) as client:
        client.post(directory_path(sb, f"/groups/{group.id}/memberships"), json={"accountId": person})
    sb.faults.inject(kind="5xx", path_contains=SEARCH, count=None)
    base, key = sb.atlassian_base, sb.api_key

    sb.load(users=12, seed=4)

    assert (sb.atlassian_base, sb.api_key) == (base, key)
    assert sb.changes() == [] and sb.faults.rules() == []
    with atlassian_client(sb) as client:
        found = client.post(directory_path(sb, SEARCH), json={"limit": 100})
    assert found.status_code == 200
    assert sorted(u["accountId"] for u in found.json()["data"]) == [u.account_id for u in sb.org.users]
    assert len(sb.org.users) == 12
