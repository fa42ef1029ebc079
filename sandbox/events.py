"""The sandbox playing the vendor's part: POSTing webhooks and change notifications.

- Jira admin webhooks: ``X-Atlassian-Webhook-Identifier`` unique per delivery and the same
  on a retry, ``X-Atlassian-Webhook-Retry`` counting retries, and, when a secret is set,
  ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (WIRE.md §9,
  https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks).
- Org audit-log webhook: the §7 event object with the static ``Authorization`` header the
  admin configured (WIRE.md §8,
  https://support.atlassian.com/security-and-access-policies/docs/learn-more-about-audit-log-webhooks).
- Graph change and lifecycle notifications, and the ``validationToken`` handshake
  (WIRE.md §16, https://learn.microsoft.com/graph/change-notifications-delivery-webhooks).

Every delivery is a ``Delivery``; ``delivery.replay()`` sends the same body and identifier
again, as vendors do when they retry. Targets must be loopback addresses: the sandbox
never sends anything anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import queue
import secrets
import ssl
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

DELIVERY_TIMEOUT_S = 10.0
RETRY_HEADER = "X-Atlassian-Webhook-Retry"


class NotLoopback(ValueError):
    """The sandbox only delivers to 127.0.0.0/8, ::1 or localhost."""


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise NotLoopback(f"refusing to deliver to {url!r}: only loopback targets are allowed")


@dataclass(frozen=True)
class Delivery:
    """One POST the sandbox made, and what the receiver answered.

    Unpacks as ``status, text = delivery``; ``status_code`` and ``text`` as on httpx.
    """

    url: str
    body: bytes
    headers: Mapping[str, str]
    status_code: int
    text: str
    retries: int = 0
    counts_retries: bool = False  # Jira sends X-Atlassian-Webhook-Retry on redeliveries
    verify: bool | ssl.SSLContext = field(default=True, repr=False)

    def __iter__(self) -> Iterator[Any]:
        yield self.status_code
        yield self.text

    @property
    def identifier(self) -> str | None:
        return self.headers.get("X-Atlassian-Webhook-Identifier")

    def json(self) -> Any:
        return json.loads(self.body)

    def replay(self) -> Delivery:
        """Deliver the same body again, with the same identifier (a vendor retry)."""
        headers = dict(self.headers)
        if self.counts_retries:
            headers[RETRY_HEADER] = str(self.retries + 1)
        status, text = _post(self.url, self.body, headers, self.verify)
        return replace(self, headers=headers, status_code=status, text=text, retries=self.retries + 1)


def _post(
    url: str, body: bytes, headers: Mapping[str, str], verify: bool | ssl.SSLContext = True
) -> tuple[int, str]:
    require_loopback(url)
    if not url.lower().startswith("https:"):
        # No TLS to verify: httpx would still build an SSL context with the CA bundle for
        # `verify=True`, 39 ms here, which a timed delivery would count as the receiver's.
        verify = False
    with httpx.Client(timeout=DELIVERY_TIMEOUT_S, verify=verify, trust_env=False) as client:
        response = client.post(url, content=body, headers=dict(headers))
        return response.status_code, response.text


def deliver(
    url: str,
    payload: Any,
    headers: Mapping[str, str],
    *,
    counts_retries: bool = False,
    verify: bool | ssl.SSLContext = True,
) -> Delivery:
    body = json.dumps(payload, separators=(",", ":")).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    status, text = _post(url, body, all_headers, verify)
    return Delivery(url, body, all_headers, status, text, counts_retries=counts_retries, verify=verify)


def jira_webhook(
    url: str, payload: Mapping[str, Any], *, secret: str | None = None, verify: bool | ssl.SSLContext = True
) -> Delivery:
    """A Jira admin webhook: signed over the exact bytes sent when ``secret`` is given."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Atlassian-Webhook-Identifier": f"{secrets.randbits(63)}",
        "X-Atlassian-Webhook-Flow": "Primary",
    }
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature"] = f"sha256={digest}"
    status, text = _post(url, body, headers, verify)
    return Delivery(url, body, headers, status, text, counts_retries=True, verify=verify)


def graph_notification(
    *,
    subscription_id: str,
    expiration: str,
    client_state: str | None,
    tenant_id: str,
    group_id: str,
    change_type: str = "updated",
) -> dict[str, Any]:
    """One change notification for a group, as Graph posts it (WIRE.md §16)."""
    return {
        "value": [
            {
                "id": str(uuid.uuid4()),
                "subscriptionId": subscription_id,
                "subscriptionExpirationDateTime": expiration,
                "clientState": client_state,
                "changeType": change_type,
                "resource": f"Groups/{group_id}",
                "tenantId": tenant_id,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Group",
                    "@odata.id": f"Groups/{group_id}",
                    "id": group_id,
                },
            }
        ]
    }


def lifecycle_notification(
    *,
    subscription_id: str,
    expiration: str,
    client_state: str | None,
    tenant_id: str,
    event: str = "reauthorizationRequired",
) -> dict[str, Any]:
    """A lifecycle notification (https://learn.microsoft.com/graph/change-notifications-lifecycle-events)."""
    return {
        "value": [
            {
                "subscriptionId": subscription_id,
                "subscriptionExpirationDateTime": expiration,
                "tenantId": tenant_id,
                "clientState": client_state,
                "lifecycleEvent": event,
            }
        ]
    }


def validate_notification_url(
    url: str, *, verify: bool | ssl.SSLContext = True, timeout: float = DELIVERY_TIMEOUT_S
) -> bool:
    """Graph's handshake: POST ``?validationToken=…`` (text/plain); the receiver must
    answer 200, text/plain, with the decoded token, within 10 s."""
    require_loopback(url)
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    separator = "&" if "?" in url else "?"
    target = f"{url}{separator}validationToken={quote(token)}"
    try:
        with httpx.Client(timeout=timeout, verify=verify, trust_env=False) as client:
            response = client.post(target, content=b"", headers={"Content-Type": "text/plain; charset=utf-8"})
    except httpx.HTTPError:
        return False
    content_type = response.headers.get("content-type", "")
    return response.status_code == 200 and content_type.startswith("text/plain") and response.text == token


class NotificationWorker:
    """Delivers queued notifications on a background thread, so the request that caused
    them (an Entra change) is never held up by a slow receiver."""

    def __init__(self, send: Callable[[str, dict[str, Any]], None]) -> None:
        self._send = send
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sandbox-notifications", daemon=True)
        self._thread.start()

    def submit(self, url: str, payload: dict[str, Any]) -> None:
        self._queue.put((url, payload))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._send(*item)
            except (httpx.HTTPError, NotLoopback) as exc:
                print(f"sandbox: notification to {item[0]} failed: {exc}", file=sys.stderr)
