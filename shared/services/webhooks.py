"""Webhook intake: verify, parse, de-duplicate, classify, enqueue. Fast and strict.

Everything here answers within a second and changes nothing for a bad delivery: a bad or
missing signature is `Unauthorized` (401), a malformed body `BadRequest` (400), and neither
enqueues anything. Secrets are compared in constant time (`hmac.compare_digest`).

Sources:
- Jira admin webhooks: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, and
  `X-Atlassian-Webhook-Identifier`, stable across retries, to de-duplicate on
  (https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks).
- The org audit-log webhook: a static `Authorization` header set by the admin
  (https://support.atlassian.com/security-and-access-policies/docs/learn-more-about-audit-log-webhooks).
- Graph change notifications: `validationToken` handshake, `clientState` check
  (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.untrusted import Unreadable, load_json

#: Largest body we read; Atlassian and Graph deliveries are a few KiB.
MAX_BODY_BYTES = 256 * 1024

#: Longest id or name passed on to a queue. Atlassian account ids are at most 128 characters,
#: Graph ids are GUIDs and event ids UUIDs; a longer one did not come from the vendor, and a
#: queue message holds 48 KiB (shared.store.queues), so it is refused here, not there.
MAX_FIELD_CHARS = 256

#: Jira webhook events that can mean a person is back (WIRE.md §9).
JIRA_RETURN_EVENTS = frozenset({"user_created", "user_updated"})

#: Org audit-log actions that mean a person is back: a login, a request for product access, a
#: self-join or an admin's add to a group, an account created or restored. Atlassian does not
#: document every key (WIRE.md §7 marks them UNCONFIRMED): matching is by substring on the
#: action key, kept in this one table so it is easy to correct.
AUDIT_RETURN_MARKERS = (
    "logged_in",
    "login",
    "access_requested",
    "product_access_requested",
    "request_access",
    "added_to_group",
    "group_member_added",
    "joined_group",
    "user_created",
    "user_restored",
    "access_restored",
)


class Unauthorized(Exception):
    """401: the delivery did not prove it came from the vendor."""


class BadRequest(Exception):
    """400: the delivery cannot be read."""


@dataclass(frozen=True)
class ReturnEvent:
    source: str
    delivery_id: str
    account_id: str
    event: str

    def to_message(self) -> dict[str, str]:
        return {
            "type": "return",
            "source": self.source,
            "delivery_id": self.delivery_id,
            "account_id": self.account_id,
            "event": self.event,
        }


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def jira_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_jira(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Check `X-Hub-Signature` over the raw bytes, never a re-serialised body."""
    given = headers.get("x-hub-signature") or ""
    if not given.startswith("sha256="):
        raise Unauthorized("missing or malformed X-Hub-Signature")
    if not _same(given, jira_signature(secret, body)):
        raise Unauthorized("X-Hub-Signature does not match the body")


def verify_authorization(headers: Mapping[str, str], expected: str) -> None:
    given = headers.get("authorization") or ""
    if not given or not _same(given, expected):
        raise Unauthorized("Authorization header does not match")


def parse_json(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        return load_json(body)
    except Unreadable as exc:
        raise BadRequest(f"body is {exc}") from None


def _text(value: Any, field: str) -> str | None:
    """A non-empty string field, or None; `BadRequest` naming `field` when it is too long."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) > MAX_FIELD_CHARS:
        raise BadRequest(f"{field} is longer than {MAX_FIELD_CHARS} characters")
    return value


def classify_jira(headers: Mapping[str, str], payload: Any) -> ReturnEvent | None:
    if not isinstance(payload, dict):
        raise BadRequest("expected a JSON object")
    event = _text(payload.get("webhookEvent"), "webhookEvent")
    user = payload.get("user")
    if event is None:
        raise BadRequest("missing webhookEvent")
    delivery = _text(headers.get("x-atlassian-webhook-identifier"), "X-Atlassian-Webhook-Identifier") or ""
    if not delivery:
        delivery = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    if event not in JIRA_RETURN_EVENTS:
        return None
    account_id = _text(user.get("accountId"), "user.accountId") if isinstance(user, dict) else None
    if account_id is None:
        raise BadRequest("missing user.accountId")
    return ReturnEvent("jira", delivery, account_id, event)


def _audit_events(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        items = payload["data"]
    elif isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        items = [payload["data"]]
    elif isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict):
        items = [payload]
    else:
        raise BadRequest("expected an event object or a list of them")
    if not all(isinstance(i, dict) for i in items):
        raise BadRequest("every event must be a JSON object")
    return items


def classify_audit_event(event: Mapping[str, Any]) -> ReturnEvent | None:
    """One org audit-log event (WIRE.md §7 shape) → a return event, or None if it is not one."""
    attributes = event.get("attributes")
    if not isinstance(attributes, dict):
        raise BadRequest("event without attributes")
    event_id = _text(event.get("id"), "event id")
    action = _text(attributes.get("action"), "attributes.action")
    if event_id is None or action is None:
        raise BadRequest("event without id or attributes.action")
    if not any(marker in action.lower() for marker in AUDIT_RETURN_MARKERS):
        return None
    # The person concerned: a user in the context (group joins), else the actor (logins).
    # A context or actor of another shape than WIRE.md's names no one: the event is not a return.
    account_id = None
    context = attributes.get("context")
    for item in context if isinstance(context, list) else ():
        if isinstance(item, dict) and item.get("type") == "users":
            account_id = _text(item.get("id"), "attributes.context[].id")
            if account_id:
                break
    if account_id is None:
        actor = attributes.get("actor")
        account_id = _text(actor.get("id"), "attributes.actor.id") if isinstance(actor, dict) else None
    if account_id is None:
        return None
    return ReturnEvent("audit", event_id, account_id, action)


def classify_audit(payload: Any) -> list[ReturnEvent]:
    found = []
    for event in _audit_events(payload):
        classified = classify_audit_event(event)
        if classified:
            found.append(classified)
    return found


@dataclass(frozen=True)
class GraphNotification:
    subscription_id: str
    resource: str
    group_id: str | None
    lifecycle_event: str | None


def parse_graph(payload: Any, client_state: str) -> tuple[list[GraphNotification], int]:
    """Notifications whose `clientState` matches; the count of those dropped for a mismatch."""
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
        raise BadRequest('expected {"value": [...]}')
    good: list[GraphNotification] = []
    dropped = 0
    for item in payload["value"]:
        if not isinstance(item, dict):
            raise BadRequest("every notification must be a JSON object")
        given = item.get("clientState")
        if not isinstance(given, str) or not _same(given, client_state):
            dropped += 1
            continue
        data = item.get("resourceData") if isinstance(item.get("resourceData"), dict) else {}
        resource = _text(item.get("resource"), "resource") or ""
        group_id = _text(data.get("id"), "resourceData.id") if data else None
        if group_id is None and resource.lower().startswith("groups/"):
            group_id = resource.split("/", 1)[1] or None
        good.append(
            GraphNotification(
                subscription_id=_text(item.get("subscriptionId"), "subscriptionId") or "",
                resource=resource,
                group_id=group_id,
                lifecycle_event=_text(item.get("lifecycleEvent"), "lifecycleEvent"),
            )
        )
    return good, dropped
