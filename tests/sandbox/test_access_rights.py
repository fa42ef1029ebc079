"""What the sandbox refuses for want of a right: an API key's scopes, the app's Graph permissions."""

from __future__ import annotations

import httpx

from sandbox import Sandbox

from .conftest import atlassian_client, directory_path, graph_client


def _group_id(sb: Sandbox, name: str) -> str:
    return sb.org.group_by_name(name).id


def test_a_key_without_scopes_may_call_every_endpoint(sb: Sandbox) -> None:
    account = sorted(u.account_id for u in sb.org.users)[0]
    with atlassian_client(sb) as client:
        search = client.post(directory_path(sb, "/users/search"), json={"limit": 1})
        events = client.get(f"/v1/orgs/{sb.org_id}/events-stream", params={"limit": 1})
        added = client.post(
            directory_path(sb, f"/groups/{_group_id(sb, 'contractors')}/memberships"),
            json={"accountId": account},
        )
    assert sb.api_key_scopes() is None
    assert (search.status_code, events.status_code, added.status_code) == (200, 200, 200)


def test_a_key_with_scopes_is_refused_what_its_scopes_do_not_cover_and_every_write(sb: Sandbox) -> None:
    sb.set_api_key_scopes(["read:directories:admin"])
    account = sorted(u.account_id for u in sb.org.users)[0]
    before = len(sb.changes())
    with atlassian_client(sb) as client:
        search = client.post(directory_path(sb, "/users/search"), json={"limit": 1})
        last_active = client.get(f"/v1/orgs/{sb.org_id}/directory/users/{account}/last-active-dates")
        events = client.get(f"/v1/orgs/{sb.org_id}/events-stream", params={"limit": 1})
        added = client.post(
            directory_path(sb, f"/groups/{_group_id(sb, 'contractors')}/memberships"),
            json={"accountId": account},
        )
    assert search.status_code == 200 and last_active.status_code == 200
    for refused in (events, added):
        assert refused.status_code == 403
        error = refused.json()["errors"][0]
        assert error["status"] == "403" and error["code"] == "ADMIN-403-1"
    assert "read:events:admin" in events.json()["errors"][0]["detail"]
    assert "without scopes" in added.json()["errors"][0]["detail"]
    assert len(sb.changes()) == before, "a refused write changes nothing"


def test_a_wrong_key_is_refused_with_401_before_any_scope_is_looked_at(sb: Sandbox) -> None:
    sb.set_api_key_scopes([])
    response = httpx.post(
        f"{sb.atlassian_base}{directory_path(sb, '/groups/search')}",
        json={},
        headers={"Authorization": "Bearer not-the-key"},
        trust_env=False,
    )
    assert response.status_code == 401


def test_key_scopes_are_set_over_http_and_bad_bodies_change_nothing(sb: Sandbox) -> None:
    with httpx.Client(base_url=sb.control_base, trust_env=False) as control, atlassian_client(sb) as client:
        bad = control.post("/api-key-scopes", json={"scopes": "read:directories:admin"})
        assert bad.status_code == 400 and sb.api_key_scopes() is None
        scoped = control.post("/api-key-scopes", json={"scopes": ["read:events:admin"]})
        assert scoped.json() == {"scopes": ["read:events:admin"]}
        assert client.post(directory_path(sb, "/groups/search")).status_code == 403
        assert control.post("/api-key-scopes", json={"scopes": None}).json() == {"scopes": None}
        assert client.post(directory_path(sb, "/groups/search")).status_code == 200


def test_graph_refuses_a_call_whose_permission_is_not_granted(sb: Sandbox) -> None:
    gid = sb.org.entra_group_id("confluence")
    sb.set_graph_permissions(["User.ReadBasic.All"])
    with graph_client(sb) as client:
        members = client.get(f"/groups/{gid}/transitiveMembers")
        subscriptions = client.get("/subscriptions")
        batch = client.post(
            "/$batch", json={"requests": [{"id": "1", "method": "GET", "url": f"/groups/{gid}/members"}]}
        )
        sb.set_graph_permissions(["GroupMember.Read.All"])
        allowed = client.get(f"/groups/{gid}/transitiveMembers")
        still_refused = client.get("/subscriptions")
    for refused in (members, subscriptions):
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    assert batch.status_code == 200 and batch.json()["responses"][0]["status"] == 403
    assert allowed.status_code == 200 and still_refused.status_code == 403


def test_graph_permissions_are_set_over_http(sb: Sandbox) -> None:
    with httpx.Client(base_url=sb.control_base, trust_env=False) as control:
        assert control.post("/graph-permissions", json={"permissions": [1]}).status_code == 400
        granted = control.post("/graph-permissions", json={"permissions": ["Group.Read.All"]})
    assert granted.json() == {"permissions": ["Group.Read.All"]}
    assert sb.graph_permissions() == frozenset({"Group.Read.All"})
    with graph_client(sb) as client:
        assert client.get("/subscriptions").status_code == 200
