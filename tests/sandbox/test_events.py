"""The sandbox playing the vendor: webhooks and Graph notifications to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from sandbox import Sandbox
from sandbox.events import NotLoopback, deliver, require_loopback

from .conftest import Receiver, atlassian_client, graph_client


def test_jira_webhook_is_signed_over_the_raw_body_and_replays_with_the_same_id(
    sb: Sandbox, receiver: Receiver
) -> None:
    person = sb.org.users[0]
    delivery = sb.send_jira_webhook(receiver.url, "user_updated", account_id=person.account_id, secret="hush")
    status, _ = delivery
    replayed = delivery.replay()
    first, second = receiver.requests
    assert status == 202 and replayed.status_code == 202
    expected = "sha256=" + hmac.new(b"hush", first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-Hub-Signature"] == expected
    payload = first.json()
    assert payload["webhookEvent"] == "user_updated"
    assert payload["user"]["accountId"] == person.account_id
    assert payload["matchedWebhookIds"] == [1] and isinstance(payload["timestamp"], int)
    assert second.body == first.body
    assert (
        second.headers["X-Atlassian-Webhook-Identifier"]
        == first.headers["X-Atlassian-Webhook-Identifier"]
        == delivery.identifier
    )
    assert "X-Atlassian-Webhook-Retry" not in first.headers
    assert second.headers["X-Atlassian-Webhook-Retry"] == "1"


def test_unsigned_jira_webhook_has_no_signature_and_ids_differ(sb: Sandbox, receiver: Receiver) -> None:
    account_id = sb.org.users[1].account_id
    sb.send_jira_webhook(receiver.url, "user_created", account_id=account_id)
    sb.send_jira_webhook(receiver.url, "user_created", account_id=account_id)
    first, second = receiver.requests
    assert "X-Hub-Signature" not in first.headers
    assert first.headers["X-Atlassian-Webhook-Identifier"] != second.headers["X-Atlassian-Webhook-Identifier"]


def test_audit_webhook_posts_the_event_with_the_configured_authorization(
    sb: Sandbox, receiver: Receiver
) -> None:
    person = sb.org.users[2]
    status, _ = sb.send_audit_webhook(
        receiver.url,
        "product_access_requested",
        account_id=person.account_id,
        authorization="Bearer hook-token",
        product="confluence",
    )
    [received] = receiver.requests
    event = received.json()
    assert status == 202
    assert received.headers["Authorization"] == "Bearer hook-token"
    assert event["type"] == "events"
    assert event["attributes"]["action"] == "product_access_requested"
    assert event["attributes"]["actor"]["id"] == person.account_id
    with atlassian_client(sb) as client:
        stream = client.get(f"/v1/orgs/{sb.org_id}/events-stream").json()
    assert [e["id"] for e in stream["data"]] == [event["id"]]


def test_graph_notification_carries_client_state_and_the_subscription(
    sb: Sandbox, receiver: Receiver
) -> None:
    group_id = sb.org.entra_group_id("confluence")
    with graph_client(sb) as client:
        subscription = client.post(
            "/subscriptions",
            json={
                "changeType": "updated",
                "notificationUrl": receiver.url,
                "resource": f"groups/{group_id}",
                "clientState": "abc",
                "expirationDateTime": (sb.clock.now() + timedelta(days=2)).isoformat(),
            },
        ).json()
    status, _ = sb.send_graph_notification(receiver.url, group_id=group_id, client_state="abc")
    lifecycle = sb.send_lifecycle_notification(
        receiver.url, subscription_id=subscription["id"], client_state="abc"
    )
    notification, lifecycle_event = (r.json()["value"][0] for r in receiver.requests)
    assert status == 202 and lifecycle.status_code == 202
    assert notification["clientState"] == "abc"
    assert notification["subscriptionId"] == subscription["id"]
    assert notification["resourceData"]["id"] == group_id
    assert notification["tenantId"] == sb.tenant_id
    assert lifecycle_event["lifecycleEvent"] == "reauthorizationRequired"


def test_validation_handshake_expects_the_token_echoed(sb: Sandbox, receiver: Receiver) -> None:
    assert sb.validate_notification_url(receiver.url)
    receiver.echo_validation_token = False
    receiver.status = 200
    assert not sb.validate_notification_url(receiver.url)


def test_subscription_creation_can_run_the_handshake(
    start_sandbox: Callable[..., Sandbox], receiver: Receiver
) -> None:
    sb = start_sandbox(validate_notification_urls=True)
    body = {
        "changeType": "updated",
        "resource": "groups",
        "expirationDateTime": (sb.clock.now() + timedelta(days=1)).isoformat(),
    }
    with graph_client(sb) as client:
        accepted = client.post("/subscriptions", json={**body, "notificationUrl": receiver.url})
        receiver.echo_validation_token = False
        refused = client.post("/subscriptions", json={**body, "notificationUrl": receiver.url})
        foreign = client.post(
            "/subscriptions", json={**body, "notificationUrl": "https://203.0.113.5/notify"}
        )
    assert accepted.status_code == 201
    assert refused.status_code == foreign.status_code == 400
    assert len(receiver.requests) == 2, "nothing was sent to the non-loopback address"


def test_entra_changes_can_notify_subscribers(
    start_sandbox: Callable[..., Sandbox], receiver: Receiver
) -> None:
    sb = start_sandbox(deliver_notifications=True)
    group_id = sb.org.entra_group_id("jira-software")
    with graph_client(sb) as client:
        client.post(
            "/subscriptions",
            json={
                "changeType": "updated",
                "notificationUrl": receiver.url,
                "resource": f"groups/{group_id}",
                "clientState": "xyz",
                "expirationDateTime": (sb.clock.now() + timedelta(days=2)).isoformat(),
            },
        )
    outsider = next(
        u.entra_object_id for u in sb.org.users if u.entra_object_id not in sb.org.entra_members(group_id)
    )
    sb.entra_add_member(group_id, outsider)
    deadline = time.monotonic() + 5
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    [received] = receiver.requests
    assert received.json()["value"][0]["resourceData"]["id"] == group_id
    assert received.json()["value"][0]["clientState"] == "xyz"


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "https://example.com/hook", "http://192.168.1.5:8080/x"]
)
def test_deliveries_refuse_anything_but_loopback(url: str) -> None:
    with pytest.raises(NotLoopback):
        require_loopback(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x"])
def test_deliveries_accept_loopback(url: str) -> None:
    require_loopback(url)


def test_a_delivery_to_an_https_receiver_still_verifies_its_certificate(sb: Sandbox) -> None:
    """Plain-HTTP deliveries skip building an SSL context; an https one must not skip checking."""
    url = f"{sb.authority_host}/hook"  # the sandbox's own TLS server, with a certificate it made
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        deliver(url, {}, {})
    trusted = deliver(url, {}, {}, verify=ssl.create_default_context(cafile=sb.ca_cert_path))
    assert trusted.status_code == 404  # reached, verified, and no such route
