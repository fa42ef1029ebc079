"""The Atlassian Organizations API over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import Sandbox
from sandbox.atlassian_api import AtlassianApi
from sandbox.clock import Clock
from sandbox.generator import generate_org
from sandbox.routing import ApiRequest

from .conftest import START, atlassian_client, directory_path


def _search(client: httpx.Client, sb: Sandbox, **body: object) -> httpx.Response:
    return client.post(directory_path(sb, "/users/search"), json=body)


def _all_users(client: httpx.Client, sb: Sandbox, **body: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _search(client, sb, **body, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        found.extend(page.json()["data"])
        cursor = page.json()["links"]["next"]
        if cursor is None:
            return found


def test_users_search_pages_cover_every_user_exactly_once(start_sandbox: Callable[..., Sandbox]) -> None:
    sb = start_sandbox(users=237)
    with atlassian_client(sb) as client:
        first = _search(client, sb)
        assert len(first.json()["data"]) == 50  # the default page size
        for limit in (50, 100):
            ids = [u["accountId"] for u in _all_users(client, sb, limit=limit)]
            assert len(ids) == len(set(ids)) == 237
            assert set(ids) == {u.account_id for u in sb.org.users}
        capped = _search(client, sb, limit=1000)
        assert len(capped.json()["data"]) == 100


def test_users_search_page_shape_and_expands(sb: Sandbox) -> None:
    with atlassian_client(sb) as client:
        plain = _search(client, sb, limit=1).json()
        assert set(plain) == {"data", "links"}
        assert set(plain["links"]) == {"self", "prev", "next"}
        user = plain["data"][0]
        assert {
            "accountId",
            "accountType",
            "status",
            "accountStatus",
            "membershipStatus",
            "addedToOrg",
            "name",
            "email",
        } <= set(user)
        assert not {"platformRoles", "productAccess", "groups", "counts"} & set(user)
        full = _search(
            client, sb, limit=100, expand=["productAccess", "groups", "platformRoles", "counts.resources"]
        )
        people = full.json()["data"]
    assert all("platformRoles" in p and "groups" in p and "counts" in p for p in people)
    access = [a for p in people for a in p["productAccess"]]
    assert access and all(a["id"].startswith(f"ari:cloud:{a['key']}::site/") for a in access)
    assert all(a["lastActiveTimestamp"].endswith("Z") for a in access)


def test_a_page_renders_each_user_as_the_single_user_rendering_does_even_after_changes(
    start_sandbox: Callable[..., Sandbox],
) -> None:
    expand = ["productAccess", "groups", "platformRoles", "counts.resources"]
    for activity_in_search in (True, False):
        sb = start_sandbox(users=120, activity_in_search=activity_in_search)
        api = sb._atlassian
        with atlassian_client(sb) as client:
            for change in range(3):
                people = _all_users(client, sb, limit=100, expand=expand)
                root = people[0]["links"]["self"].rsplit("/users/", 1)[0]
                by_id = {u.account_id: u for u in sb.org.users}
                assert people == [api._user_json(by_id[p["accountId"]], set(expand), root) for p in people]
                someone = sb.org.users[change]
                if change == 0:  # what the page keeps per person must not hide a change
                    sb.org.suspend(someone.account_id, via="sandbox")
                    group = sb.org.group_by_name("executives")
                    sb.org.add_member(group.id, someone.account_id, via="sandbox")
                else:
                    sb.advance(days=5)


def test_without_activity_in_search_product_access_has_no_timestamps(
    start_sandbox: Callable[..., Sandbox],
) -> None:
    sb = start_sandbox(activity_in_search=False)
    with atlassian_client(sb) as client:
        people = _search(client, sb, limit=100, expand=["productAccess"]).json()["data"]
    access = [a for p in people for a in p["productAccess"]]
    assert access and all("lastActiveTimestamp" not in a for a in access)


def test_users_search_filters(sb: Sandbox) -> None:
    group = sb.org.group_by_name("confluence-users")
    with atlassian_client(sb) as client:
        members = _all_users(client, sb, groupIds=[group.id], limit=100)
        suspended = _all_users(client, sb, status=["suspended"])
        external = _all_users(client, sb, emailDomains=["partner.example.net"])
        some = [u.account_id for u in sb.org.users[:3]]
        chosen = _all_users(client, sb, accountIds=some)
        both = client.post(
            directory_path(sb, "/users/search"), json={"searchTerm": "a", "emails": ["x@example.com"]}
        )
    assert {u["accountId"] for u in members} == group.members
    assert suspended and all(u["status"] == "suspended" for u in suspended)
    assert {u["accountId"] for u in suspended} == {
        u.account_id for u in sb.org.users if u.status == "suspended"
    }
    assert all(u["email"].endswith("@partner.example.net") for u in external)
    assert [u["accountId"] for u in chosen] == some
    assert both.status_code == 400


def test_a_cursor_is_refused_for_other_filters_or_when_forged(sb: Sandbox) -> None:
    with atlassian_client(sb) as client:
        cursor = _search(client, sb, limit=5).json()["links"]["next"]
        other = _search(client, sb, limit=5, cursor=cursor, status=["suspended"])
        forged = _search(client, sb, cursor="bm90LWEtY3Vyc29y")
    for response in (other, forged):
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "ADMIN-400-1"


def test_missing_or_wrong_api_key_gets_atlassian_401(sb: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-key"}):
        response = httpx.post(
            f"{sb.atlassian_base}{directory_path(sb, '/users/search')}",
            json={},
            headers=headers,
            trust_env=False,
        )
        assert response.status_code == 401
        error = response.json()["errors"][0]
        assert error["status"] == "401" and error["code"] == "ADMIN-401-1"
        assert {"id", "title", "detail"} <= set(error)


def test_groups_search(sb: Sandbox) -> None:
    with atlassian_client(sb) as client:
        everything = client.post(directory_path(sb, "/groups/search")).json()
        named = client.post(
            directory_path(sb, "/groups/search"),
            json={"groupNames": ["CONFLUENCE-USERS"], "expand": ["counts.users"]},
        ).json()
        refused = client.post(
            directory_path(sb, "/groups/search"), json={"groupNames": ["x"], "searchTerm": "y"}
        )
        page_two = (
            client.post(directory_path(sb, "/groups/search"), json={"cursor": everything["links"]["next"]})
            if everything["links"]["next"]
            else None
        )
    assert len(everything["data"]) == 12 and everything["links"]["next"] is None
    [group] = named["data"]
    assert group["name"] == "confluence-users" and group["externalSynced"] is False
    assert group["counts"]["users"] == len(sb.org.members("confluence-users"))
    synced = next(g for g in everything["data"] if g["name"] == "confluence-user-role")
    assert synced["externalSynced"] is True and synced["managedBy"] == "external"
    assert refused.status_code == 400
    assert page_two is None


def test_membership_changes_are_applied_logged_and_idempotent(sb: Sandbox) -> None:
    access = sb.org.group_by_name("jira-software-users")
    outsider = next(u for u in sb.org.users if u.account_id not in access.members)
    path = directory_path(sb, f"/groups/{access.id}/memberships")
    with atlassian_client(sb) as client:
        added = client.post(path, json={"accountId": outsider.account_id})
        again = client.post(path, json={"accountId": outsider.account_id})
        removed = client.delete(f"{path}/{outsider.account_id}")
        removed_again = client.delete(f"{path}/{outsider.account_id}")
    assert [r.status_code for r in (added, again, removed, removed_again)] == [200] * 4
    assert "message" in added.json()
    kinds = [(c.kind, c.details["account_id"]) for c in sb.changes()]
    assert kinds == [("membership_added", outsider.account_id), ("membership_removed", outsider.account_id)]
    assert sb.changes()[0].details["via"] == "api"


def test_membership_errors_follow_atlassian_codes(sb: Sandbox) -> None:
    synced = sb.org.group_by_name("confluence-user-role")
    access = sb.org.group_by_name("confluence-users")
    person = sb.org.users[0].account_id
    with atlassian_client(sb) as client:

        def add(group_id: str, account_id: str) -> httpx.Response:
            return client.post(
                directory_path(sb, f"/groups/{group_id}/memberships"), json={"accountId": account_id}
            )

        refused = add(synced.id, person)
        unknown_group = add("no-such-group", person)
        unknown_user = add(access.id, "712020:nobody")
        sb.org.set_seat_limit("confluence", len(access.members))
        outsider = next(u.account_id for u in sb.org.users if u.account_id not in access.members)
        full = add(access.id, outsider)
    expected = [
        (refused, 403, "ADMIN-403-5"),
        (unknown_group, 404, "ADMIN-404-10"),
        (unknown_user, 404, "ADMIN-404-8"),
        (full, 409, "ADMIN-409-3"),
    ]
    for response, status, code in expected:
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["code"] == code
        assert response.json()["errors"][0]["status"] == str(status)
    assert sb.changes() == []


def test_suspend_and_restore(sb: Sandbox) -> None:
    person = next(u for u in sb.org.users if u.status == "active")
    with atlassian_client(sb) as client:
        suspended = client.post(directory_path(sb, f"/users/{person.account_id}/suspend"))
        state = client.get(directory_path(sb, f"/users/{person.account_id}")).json()
        restored = client.post(directory_path(sb, f"/users/{person.account_id}/restore"))
    assert suspended.status_code == restored.status_code == 200
    assert "message" in suspended.json()
    assert state["data"]["status"] == "suspended"
    assert person.status == "active"
    assert [c.kind for c in sb.changes()] == ["user_suspended", "user_restored"]


def test_last_active_dates_shape_and_clock_advance(start_sandbox: Callable[..., Sandbox]) -> None:
    sb = start_sandbox(frozen_clock=True)
    heavy = max(
        (
            u
            for u in sb.org.users
            if u.status == "active" and u.account_id in sb.org.members("confluence-users")
        ),
        key=lambda u: u.daily_use_probability,
    )
    path = f"/v1/orgs/{sb.org_id}/directory/users/{heavy.account_id}/last-active-dates"
    with atlassian_client(sb) as client:
        before = client.get(path).json()
        sb.advance(days=10)
        after = client.get(path).json()
        missing = client.get(f"/v1/orgs/{sb.org_id}/directory/users/712020:none/last-active-dates")
    assert set(before) == {"data", "links"} and before["links"] == {"next": None}
    entry = next(p for p in after["data"]["product_access"] if p["key"] == "confluence")
    assert set(entry) == {"id", "key", "last_active", "last_active_timestamp"}
    assert len(entry["last_active"]) == 10 and entry["last_active_timestamp"].endswith("Z")
    assert entry["last_active"] >= (START + timedelta(days=5)).strftime("%Y-%m-%d")
    old = {p["key"]: p["last_active_timestamp"] for p in before["data"]["product_access"]}
    assert entry["last_active_timestamp"] > old.get("confluence", "")
    assert after["data"]["added_to_org"] == heavy.added_to_org.strftime("%Y-%m-%d")
    assert missing.status_code == 404


def test_events_stream_pages_and_polls_with_the_same_cursor(sb: Sandbox) -> None:
    access = sb.org.group_by_name("jira-software-users")
    person = next(u.account_id for u in sb.org.users if u.account_id not in access.members)
    stream = f"/v1/orgs/{sb.org_id}/events-stream"
    with atlassian_client(sb) as client:
        client.post(directory_path(sb, f"/groups/{access.id}/memberships"), json={"accountId": person})
        first = client.get(stream).json()
        cursor = first["meta"]["next"]
        empty = client.get(stream, params={"cursor": cursor}).json()
        sb.record_event(person)
        polled = client.get(stream, params={"cursor": cursor}).json()
        actions = client.get(f"/v1/orgs/{sb.org_id}/event-actions").json()
        one = client.get(f"/v1/orgs/{sb.org_id}/events/{first['data'][0]['id']}")
        windowed = client.get(stream, params={"from": "0", "to": "1"}).json()
    [added] = first["data"]
    assert added["type"] == "events" and "message" in added and "message" not in added["attributes"]
    attributes = added["attributes"]
    assert attributes["action"] == "user_added_to_group"
    assert {c["type"] for c in attributes["context"]} == {"users", "groups"}
    assert first["links"]["next"].startswith(f"{sb.atlassian_base}/v1/orgs/{sb.org_id}/events-stream?")
    assert empty["data"] == [] and empty["meta"]["next"]
    assert [e["attributes"]["action"] for e in polled["data"]] == ["user_logged_in"]
    assert "user_logged_in" in {a["id"] for a in actions["data"]}
    assert all("displayName" in a["attributes"] for a in actions["data"])
    assert one.status_code == 200
    assert windowed["data"] == []


def test_events_stream_limits_pages(sb: Sandbox) -> None:
    for _ in range(7):
        sb.record_event(sb.org.users[0].account_id)
    stream = f"/v1/orgs/{sb.org_id}/events-stream"
    seen: list[str] = []
    with atlassian_client(sb) as client:
        page = client.get(stream, params={"limit": "3"}).json()
        while page["data"]:
            seen.extend(e["id"] for e in page["data"])
            page = client.get(page["links"]["next"]).json()
    assert len(seen) == len(set(seen)) == 7


_DIRECT_ORG = generate_org(users=300, seed=21, clock=Clock(START))
_DIRECT_API = AtlassianApi(_DIRECT_ORG, api_key="key")


def _search_directly(body: dict[str, Any]) -> dict[str, Any]:
    """Call the users-search handler without HTTP: the handlers are transport-free."""
    request = ApiRequest.build("POST", "/search", {}, json.dumps(body).encode(), "http://127.0.0.1")
    response = _DIRECT_API.search_users(request)
    assert response.status == 200, response.body
    payload: dict[str, Any] = response.payload()
    return payload


@settings(max_examples=25, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=120),
    statuses=st.sets(st.sampled_from(["active", "suspended", "deactivated"])),
    group_names=st.sets(
        st.sampled_from(["confluence-users", "jira-software-user-role", "contractors", "executives"]),
        max_size=2,
    ),
)
def test_any_filtered_paging_returns_exactly_the_matching_people(
    limit: int, statuses: set[str], group_names: set[str]
) -> None:
    org = _DIRECT_ORG
    body: dict[str, Any] = {"limit": limit}
    if statuses:
        body["status"] = sorted(statuses)
    if group_names:
        body["groupIds"] = sorted(org.group_by_name(n).id for n in group_names)
    seen: list[str] = []
    while True:
        page = _search_directly(body)
        assert len(page["data"]) <= min(limit, 100)
        seen.extend(u["accountId"] for u in page["data"])
        if page["links"]["next"] is None:
            break
        body["cursor"] = page["links"]["next"]
    members = set().union(*(org.members(n) for n in group_names)) if group_names else None
    expected = [
        u.account_id
        for u in org.users
        if (not statuses or u.status in statuses) and (members is None or u.account_id in members)
    ]
    assert seen == expected
