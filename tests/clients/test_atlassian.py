"""The Atlassian Organizations API client (shared.atlassian) against a scripted vendor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.atlassian import AtlassianClient, AtlassianGroup
from shared.errors import (
    AtlassianError,
    AuthenticationFailed,
    GroupIsSynced,
    IncompleteRead,
    NotCentralizedUserManagement,
    NotFound,
    RateLimited,
    ScopeMissing,
    SeatLimitReached,
)
from shared.http import MembershipChange, Pacer, RequestLog, RetryPolicy
from tests.clients.conftest import FakeClock, Vendor, body_of

pytestmark = pytest.mark.anyio

BASE = "https://api.atlassian.test/admin"
ORG = "org-1"
KEY = "ATCTT3xFfGN0-planted-api-key-value"
V2 = f"/admin/v2/orgs/{ORG}/directories/-"
V1 = f"/admin/v1/orgs/{ORG}"


@pytest.fixture
def client(vendor: Vendor, retry: RetryPolicy, pacer: Pacer, request_log: RequestLog) -> AtlassianClient:
    return AtlassianClient(
        BASE, ORG, KEY, transport=vendor.transport, retry=retry, pacer=pacer, log=request_log
    )


def user(account_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "accountId": account_id,
        "accountType": "atlassian",
        "status": "active",
        "email": f"{account_id}@x.test",
        **extra,
    }


def page(data: list[dict[str, Any]], next_cursor: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "links": {"self": "s", "prev": None, "next": next_cursor}})


def error(status: int, code: str, detail: str = "") -> httpx.Response:
    return httpx.Response(
        status,
        json={"errors": [{"id": "e", "status": str(status), "code": code, "title": "t", "detail": detail}]},
    )


# --- reads --------------------------------------------------------------------------------------


async def test_user_pages_follow_the_body_cursor_and_parse_activity(
    client: AtlassianClient, vendor: Vendor
) -> None:
    first = user(
        "a1",
        addedToOrg="2024-01-01T00:00:00.000Z",
        platformRoles=["atlassian/org-admin"],
        productAccess=[{"key": "confluence", "id": "site-1", "lastActiveTimestamp": "2025-03-01T10:00:00Z"}],
        groups=[{"id": "g1", "name": "confluence-users", "description": "d"}],
        someFutureField={"x": 1},
    )
    vendor.on("POST", f"{V2}/users/search", page([first], "CUR-2"), page([user("a2")], None))
    pages = [p async for p in client.iter_user_pages()]

    assert [[u.account_id for u in p] for p in pages] == [["a1"], ["a2"]]
    a1 = pages[0][0]
    assert a1.product_access is not None and a1.product_access[0].last_active_timestamp == datetime(
        2025, 3, 1, 10, tzinfo=UTC
    )
    assert a1.group_ids == frozenset({"g1"}) and a1.platform_roles == ["atlassian/org-admin"]
    assert pages[1][0].product_access is None  # not returned is not "none"

    calls = vendor.calls("POST", f"{V2}/users/search")
    assert calls[0].headers["Authorization"] == f"Bearer {KEY}"
    assert body_of(calls[0]) == {"limit": 100, "expand": ["productAccess", "groups", "platformRoles"]}
    assert body_of(calls[1])["cursor"] == "CUR-2"


async def test_user_search_filters_by_group(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/users/search", page([]))
    assert [p async for p in client.iter_user_pages(group_ids=["g1", "g1", "g2"], limit=50)] == [[]]
    assert body_of(vendor.requests[0])["groupIds"] == ["g1", "g2"]
    assert body_of(vendor.requests[0])["limit"] == 50


async def test_an_empty_filter_sends_nothing(client: AtlassianClient, vendor: Vendor) -> None:
    assert [p async for p in client.iter_user_pages(group_ids=[])] == []
    assert vendor.requests == []


async def test_a_page_that_keeps_failing_raises_incomplete_read(
    client: AtlassianClient, vendor: Vendor, retry: RetryPolicy
) -> None:
    def by_cursor(request: httpx.Request) -> httpx.Response:
        return page([user("a1")], "CUR-2") if "cursor" not in body_of(request) else httpx.Response(503)

    vendor.on("POST", f"{V2}/users/search", by_cursor)
    seen: list[str] = []
    with pytest.raises(IncompleteRead) as caught:
        async for users in client.iter_user_pages():
            seen.extend(u.account_id for u in users)
    assert seen == ["a1"] and caught.value.pages_read == 1
    assert isinstance(caught.value.__cause__, AtlassianError) and caught.value.__cause__.status == 503
    assert len(vendor.requests) == 1 + retry.max_tries


async def test_truncated_json_raises_incomplete_read(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/users/search", httpx.Response(200, content=b'{"data":[{"accountId":"a1","em'))
    with pytest.raises(IncompleteRead, match="not valid JSON"):
        async for _ in client.iter_user_pages():
            pass


async def test_a_truncated_page_is_asked_for_again(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on(
        "POST",
        f"{V2}/users/search",
        httpx.Response(200, content=b'{"data":[{"accountId":"a1"}],"links":{"ne'),
        page([user("a1")]),
    )
    assert [[u.account_id for u in p] async for p in client.iter_user_pages()] == [["a1"]]
    assert len(vendor.requests) == 2


async def test_links_of_the_wrong_shape_stop_the_read_without_another_call(
    client: AtlassianClient, vendor: Vendor
) -> None:
    shapeless = httpx.Response(200, json={"data": [user("a1")], "links": "CUR-2"})
    vendor.on("POST", f"{V2}/users/search", shapeless)
    with pytest.raises(IncompleteRead, match="unexpected response shape: links"):
        async for _ in client.iter_user_pages():
            pass
    assert len(vendor.requests) == 1


async def test_a_page_without_data_raises_incomplete_read(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/users/search", httpx.Response(200, json={"links": {"next": None}}))
    with pytest.raises(IncompleteRead, match="data"):
        async for _ in client.iter_user_pages():
            pass


async def test_an_unreadable_last_active_stops_the_read(client: AtlassianClient, vendor: Vendor) -> None:
    bad = user("a1", productAccess=[{"key": "confluence", "lastActiveTimestamp": "last tuesday"}])
    vendor.on("POST", f"{V2}/users/search", page([bad]))
    with pytest.raises(IncompleteRead, match="lastActiveTimestamp"):
        async for _ in client.iter_user_pages():
            pass


async def test_a_looping_cursor_raises_incomplete_read(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/users/search", page([user("a1")], "SAME"))
    with pytest.raises(IncompleteRead, match="already returned"):
        async for _ in client.iter_user_pages():
            pass
    assert len(vendor.requests) == 2


async def test_429_on_a_page_is_waited_out(client: AtlassianClient, vendor: Vendor, clock: FakeClock) -> None:
    vendor.on(
        "POST",
        f"{V2}/users/search",
        httpx.Response(429, headers={"Retry-After": "4"}, json={"errors": [{"code": "ADMIN-429-1"}]}),
        page([user("a1")]),
    )
    assert [[u.account_id for u in p] async for p in client.iter_user_pages()] == [["a1"]]
    assert clock.sleeps == [4.0]


async def test_search_groups_asks_for_counts_and_reads_every_page(
    client: AtlassianClient, vendor: Vendor
) -> None:
    g1 = {
        "id": "g1",
        "name": "confluence-users",
        "externalSynced": False,
        "managedBy": "admins",
        "counts": {"users": 12, "resources": 1},
    }
    g2 = {"id": "g2", "name": "confluence-user-role", "externalSynced": True, "managedBy": "external"}
    vendor.on("POST", f"{V2}/groups/search", page([g1], "N"), page([g2]))
    groups = await client.search_groups(names=["confluence-users", "confluence-user-role"])
    assert [g.id for g in groups] == ["g1", "g2"]
    assert groups[0].counts is not None and groups[0].counts.users == 12
    assert not groups[0].is_synced and groups[1].is_synced
    sent = body_of(vendor.requests[0])
    assert sent["groupNames"] == ["confluence-users", "confluence-user-role"] and sent["expand"] == [
        "counts.users"
    ]


async def test_search_groups_refuses_names_with_ids(client: AtlassianClient) -> None:
    with pytest.raises(ValueError, match="not both"):
        await client.search_groups(names=["a"], ids=["b"])


def test_a_group_managed_externally_is_synced() -> None:
    assert AtlassianGroup(id="g", name="n", managed_by="external").is_synced


async def test_last_active_dates_follow_the_cursor_and_keep_the_latest_per_product(
    client: AtlassianClient, vendor: Vendor
) -> None:
    path = f"{V1}/directory/users/557058:abc/last-active-dates"
    p1 = {
        "data": {
            "product_access": [
                {
                    "id": "s1",
                    "key": "jira-software",
                    "last_active": "2025-01-02",
                    "last_active_timestamp": "2025-01-02T08:00:00Z",
                },
                {"id": "s1", "key": "confluence", "last_active": "2024-12-01"},
            ],
            "added_to_org": "2023-05-01",
            "added_to_org_timestamp": "2023-05-01T00:00:00Z",
        },
        "links": {"next": "C2"},
    }
    p2 = {
        "data": {
            "product_access": [
                {"id": "s2", "key": "jira-software", "last_active_timestamp": "2025-02-03T09:00:00Z"}
            ]
        },
        "links": {"next": None},
    }
    vendor.on("GET", path, httpx.Response(200, json=p1), httpx.Response(200, json=p2))
    result = await client.last_active_dates("557058:abc")
    assert result.products == {
        "jira-software": datetime(2025, 2, 3, 9, tzinfo=UTC),
        "confluence": datetime(2024, 12, 1, tzinfo=UTC),
    }
    assert result.added_to_org == datetime(2023, 5, 1, tzinfo=UTC)
    assert vendor.requests[1].url.params["cursor"] == "C2"


async def test_last_active_for_a_user_who_never_used_a_product_is_empty(
    client: AtlassianClient, vendor: Vendor
) -> None:
    vendor.on(
        "GET",
        f"{V1}/directory/users/a1/last-active-dates",
        httpx.Response(200, json={"data": {"product_access": []}, "links": {}}),
    )
    assert (await client.last_active_dates("a1")).products == {}


async def test_a_failed_last_active_lookup_raises_rather_than_reporting_no_activity(
    client: AtlassianClient, vendor: Vendor
) -> None:
    vendor.on("GET", f"{V1}/directory/users/a1/last-active-dates", httpx.Response(500))
    with pytest.raises(IncompleteRead):
        await client.last_active_dates("a1")


async def test_events_stream_sends_epoch_ms_and_returns_the_next_cursor(
    client: AtlassianClient, vendor: Vendor
) -> None:
    event = {
        "id": "e1",
        "type": "events",
        "attributes": {
            "time": "2025-03-01T10:00:00Z",
            "action": "user_logged_in",
            "actor": {"id": "a1", "name": "A", "email": "a@x.test"},
            "context": [{"id": "a1", "type": "users", "attributes": {}}],
        },
        "message": {"content": "A logged in", "format": "simple"},
    }
    vendor.on(
        "GET",
        f"{V1}/events-stream",
        httpx.Response(200, json={"data": [event], "meta": {"next": "N1", "page_size": 1}}),
        httpx.Response(200, json={"data": [], "meta": {"next": None}}),
    )
    events, cursor = await client.events_stream(from_ms=1_700_000_000_000)
    assert [e.action for e in events] == ["user_logged_in"] and events[0].actor_id == "a1"
    assert cursor == "N1"
    params = vendor.requests[0].url.params
    assert params["from"] == "1700000000000" and params["limit"] == "200"
    events, again = await client.events_stream(cursor="N1")
    assert events == [] and again == "N1"  # nothing new: poll again with the same cursor


async def test_event_actions_are_listed(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on(
        "GET",
        f"{V1}/event-actions",
        httpx.Response(
            200,
            json={
                "data": [
                    {
                        "id": "user_added_to_group",
                        "type": "event-actions",
                        "attributes": {"displayName": "Added user to group", "groupDisplayName": "Groups"},
                    }
                ]
            },
        ),
    )
    actions = await client.event_actions()
    assert [(a.id, a.display_name) for a in actions] == [("user_added_to_group", "Added user to group")]


# --- writes --------------------------------------------------------------------------------------


async def test_add_member_posts_the_account_id(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/groups/g1/memberships", httpx.Response(200, json={"message": "ok"}))
    assert await client.add_member("g1", "a1") is MembershipChange.APPLIED
    assert body_of(vendor.requests[0]) == {"accountId": "a1"}


@pytest.mark.parametrize(
    "answer",
    [
        error(409, "ADMIN-409-3"),
        error(409, "ADMIN-UAM-409-3"),
        error(400, "ADMIN-400-32"),
        httpx.Response(
            400, json={"errorMessages": ["LicenceExceededException: Licence exceeded for: ari:x"]}
        ),
        httpx.Response(409, json={"key": "licenceExceeded", "context": {"message": "Licence exceeded"}}),
    ],
)
async def test_no_free_seat_is_seat_limit_reached_without_a_retry_loop(
    client: AtlassianClient, vendor: Vendor, answer: httpx.Response
) -> None:
    vendor.on("POST", f"{V2}/groups/g1/memberships", answer)
    with pytest.raises(SeatLimitReached) as caught:
        await client.add_member("g1", "a1")
    assert len(vendor.requests) == 1
    assert "seat" in str(caught.value)


async def test_a_synced_group_refuses_membership_changes(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on(
        "DELETE",
        f"{V2}/groups/g1/memberships/a1",
        error(403, "ADMIN-403-5", "You can't remove a user from a group synced from an identity provider"),
    )
    with pytest.raises(GroupIsSynced, match="Entra"):
        await client.remove_member("g1", "a1")


async def test_removing_a_non_member_is_already_done(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("DELETE", f"{V2}/groups/g1/memberships/a1", error(404, "ADMIN-404-8"))
    assert await client.remove_member("g1", "a1") is MembershipChange.ALREADY_DONE


async def test_removing_from_a_missing_group_is_an_error(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("DELETE", f"{V2}/groups/nope/memberships/a1", error(404, "ADMIN-404-10"))
    with pytest.raises(NotFound):
        await client.remove_member("nope", "a1")


async def test_remove_accepts_an_empty_2xx(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("DELETE", f"{V2}/groups/g1/memberships/a1", httpx.Response(204))
    assert await client.remove_member("g1", "a1") is MembershipChange.APPLIED


async def test_suspend_and_restore_use_the_v2_paths(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/users/a1/suspend", httpx.Response(200, json={"message": "suspended"}))
    vendor.on("POST", f"{V2}/users/a1/restore", httpx.Response(204))
    assert await client.suspend("a1") == "suspended"
    assert await client.restore("a1") is None
    assert [r.content for r in vendor.requests] == [b"", b""]


async def test_ids_cannot_change_the_path(client: AtlassianClient) -> None:
    with pytest.raises(ValueError):
        await client.remove_member("g1/../../x", "a1")


# --- configuration errors ------------------------------------------------------------------------


async def test_401_names_the_api_key_setting_and_is_not_retried(
    client: AtlassianClient, vendor: Vendor
) -> None:
    vendor.on("POST", f"{V2}/users/search", httpx.Response(401, json={"message": "Unauthorized"}))
    with pytest.raises(AuthenticationFailed) as caught:
        async for _ in client.iter_user_pages():
            pass
    assert "ATLASSIAN_API_KEY" in str(caught.value) and KEY not in str(caught.value)
    assert len(vendor.requests) == 1


async def test_403_names_the_setting_and_the_scope(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on(
        "POST",
        f"{V2}/users/search",
        httpx.Response(
            403,
            json={
                "status": 403,
                "error": "Forbidden",
                "message": "User has no permission to access resource.",
            },
        ),
    )
    with pytest.raises(ScopeMissing) as caught:
        async for _ in client.iter_user_pages():
            pass
    assert "ATLASSIAN_API_KEY" in str(caught.value) and "read:directories:admin" in str(caught.value)
    assert caught.value.needed == "read:directories:admin"


async def test_a_refused_all_directories_selector_says_what_the_admin_must_do(
    client: AtlassianClient, vendor: Vendor
) -> None:
    vendor.on(
        "POST",
        f"{V2}/groups/g1/memberships",
        error(400, "ADMIN-400-24", "A directoryId is required for organizations with multiple directories"),
    )
    with pytest.raises(NotCentralizedUserManagement) as caught:
        await client.add_member("g1", "a1")
    assert "ATLASSIAN_DIRECTORY_ID" in str(caught.value)


async def test_a_named_directory_is_used_in_the_path(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer
) -> None:
    vendor.on("POST", f"/admin/v2/orgs/{ORG}/directories/d-7/groups/g1/memberships", httpx.Response(201))
    client = AtlassianClient(
        BASE, ORG, KEY, directory_id="d-7", transport=vendor.transport, retry=retry, pacer=pacer
    )
    assert await client.add_member("g1", "a1") is MembershipChange.APPLIED


async def test_an_unknown_org_names_the_org_setting(client: AtlassianClient, vendor: Vendor) -> None:
    vendor.on("POST", f"{V2}/groups/search", error(404, "ADMIN-404-2", "Organization not found"))
    with pytest.raises(NotFound, match="ATLASSIAN_ORG_ID"):
        await client.search_groups()


async def test_rate_limit_that_outlasts_retries_is_rate_limited(
    client: AtlassianClient, vendor: Vendor, retry: RetryPolicy
) -> None:
    vendor.on("POST", f"{V2}/users/a1/suspend", httpx.Response(429, headers={"Retry-After": "2"}))
    with pytest.raises(RateLimited) as caught:
        await client.suspend("a1")
    assert caught.value.retry_after == 2.0 and len(vendor.requests) == retry.max_tries


async def test_the_request_log_never_holds_the_api_key(
    client: AtlassianClient, vendor: Vendor, request_log: RequestLog
) -> None:
    vendor.on("POST", f"{V2}/users/search", page([user("a1")]))
    vendor.on("DELETE", f"{V2}/groups/g1/memberships/a1", error(404, "ADMIN-404-8", f"echo {KEY}"))
    async for _ in client.iter_user_pages():
        pass
    await client.remove_member("g1", "a1")
    text = request_log.to_jsonl()
    assert KEY not in text
    assert [(r.method, r.path, r.status) for r in request_log.records()] == [
        ("POST", f"{V2}/users/search", 200),
        ("DELETE", f"{V2}/groups/g1/memberships/a1", 404),
    ]
    assert request_log.records()[1].error_code == "ADMIN-404-8"


async def test_async_with_closes_only_what_it_opened(vendor: Vendor) -> None:
    shared_client = httpx.AsyncClient(transport=vendor.transport)
    async with AtlassianClient(BASE, ORG, KEY, client=shared_client):
        pass
    assert not shared_client.is_closed
    owned = AtlassianClient(BASE, ORG, KEY, transport=vendor.transport)
    async with owned:
        pass
    assert owned._client.is_closed
    await shared_client.aclose()


def test_missing_settings_are_named() -> None:
    with pytest.raises(ValueError, match="ATLASSIAN_API_KEY"):
        AtlassianClient(BASE, ORG, "")
    with pytest.raises(ValueError, match="ATLASSIAN_ORG_ID"):
        AtlassianClient(BASE, "", KEY)
    assert KEY not in repr(AtlassianClient(BASE, ORG, KEY))
