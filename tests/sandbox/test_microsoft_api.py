"""Entra's token endpoint (through msal itself) and Microsoft Graph, over TLS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import msal
import pytest

from sandbox import Sandbox

from .conftest import graph_client, trust


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests (under msal) lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the
    # session's `verify`, which would hide the sandbox CA msal was given.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _app(sb: Sandbox, credential: object) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        sb.client_id,
        authority=f"{sb.authority_host}/{sb.tenant_id}",
        client_credential=credential,
        verify=sb.ca_cert_path,
        instance_discovery=False,
    )


def test_msal_gets_a_token_with_the_client_secret(sb: Sandbox) -> None:
    result = _app(sb, sb.client_secret).acquire_token_for_client(scopes=[f"{sb.graph_root}/.default"])
    assert result.get("token_type") == "Bearer", result
    response = httpx.get(
        f"{sb.graph_base}/groups/{sb.org.entra_group_id('confluence')}",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        verify=trust(sb),
        trust_env=False,
    )
    assert response.status_code == 200


@pytest.mark.parametrize("form", ["thumbprint", "public_certificate"])
def test_msal_gets_a_token_with_the_certificate(sb: Sandbox, form: str) -> None:
    credential: dict[str, str] = {"private_key": sb.client_private_key_pem}
    if form == "thumbprint":
        credential["thumbprint"] = sb.client_cert_thumbprint  # RS256 with x5t
    else:
        credential["public_certificate"] = sb.client_certificate_pem  # PS256 with x5t#S256
    result = _app(sb, credential).acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result.get("error_description")


def test_a_wrong_secret_gets_entras_error_shape(sb: Sandbox) -> None:
    result = _app(sb, "not-the-secret").acquire_token_for_client(scopes=[f"{sb.graph_root}/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215:")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(result)


def test_a_foreign_certificate_is_refused(sb: Sandbox, start_sandbox: Callable[..., Sandbox]) -> None:
    other = start_sandbox(seed=8)
    credential = {"private_key": other.client_private_key_pem, "thumbprint": other.client_cert_thumbprint}
    result = _app(sb, credential).acquire_token_for_client(scopes=[f"{sb.graph_root}/.default"])
    assert result["error"] == "invalid_client" and result["error_codes"] == [700027]


def test_discovery_needs_the_right_tenant_and_tls_trusts_both_names(sb: Sandbox) -> None:
    for host in ("127.0.0.1", "localhost"):
        base = sb.authority_host.replace("127.0.0.1", host)
        doc = httpx.get(
            f"{base}/{sb.tenant_id}/v2.0/.well-known/openid-configuration", verify=trust(sb), trust_env=False
        ).json()
        assert doc["token_endpoint"] == f"{base}/{sb.tenant_id}/oauth2/v2.0/token"
        assert {"authorization_endpoint", "issuer", "jwks_uri"} <= set(doc)
    wrong = httpx.get(
        f"{sb.authority_host}/other-tenant/v2.0/.well-known/openid-configuration",
        verify=trust(sb),
        trust_env=False,
    )
    assert wrong.status_code == 400 and wrong.json()["error_codes"] == [90002]
    with pytest.raises(httpx.ConnectError):
        httpx.get(sb.authority_host, trust_env=False, verify=True)  # not a public CA


def test_graph_needs_a_valid_token(sb: Sandbox) -> None:
    url = f"{sb.graph_base}/groups/{sb.org.entra_group_id('confluence')}/transitiveMembers"
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        response = httpx.get(url, headers=headers, verify=trust(sb), trust_env=False)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    with graph_client(sb) as client:
        assert client.get(url).status_code == 200
        sb.expire_tokens()
        expired = client.get(url)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_transitive_members_pages_cover_the_group(start_sandbox: Callable[..., Sandbox]) -> None:
    sb = start_sandbox(users=500)
    group_id = sb.org.entra_group_id("confluence")
    seen: list[str] = []
    with graph_client(sb) as client:
        url: str | None = f"{sb.graph_base}/groups/{group_id}/transitiveMembers"
        params: dict[str, str] | None = {"$select": "id,userPrincipalName,accountEnabled", "$top": "120"}
        while url:
            page = client.get(url, params=params).json()
            params = None  # nextLink carries them
            for member in page["value"]:
                assert member["@odata.type"] == "#microsoft.graph.user"
                assert set(member) == {"@odata.type", "id", "userPrincipalName", "accountEnabled"}
                seen.append(member["id"])
            url = page.get("@odata.nextLink")
        default = client.get(f"/groups/{group_id}/members").json()
        too_big = client.get(f"/groups/{group_id}/transitiveMembers", params={"$top": "1000"})
        unknown = client.get("/groups/00000000-0000-0000-0000-000000000000/transitiveMembers")
    assert len(seen) == len(set(seen)) and set(seen) == sb.org.entra_members(group_id)
    assert len(default["value"]) == 100 and "accountEnabled" not in default["value"][0]
    assert too_big.status_code == 400
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "Request_ResourceNotFound"


def _delta_round(
    client: httpx.Client, url: str, params: dict[str, str] | None = None
) -> tuple[dict[str, set[str]], dict[str, set[str]], str, int]:
    """Follow nextLinks to the deltaLink: (added, removed) per group, the deltaLink, pages."""
    added: dict[str, set[str]] = {}
    removed: dict[str, set[str]] = {}
    pages = 0
    while True:
        body = client.get(url, params=params).json()
        params = None
        pages += 1
        for group in body["value"]:
            for member in group.get("members@delta", []):
                target = removed if "@removed" in member else added
                target.setdefault(group["id"], set()).add(member["id"])
        if "@odata.deltaLink" in body:
            return added, removed, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def test_delta_returns_all_members_then_added_and_removed_ones(start_sandbox: Callable[..., Sandbox]) -> None:
    sb = start_sandbox(users=1_500, frozen_clock=True)
    group_id = sb.org.entra_group_id("confluence")
    members = sb.org.entra_members(group_id)
    newcomer = next(u.entra_object_id for u in sb.org.users if u.entra_object_id not in members)
    leaver = sorted(members)[0]
    with graph_client(sb) as client:
        query = {"$select": "members", "$filter": f"id eq '{group_id}'"}
        added, removed, delta_link, pages = _delta_round(client, "/groups/delta", query)
        assert pages > 1, "a large group spans pages"
        assert added == {group_id: members} and not removed
        assert _delta_round(client, delta_link)[:2] == ({}, {})
        latest = client.get("/groups/delta", params={**query, "$deltatoken": "latest"}).json()
        assert latest["value"] == [] and "@odata.deltaLink" in latest

        sb.entra_add_member(group_id, newcomer)
        sb.entra_remove_member(group_id, leaver)
        added, removed, next_link, _ = _delta_round(client, delta_link)
        assert added == {group_id: {newcomer}} and removed == {group_id: {leaver}}
        assert _delta_round(client, delta_link)[:2] == (added, removed), "replays are allowed"
        assert _delta_round(client, latest["@odata.deltaLink"])[:2] == (added, removed)
        assert _delta_round(client, next_link)[:2] == ({}, {})

        sb.advance(days=8)
        expired = client.get(next_link)
        sb.force_delta_resync()
        gone = client.get(delta_link)
        refused = client.get("/groups/delta", params={**query, "$top": "5"})
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "syncStateNotFound"
    assert gone.status_code == 410 and "/groups/delta" in gone.headers["Location"]
    assert refused.status_code == 400
    mirrored = {sb.org.user_by_object_id(o) for o in sb.org.entra_members(group_id)}
    assert sb.org.members("confluence-user-role") == {u.account_id for u in mirrored if u}


def test_graph_member_writes_mirror_into_atlassian(sb: Sandbox) -> None:
    group_id = sb.org.entra_group_id("jira-software")
    person = next(u for u in sb.org.users if u.entra_object_id not in sb.org.entra_members(group_id))
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{person.entra_object_id}"}
    with graph_client(sb) as client:
        added = client.post(f"/groups/{group_id}/members/$ref", json=reference)
        again = client.post(f"/groups/{group_id}/members/$ref", json=reference)
        mirrored = person.account_id in sb.org.members("jira-software-user-role")
        removed = client.delete(f"/groups/{group_id}/members/{person.entra_object_id}/$ref")
        missing = client.delete(f"/groups/{group_id}/members/{person.entra_object_id}/$ref")
    assert added.status_code == 204 and added.content == b""
    assert again.status_code == 400
    assert mirrored and person.account_id not in sb.org.members("jira-software-user-role")
    assert removed.status_code == 204
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    assert [(c.system, c.kind, c.details["via"]) for c in sb.changes()] == [
        ("entra", "entra_member_added", "graph"),
        ("atlassian", "membership_added", "scim"),
        ("entra", "entra_member_removed", "graph"),
        ("atlassian", "membership_removed", "scim"),
    ]


def test_member_delete_without_ref_is_recorded_as_a_user_deletion(sb: Sandbox) -> None:
    group_id = sb.org.entra_group_id("confluence")
    object_id = sorted(sb.org.entra_members(group_id))[0]
    with graph_client(sb) as client:
        assert client.delete(f"/groups/{group_id}/members/{object_id}").status_code == 204
    assert "entra_user_deleted" in [c.kind for c in sb.changes()]
    deleted = sb.org.user_by_object_id(object_id)
    assert deleted is not None and not deleted.account_enabled


def test_batch_answers_each_item_on_its_own(sb: Sandbox) -> None:
    group_id = sb.org.entra_group_id("confluence")
    members = sorted(sb.org.entra_members(group_id))
    requests: list[dict[str, object]] = [
        {"id": str(i), "method": "DELETE", "url": f"/groups/{group_id}/members/{m}/$ref"}
        for i, m in enumerate(members[:3])
    ]
    requests.append(
        {
            "id": "missing",
            "method": "DELETE",
            "url": f"/groups/{group_id}/members/{members[0]}/$ref",
            "dependsOn": ["0"],
        }
    )
    requests.append(
        {"id": "after-missing", "method": "GET", "url": f"/groups/{group_id}", "dependsOn": ["missing"]}
    )
    with graph_client(sb) as client:
        result = client.post("/$batch", json={"requests": requests})
        too_many = client.post(
            "/$batch",
            json={
                "requests": [{"id": str(i), "method": "GET", "url": f"/groups/{group_id}"} for i in range(21)]
            },
        )
        duplicate = client.post(
            "/$batch",
            json={
                "requests": [
                    {"id": "1", "method": "GET", "url": "/groups/x"},
                    {"id": "1", "method": "GET", "url": "/groups/y"},
                ]
            },
        )
        sb.set_rate_limit("graph", 2)
        throttled = client.post(
            "/$batch",
            json={
                "requests": [{"id": str(i), "method": "GET", "url": f"/groups/{group_id}"} for i in range(4)]
            },
        )
    assert result.status_code == 200
    statuses = {r["id"]: r["status"] for r in result.json()["responses"]}
    assert statuses == {"0": 204, "1": 204, "2": 204, "missing": 404, "after-missing": 424}
    assert too_many.status_code == duplicate.status_code == 400
    items = throttled.json()["responses"]
    limited = [r for r in items if r["status"] == 429]
    assert len(limited) == 2 and all(r["headers"]["Retry-After"] for r in limited)
    assert sorted(r["status"] for r in items) == [200, 200, 429, 429]


def test_batch_responses_come_in_any_order(sb: Sandbox) -> None:
    group_id = sb.org.entra_group_id("confluence")
    requests = [{"id": str(i), "method": "GET", "url": f"/groups/{group_id}"} for i in range(20)]
    with graph_client(sb) as client:
        orders = [
            [r["id"] for r in client.post("/$batch", json={"requests": requests}).json()["responses"]]
            for _ in range(3)
        ]
    assert any(order != [str(i) for i in range(20)] for order in orders)
    assert all(sorted(order, key=int) == [str(i) for i in range(20)] for order in orders)


def test_subscription_lifecycle(sb: Sandbox) -> None:
    group_id = sb.org.entra_group_id("confluence")
    now = sb.clock.now()
    body = {
        "changeType": "updated,deleted",
        "notificationUrl": "https://127.0.0.1:9/notify",
        "resource": f"groups/{group_id}",
        "clientState": "s3cret",
        "expirationDateTime": (now + timedelta(days=28)).isoformat(),
    }
    with graph_client(sb) as client:
        too_long = client.post(
            "/subscriptions",
            json={**body, "expirationDateTime": (now + timedelta(minutes=41_761)).isoformat()},
        )
        created = client.post("/subscriptions", json=body)
        subscription_id = created.json()["id"]
        listed = client.get("/subscriptions").json()["value"]
        renewed = client.patch(
            f"/subscriptions/{subscription_id}",
            json={"expirationDateTime": (now + timedelta(days=20)).isoformat()},
        )
        reauthorized = client.post(f"/subscriptions/{subscription_id}/reauthorize")
        deleted = client.delete(f"/subscriptions/{subscription_id}")
        gone = client.get(f"/subscriptions/{subscription_id}")
        created_again = client.post("/subscriptions", json=body).json()["id"]
        sb.advance(days=29)
        lapsed = client.get(f"/subscriptions/{created_again}")
    assert too_long.status_code == 400 and "41760" in too_long.json()["error"]["message"]
    assert created.status_code == 201 and created.json()["clientState"] == "s3cret"
    assert [s["id"] for s in listed] == [subscription_id]
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"].startswith((now + timedelta(days=20)).strftime("%Y-%m-%dT%H"))
    assert reauthorized.status_code == 204 and deleted.status_code == 204
    assert gone.status_code == 404 and lapsed.status_code == 404
    assert [c.kind for c in sb.changes()] == [
        "subscription_created",
        "subscription_renewed",
        "subscription_reauthorized",
        "subscription_deleted",
        "subscription_created",
    ]


def test_send_mail_is_accepted_and_recorded(sb: Sandbox) -> None:
    sender = sb.org.users[0]
    message = {
        "message": {
            "subject": "Your Confluence license",
            "body": {"contentType": "Text", "content": "It ends in 7 days."},
            "toRecipients": [{"emailAddress": {"address": "a@example.com"}}],
        },
        "saveToSentItems": False,
    }
    with graph_client(sb) as client:
        sent = client.post(f"/users/{sender.entra_object_id}/sendMail", json=message)
        by_upn = client.post(f"/users/{sender.upn}/sendMail", json=message)
        nobody = client.post("/users/nobody@example.com/sendMail", json=message)
        empty = client.post(f"/users/{sender.entra_object_id}/sendMail", json={"message": {"subject": "x"}})
    assert sent.status_code == by_upn.status_code == 202 and sent.content == b""
    assert nobody.status_code == 404 and empty.status_code == 400
    [first, _] = sb.mails()
    assert first.to == ("a@example.com",) and first.subject == "Your Confluence license"
    assert first.sender == sender.upn and first.save_to_sent_items is False
    assert [c.kind for c in sb.changes()] == ["mail_sent", "mail_sent"]
