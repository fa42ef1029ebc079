"""The Microsoft Graph client and token provider (shared.graph) against a scripted Graph."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import requests

from shared.errors import (
    DeltaResyncRequired,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    IncompleteRead,
    TransportFailed,
)
from shared.graph import GraphClient, GraphCredentials, clear_token_cache, token_provider
from shared.http import MembershipChange, Pacer, RequestLog, RetryPolicy
from tests.clients.conftest import FakeClock, Vendor, body_of

pytestmark = pytest.mark.anyio

GRAPH = "https://graph.test/v1.0"
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJncmFwaCJ9.planted-token-signature"
SECRET = "Zx8~planted.client.secret.value"


async def fixed_token(scope: str) -> str:
    assert scope == "https://graph.test/.default"
    return TOKEN


@pytest.fixture
def graph(vendor: Vendor, retry: RetryPolicy, pacer: Pacer, request_log: RequestLog) -> GraphClient:
    return GraphClient(
        GRAPH, fixed_token, transport=vendor.transport, retry=retry, pacer=pacer, log=request_log
    )


def collection(
    value: list[dict[str, Any]], next_link: str | None = None, delta_link: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"value": value}
    if next_link:
        body["@odata.nextLink"] = next_link
    if delta_link:
        body["@odata.deltaLink"] = delta_link
    return httpx.Response(200, json=body)


def graph_error(
    status: int, code: str, message: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        json={"error": {"code": code, "message": message, "innerError": {"request-id": "r"}}},
    )


def u(oid: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": oid,
        "userPrincipalName": f"{oid}@x.test",
        "mail": None,
        "accountEnabled": True,
    }


# --- tokens -------------------------------------------------------------------------------


class FakeApp:
    """Stands in for msal.ConfidentialClientApplication: records construction and answers."""

    built: list[dict[str, Any]] = []

    def __init__(self, client_id: str, **kwargs: Any) -> None:
        FakeApp.built.append({"client_id": client_id, **kwargs})
        self.answer: Any = {"access_token": "tok", "expires_in": 3599}

    def acquire_token_for_client(self, scopes: list[str]) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.fixture
def fake_app() -> Iterator[type[FakeApp]]:
    clear_token_cache()
    FakeApp.built = []
    yield FakeApp
    clear_token_cache()


CREDS = GraphCredentials(tenant_id="tenant-1", client_id="client-1", client_secret=SECRET)


async def test_one_msal_app_per_authority_and_client(fake_app: type[FakeApp]) -> None:
    first = token_provider("https://login.microsoftonline.com", CREDS, app_factory=fake_app)
    second = token_provider("login.microsoftonline.com/", CREDS, app_factory=fake_app)
    assert await first("https://graph.microsoft.com/.default") == "tok"
    assert await second("https://graph.microsoft.com/.default") == "tok"
    assert len(fake_app.built) == 1
    built = fake_app.built[0]
    assert built["authority"] == "https://login.microsoftonline.com/tenant-1"
    assert built["instance_discovery"] is None  # a Microsoft host: msal's own discovery


async def test_a_stand_in_authority_skips_instance_discovery_and_uses_the_ca_bundle(
    fake_app: type[FakeApp],
) -> None:
    provider = token_provider(
        "https://127.0.0.1:8443", CREDS, verify="/tmp/sandbox-ca.pem", app_factory=fake_app
    )
    await provider("https://127.0.0.1:9443/.default")
    assert fake_app.built[0]["instance_discovery"] is False
    assert fake_app.built[0]["verify"] == "/tmp/sandbox-ca.pem"
    assert fake_app.built[0]["authority"] == "https://127.0.0.1:8443/tenant-1"


def test_msal_only_takes_https_authorities() -> None:
    with pytest.raises(GraphAuthError, match="ENTRA_AUTHORITY_HOST"):
        token_provider("http://127.0.0.1:8080", CREDS)


async def test_a_refused_secret_names_the_setting_and_never_the_secret(fake_app: type[FakeApp]) -> None:
    provider = token_provider("https://login.microsoftonline.com", CREDS, app_factory=fake_app)
    app = provider._app()
    app.answer = {
        "error": "invalid_client",
        "error_codes": [7000215],
        "error_description": f"AADSTS7000215: Invalid client secret provided: {SECRET}\nTrace ID: x",
    }
    with pytest.raises(GraphAuthError) as caught:
        await provider("https://graph.microsoft.com/.default")
    assert "ENTRA_CLIENT_SECRET" in str(caught.value) and SECRET not in str(caught.value)
    assert caught.value.code == "invalid_client"


@pytest.mark.parametrize(
    ("raised", "expected", "setting"),
    [
        (requests.exceptions.SSLError("self-signed"), TransportFailed, "SEATWARDEN_CA_BUNDLE"),
        (requests.exceptions.ConnectionError("refused"), TransportFailed, "ENTRA_AUTHORITY_HOST"),
        (ValueError("Unable to get authority configuration"), GraphAuthError, "ENTRA_TENANT_ID"),
    ],
)
async def test_token_transport_errors_map(
    fake_app: type[FakeApp], raised: Exception, expected: type[Exception], setting: str
) -> None:
    provider = token_provider("https://login.microsoftonline.com", CREDS, app_factory=fake_app)
    provider._app().answer = raised
    with pytest.raises(expected, match=setting) as caught:
        await provider("https://graph.microsoft.com/.default")
    assert caught.value.__cause__ is raised


def test_credentials_need_exactly_one_kind_and_hide_secrets() -> None:
    with pytest.raises(ValueError, match="ENTRA_CLIENT_SECRET"):
        GraphCredentials(tenant_id="t", client_id="c")
    with pytest.raises(ValueError, match="ENTRA_CLIENT_CERT_THUMBPRINT"):
        GraphCredentials(tenant_id="t", client_id="c", certificate_pem="-----BEGIN PRIVATE KEY-----")
    cert = GraphCredentials(
        tenant_id="t", client_id="c", certificate_pem="PEM", certificate_thumbprint="AB12"
    )
    assert cert.msal_credential() == {"private_key": "PEM", "thumbprint": "AB12"}
    assert SECRET not in repr(CREDS)


def test_the_scope_is_the_graph_origin() -> None:
    assert (
        GraphClient("https://graph.microsoft.com/v1.0", fixed_token).scope
        == "https://graph.microsoft.com/.default"
    )
    assert GraphClient("https://127.0.0.1:9443/v1.0/", fixed_token).scope == "https://127.0.0.1:9443/.default"


# --- reads ---------------------------------------------------------------------------------


async def test_transitive_members_follow_next_links_verbatim_and_skip_non_users(
    graph: GraphClient, vendor: Vendor, request_log: RequestLog
) -> None:
    next_link = (
        f"{GRAPH}/groups/g1/transitiveMembers"
        "?$select=id,userPrincipalName,mail,accountEnabled&$top=999&$skiptoken=X%2B1"
    )
    group = {"@odata.type": "#microsoft.graph.group", "id": "nested"}
    device = {"@odata.type": "#microsoft.graph.device", "id": "dev"}
    vendor.on(
        "GET",
        "/v1.0/groups/g1/transitiveMembers",
        collection([u("u1"), group], next_link),
        collection([device, u("u2"), u("u1")]),
    )
    users = await graph.transitive_members("g1")
    assert sorted(x.id for x in users) == ["u1", "u2"]
    first, second = vendor.requests
    assert first.url.raw_path.decode().endswith("?$select=id,userPrincipalName,mail,accountEnabled&$top=999")
    assert str(second.url) == next_link
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request_log.to_jsonl() and "X%2B1" not in request_log.to_jsonl()


async def test_a_failing_member_page_raises_incomplete_read(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on(
        "GET",
        "/v1.0/groups/g1/transitiveMembers?$select",
        collection([u("u1")], f"{GRAPH}/groups/g1/transitiveMembers?$skiptoken=2"),
    )
    vendor.on("GET", "/v1.0/groups/g1/transitiveMembers?$skiptoken", httpx.Response(504))
    with pytest.raises(IncompleteRead) as caught:
        await graph.transitive_members("g1")
    assert caught.value.pages_read == 1


async def test_a_next_link_to_another_origin_is_not_followed(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on("GET", "/v1.0/groups/g1/transitiveMembers", collection([u("u1")], "https://evil.test/steal"))
    with pytest.raises(IncompleteRead, match="another origin"):
        await graph.transitive_members("g1")
    assert all(r.url.host == "graph.test" for r in vendor.requests)


async def test_a_missing_permission_names_it(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on(
        "GET",
        "/v1.0/groups/g1/transitiveMembers",
        graph_error(403, "Authorization_RequestDenied", "Insufficient privileges"),
    )
    with pytest.raises(GraphAuthError) as caught:
        await graph.transitive_members("g1")
    assert "GroupMember.Read.All" in str(caught.value) and "ENTRA_CLIENT_ID" in str(caught.value)
    assert caught.value.needed == "GroupMember.Read.All"


async def test_a_member_count_is_one_call_with_the_eventual_consistency_header(
    graph: GraphClient, vendor: Vendor
) -> None:
    vendor.on(
        "GET",
        "/v1.0/groups/g1/transitiveMembers/microsoft.graph.user",
        httpx.Response(200, json={"@odata.count": 893, "value": [u("u1")]}),
    )
    assert await graph.count_transitive_members("g1") == 893
    [request] = vendor.requests
    assert request.headers["ConsistencyLevel"] == "eventual"
    assert request.url.params["$count"] == "true" and request.url.params["$top"] == "1"


async def test_a_member_count_without_odata_count_is_an_incomplete_read(
    graph: GraphClient, vendor: Vendor
) -> None:
    vendor.on("GET", "/v1.0/groups/g1/transitiveMembers", httpx.Response(200, json={"value": []}))
    with pytest.raises(IncompleteRead, match=r"@odata\.count"):
        await graph.count_transitive_members("g1")


async def test_group_delta_merges_repeated_pages_by_group(graph: GraphClient, vendor: Vendor) -> None:
    delta = f"{GRAPH}/groups/delta?$deltatoken=D1"
    p1 = [
        {
            "id": "g1",
            "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                {"@odata.type": "#microsoft.graph.user", "id": "u2"},
            ],
        }
    ]
    p2: list[dict[str, Any]] = [
        {"id": "g2", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u3"}]},
        {
            "id": "g1",
            "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {"reason": "deleted"}},
                {"@odata.type": "#microsoft.graph.group", "id": "nested"},
                {"@odata.type": "#microsoft.graph.user", "id": "u4"},
            ],
        },
    ]
    vendor.on("GET", "/v1.0/groups/delta?$select", collection(p1, f"{GRAPH}/groups/delta?$skiptoken=S2"))
    vendor.on("GET", "/v1.0/groups/delta?$skiptoken", collection(p2, delta_link=delta))
    result = await graph.group_delta(["g1", "g2"])
    assert result.added == {"g1": {"u1", "u4"}, "g2": {"u3"}}
    assert result.removed == {"g1": {"u2"}, "g2": set()}
    assert result.nested_changes == {"g1"}
    assert result.delta_link == delta
    query = unquote(vendor.requests[0].url.raw_path.decode().split("?", 1)[1])
    assert query == "$select=members&$filter=id eq 'g1' or id eq 'g2'"
    assert "%20" in vendor.requests[0].url.raw_path.decode()  # spaces as %20, not '+'


async def test_group_delta_resumes_from_the_stored_link(graph: GraphClient, vendor: Vendor) -> None:
    stored = f"{GRAPH}/groups/delta?$deltatoken=OLD"
    vendor.on(
        "GET",
        "/v1.0/groups/delta?$deltatoken=OLD",
        collection(
            [
                {
                    "id": "g1",
                    "members@delta": [
                        {
                            "@odata.type": "#microsoft.graph.user",
                            "id": "u9",
                            "@removed": {"reason": "deleted"},
                        }
                    ],
                }
            ],
            delta_link=f"{GRAPH}/groups/delta?$deltatoken=NEW",
        ),
    )
    result = await graph.group_delta(["g1"], stored)
    assert result.removed["g1"] == {"u9"} and result.delta_link.endswith("NEW")
    assert str(vendor.requests[0].url) == stored


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(410, headers={"Location": f"{GRAPH}/groups/delta?$deltatoken=latest"}),
        graph_error(400, "syncStateNotFound", "sync state expired"),
        graph_error(400, "resyncRequired"),
    ],
)
async def test_an_expired_delta_link_requires_a_resync(
    graph: GraphClient, vendor: Vendor, answer: httpx.Response
) -> None:
    vendor.on("GET", "/v1.0/groups/delta", answer)
    with pytest.raises(DeltaResyncRequired):
        await graph.group_delta(["g1"], f"{GRAPH}/groups/delta?$deltatoken=OLD")
    assert len(vendor.requests) == 1


async def test_a_delta_round_without_a_delta_link_is_incomplete(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on("GET", "/v1.0/groups/delta", collection([{"id": "g1"}]))
    with pytest.raises(IncompleteRead, match="deltaLink"):
        await graph.group_delta(["g1"])


async def test_group_delta_takes_at_most_fifty_ids(graph: GraphClient) -> None:
    with pytest.raises(ValueError, match="50"):
        await graph.group_delta([f"g{i}" for i in range(51)])


# --- membership writes -----------------------------------------------------------------------


async def test_remove_member_deletes_the_reference_never_the_user(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on("DELETE", "/v1.0/groups/", httpx.Response(204))
    assert await graph.remove_member("g1", "u1") is MembershipChange.APPLIED
    path = vendor.requests[0].url.raw_path.decode()
    assert path == "/v1.0/groups/g1/members/u1/$ref"
    assert path.endswith("/$ref")


async def test_every_member_delete_ends_with_ref(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on("DELETE", "/v1.0/groups/", httpx.Response(204))
    vendor.on(
        "POST",
        "/v1.0/$batch",
        lambda r: httpx.Response(
            200,
            json={
                "responses": [{"id": q["id"], "status": 204, "headers": {}} for q in body_of(r)["requests"]]
            },
        ),
    )
    await graph.remove_member("g1", "u1")
    await graph.batch_remove_members([("g1", "u2"), ("g2", "u3")])
    deletes = [r.url.raw_path.decode() for r in vendor.requests if r.method == "DELETE"]
    deletes += [q["url"] for r in vendor.requests if r.method == "POST" for q in body_of(r)["requests"]]
    assert len(deletes) == 3 and all(p.endswith("/$ref") for p in deletes)


async def test_removing_a_non_member_is_already_done(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on(
        "DELETE",
        "/v1.0/groups/g1/members/u1/$ref",
        graph_error(
            404,
            "Request_ResourceNotFound",
            "Resource 'u1' does not exist or one of its queried reference-property objects are not present.",
        ),
    )
    assert await graph.remove_member("g1", "u1") is MembershipChange.ALREADY_DONE


async def test_removing_from_a_missing_group_is_an_error(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on(
        "DELETE",
        "/v1.0/groups/g-missing/members/u1/$ref",
        graph_error(404, "Request_ResourceNotFound", "Resource 'g-missing' does not exist."),
    )
    with pytest.raises(GraphNotFound):
        await graph.remove_member("g-missing", "u1")


async def test_add_member_references_the_directory_object(graph: GraphClient, vendor: Vendor) -> None:
    vendor.on(
        "POST",
        "/v1.0/groups/g1/members/$ref",
        httpx.Response(204),
        graph_error(
            400,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified "
            "properties: 'members'.",
        ),
    )
    assert await graph.add_member("g1", "u1") is MembershipChange.APPLIED
    assert body_of(vendor.requests[0]) == {"@odata.id": f"{GRAPH}/directoryObjects/u1"}
    assert await graph.add_member("g1", "u1") is MembershipChange.ALREADY_DONE


async def test_ids_cannot_change_the_path_or_the_filter(graph: GraphClient) -> None:
    with pytest.raises(ValueError):
        await graph.remove_member("g1", "")
    with pytest.raises(ValueError):
        await graph.remove_member("g1", "u1/..")
    with pytest.raises(ValueError):
        await graph.group_delta(["g1' or id ne 'x"])


async def test_batch_sends_twenty_per_request_and_correlates_by_id(
    graph: GraphClient, vendor: Vendor
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        items = body_of(request)["requests"]
        assert len(items) <= 20 and len({i["id"] for i in items}) == len(items)
        responses = [{"id": i["id"], "status": 204, "headers": {}} for i in items]
        return httpx.Response(200, json={"responses": list(reversed(responses))})  # any order

    vendor.on("POST", "/v1.0/$batch", answer)
    pairs = [("g1", f"u{i}") for i in range(45)]
    results = await graph.batch_remove_members(pairs)
    assert len(vendor.requests) == 3
    assert results == {p: MembershipChange.APPLIED for p in pairs}


async def test_batch_retries_only_the_throttled_items_after_their_retry_after(
    graph: GraphClient, vendor: Vendor, clock: FakeClock
) -> None:
    rounds: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        items = body_of(request)["requests"]
        rounds.append([i["url"] for i in items])
        out = []
        for item in items:
            if item["url"].endswith("/u2/$ref") and len(rounds) == 1:
                out.append(
                    {
                        "id": item["id"],
                        "status": 429,
                        "headers": {"Retry-After": "7"},
                        "body": {"error": {"code": "TooManyRequests", "message": "slow down"}},
                    }
                )
            elif item["url"].endswith("/u3/$ref"):
                out.append(
                    {
                        "id": item["id"],
                        "status": 404,
                        "headers": {},
                        "body": {
                            "error": {
                                "code": "Request_ResourceNotFound",
                                "message": "Resource 'u3' does not exist",
                            }
                        },
                    }
                )
            elif item["url"].endswith("/u4/$ref"):
                out.append(
                    {
                        "id": item["id"],
                        "status": 403,
                        "headers": {},
                        "body": {"error": {"code": "Authorization_RequestDenied", "message": "no"}},
                    }
                )
            else:
                out.append({"id": item["id"], "status": 204, "headers": {}})
        return httpx.Response(200, json={"responses": out})

    vendor.on("POST", "/v1.0/$batch", answer)
    results = await graph.batch_remove_members([("g1", "u1"), ("g1", "u2"), ("g1", "u3"), ("g1", "u4")])
    assert rounds[1] == ["/groups/g1/members/u2/$ref"]
    assert clock.sleeps == [7.0]
    assert results[("g1", "u1")] is MembershipChange.APPLIED
    assert results[("g1", "u2")] is MembershipChange.APPLIED
    assert results[("g1", "u3")] is MembershipChange.ALREADY_DONE
    assert isinstance(results[("g1", "u4")], GraphAuthError)


async def test_batch_gives_up_on_persistent_throttling(
    graph: GraphClient, vendor: Vendor, retry: RetryPolicy
) -> None:
    vendor.on(
        "POST",
        "/v1.0/$batch",
        lambda r: httpx.Response(
            200,
            json={
                "responses": [
                    {
                        "id": i["id"],
                        "status": 429,
                        "headers": {"retry-after": "1"},
                        "body": {"error": {"code": "TooManyRequests"}},
                    }
                    for i in body_of(r)["requests"]
                ]
            },
        ),
    )
    results = await graph.batch_remove_members([("g1", "u1")])
    outcome = results[("g1", "u1")]
    assert isinstance(outcome, GraphThrottled) and outcome.retry_after == 1.0
    assert len(vendor.requests) == retry.max_tries


# --- subscriptions and mail --------------------------------------------------------------------


async def test_subscription_lifecycle(graph: GraphClient, vendor: Vendor) -> None:
    expires = datetime(2025, 4, 1, 12, tzinfo=UTC)
    sub = {
        "id": "s1",
        "resource": "groups/g1",
        "changeType": "updated,deleted",
        "notificationUrl": "https://f.test/n",
        "lifecycleNotificationUrl": "https://f.test/l",
        "expirationDateTime": "2025-04-01T12:00:00Z",
        "clientState": "cs",
    }
    vendor.on("POST", "/v1.0/subscriptions/s1/reauthorize", httpx.Response(204))
    vendor.on("POST", "/v1.0/subscriptions", httpx.Response(201, json=sub))
    vendor.on("PATCH", "/v1.0/subscriptions/s1", httpx.Response(200, json=sub))
    vendor.on("DELETE", "/v1.0/subscriptions/s1", httpx.Response(204), graph_error(404, "ResourceNotFound"))
    vendor.on("GET", "/v1.0/subscriptions", collection([sub]))

    created = await graph.create_subscription(
        "groups/g1", "https://f.test/n", "https://f.test/l", "cs", expires
    )
    assert created.id == "s1" and created.expiration_date_time == expires
    assert body_of(vendor.requests[0]) == {
        "changeType": "updated,deleted",
        "notificationUrl": "https://f.test/n",
        "lifecycleNotificationUrl": "https://f.test/l",
        "resource": "groups/g1",
        "expirationDateTime": "2025-04-01T12:00:00Z",
        "clientState": "cs",
    }
    await graph.renew_subscription("s1", expires + timedelta(days=2))
    assert body_of(vendor.requests[1]) == {"expirationDateTime": "2025-04-03T12:00:00Z"}
    await graph.reauthorize_subscription("s1")
    assert [s.id for s in await graph.list_subscriptions()] == ["s1"]
    assert await graph.delete_subscription("s1") is True
    assert await graph.delete_subscription("s1") is False


async def test_subscription_arguments_are_checked(graph: GraphClient) -> None:
    with pytest.raises(ValueError, match="128"):
        await graph.create_subscription("groups/g1", "n", "l", "x" * 129, datetime.now(UTC))
    with pytest.raises(ValueError, match="timezone"):
        await graph.renew_subscription("s1", datetime(2025, 1, 1))


async def test_send_mail_builds_the_message_and_is_not_repeated_after_a_5xx(
    graph: GraphClient, vendor: Vendor
) -> None:
    vendor.on("POST", "/v1.0/users/sender@x.test/sendMail", httpx.Response(202), httpx.Response(500))
    await graph.send_mail("sender@x.test", ["a@x.test"], "Your Confluence license", "Hello")
    assert body_of(vendor.requests[0]) == {
        "message": {
            "subject": "Your Confluence license",
            "body": {"contentType": "Text", "content": "Hello"},
            "toRecipients": [{"emailAddress": {"address": "a@x.test"}}],
        },
        "saveToSentItems": False,
    }
    with pytest.raises(GraphError):
        await graph.send_mail("sender@x.test", "a@x.test", "s", "b")
    assert len(vendor.requests) == 2


async def test_graph_throttling_is_waited_out(graph: GraphClient, vendor: Vendor, clock: FakeClock) -> None:
    vendor.on(
        "GET",
        "/v1.0/subscriptions",
        graph_error(429, "TooManyRequests", headers={"Retry-After": "5"}),
        collection([]),
    )
    assert await graph.list_subscriptions() == []
    assert clock.sleeps == [5.0]


def test_a_batch_item_error_maps_like_a_response() -> None:
    from shared.graph import graph_error as map_item

    err = map_item(
        404, {}, json.loads('{"error": {"code": "Request_ResourceNotFound"}}'), method="DELETE", url="u"
    )
    assert isinstance(err, GraphNotFound) and err.code == "Request_ResourceNotFound"


async def test_an_opaque_token_echoed_by_graph_is_redacted(
    vendor: Vendor, retry: RetryPolicy, pacer: Pacer, request_log: RequestLog
) -> None:
    opaque = "opaque-token-without-dots-0123456789"

    async def opaque_token(scope: str) -> str:
        return opaque

    graph = GraphClient(
        GRAPH, opaque_token, transport=vendor.transport, retry=retry, pacer=pacer, log=request_log
    )
    vendor.on(
        "POST",
        "/v1.0/subscriptions/s1",
        graph_error(400, "Request_BadRequest", f"bad header Bearer-ish {opaque}"),
    )
    with pytest.raises(GraphError) as caught:
        await graph.reauthorize_subscription("s1")
    assert opaque not in str(caught.value) and opaque not in request_log.to_jsonl()
