"""Graph change-notification subscriptions: create, list, renew, reauthorize, delete.

WIRE.md §16 and https://learn.microsoft.com/graph/api/resources/subscription: groups
and users support ``updated,deleted`` with a lifetime of at most 41,760 minutes (under 29
days); create answers 201, renew (PATCH) 200, reauthorize and delete 204. Lifetimes are
measured on the sandbox clock, so ``advance(days=30)`` lets subscriptions lapse.

Graph validates both notification URLs at creation. The sandbox does so only when asked
(``validate_urls``), and only for loopback URLs: it never calls any other address.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .graph_common import graph_base, graph_error, graph_json, not_found
from .org import Org
from .routing import ApiRequest, ApiResponse, BadJson
from .timeutil import iso_ms, parse_iso

MAX_LIFETIME = timedelta(minutes=41_760)
MAX_CLIENT_STATE = 128
SUPPORTED_CHANGE_TYPES = {"updated", "deleted"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Subscription:
    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_notification_url: str | None
    client_state: str | None
    expiration: datetime
    application_id: str
    creator_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": iso_ms(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


UrlValidator = Callable[[str], bool]


class Subscriptions:
    def __init__(self, org: Org, *, application_id: str, validator: UrlValidator | None) -> None:
        self._org = org
        self._application_id = application_id
        self._creator_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{application_id}/sp"))
        self._validator = validator
        self._items: dict[str, Subscription] = {}
        self._lock = threading.Lock()

    def active(self) -> list[Subscription]:
        """Subscriptions not yet expired on the sandbox clock."""
        now = self._org.clock.now()
        with self._lock:
            return [s for s in self._items.values() if s.expiration > now]

    def _get(self, subscription_id: str) -> Subscription | None:
        now = self._org.clock.now()
        with self._lock:
            found = self._items.get(subscription_id)
        return found if found is not None and found.expiration > now else None

    # https://learn.microsoft.com/graph/api/subscription-post-subscriptions
    def create(self, req: ApiRequest) -> ApiResponse:
        try:
            body = req.json(allow_empty=False)
        except BadJson as exc:
            return graph_error(400, "InvalidRequest", str(exc))
        if not isinstance(body, dict):
            return graph_error(400, "InvalidRequest", "The body must be a JSON object.")
        missing = [
            f
            for f in ("changeType", "notificationUrl", "resource", "expirationDateTime")
            if not isinstance(body.get(f), str) or not body.get(f)
        ]
        if missing:
            return graph_error(400, "InvalidRequest", f"Missing required property: {missing[0]}.")
        resource = body["resource"].strip("/")
        problem = (
            self._resource_problem(resource)
            or self._change_type_problem(body["changeType"], resource)
            or self._client_state_problem(body.get("clientState"))
        )
        if problem:
            return problem
        expiration = self._expiration(body["expirationDateTime"])
        if isinstance(expiration, ApiResponse):
            return expiration
        urls = [body["notificationUrl"], body.get("lifecycleNotificationUrl")]
        for url in (u for u in urls if u):
            url_problem = self._url_problem(url)
            if url_problem:
                return url_problem
        subscription = Subscription(
            id=str(uuid.uuid4()),
            resource=body["resource"],
            change_type=body["changeType"],
            notification_url=body["notificationUrl"],
            lifecycle_notification_url=body.get("lifecycleNotificationUrl"),
            client_state=body.get("clientState"),
            expiration=expiration,
            application_id=self._application_id,
            creator_id=self._creator_id,
        )
        with self._lock:
            self._items[subscription.id] = subscription
        self._org.record_change(
            "entra",
            "subscription_created",
            subscription_id=subscription.id,
            resource=subscription.resource,
            expiration=iso_ms(subscription.expiration),
        )
        return graph_json(
            201,
            {
                "@odata.context": f"{graph_base(req)}/$metadata#subscriptions/$entity",
                **subscription.to_json(),
            },
        )

    # https://learn.microsoft.com/graph/api/subscription-list
    def list(self, req: ApiRequest) -> ApiResponse:
        return graph_json(
            200,
            {
                "@odata.context": f"{graph_base(req)}/$metadata#subscriptions",
                "value": [s.to_json() for s in self.active()],
            },
        )

    # https://learn.microsoft.com/graph/api/subscription-get
    def get(self, req: ApiRequest, subscription_id: str) -> ApiResponse:
        found = self._get(subscription_id)
        if found is None:
            return not_found(subscription_id)
        return graph_json(
            200, {"@odata.context": f"{graph_base(req)}/$metadata#subscriptions/$entity", **found.to_json()}
        )

    # https://learn.microsoft.com/graph/api/subscription-update
    def renew(self, req: ApiRequest, subscription_id: str) -> ApiResponse:
        found = self._get(subscription_id)
        if found is None:
            return not_found(subscription_id)
        try:
            body = req.json(allow_empty=False)
        except BadJson as exc:
            return graph_error(400, "InvalidRequest", str(exc))
        if not isinstance(body, dict) or not isinstance(body.get("expirationDateTime"), str):
            return graph_error(400, "InvalidRequest", "expirationDateTime is required.")
        expiration = self._expiration(body["expirationDateTime"])
        if isinstance(expiration, ApiResponse):
            return expiration
        found.expiration = expiration
        self._org.record_change(
            "entra", "subscription_renewed", subscription_id=found.id, expiration=iso_ms(expiration)
        )
        return self.get(req, subscription_id)

    # https://learn.microsoft.com/graph/api/subscription-reauthorize
    def reauthorize(self, req: ApiRequest, subscription_id: str) -> ApiResponse:
        found = self._get(subscription_id)
        if found is None:
            return not_found(subscription_id)
        self._org.record_change("entra", "subscription_reauthorized", subscription_id=found.id)
        return ApiResponse.empty(204)

    # https://learn.microsoft.com/graph/api/subscription-delete
    def delete(self, req: ApiRequest, subscription_id: str) -> ApiResponse:
        with self._lock:
            found = self._items.pop(subscription_id, None)
        if found is None:
            return not_found(subscription_id)
        self._org.record_change("entra", "subscription_deleted", subscription_id=found.id)
        return ApiResponse.empty(204)

    def _resource_problem(self, resource: str) -> ApiResponse | None:
        kind, _, rest = resource.partition("/")
        if kind.lower() not in ("groups", "users"):
            return graph_error(
                400,
                "InvalidRequest",
                f"The sandbox supports subscriptions on groups and users, not '{resource}'.",
            )
        if kind.lower() == "groups" and rest:
            group_id = rest.split("/")[0]
            if self._org.find_entra_group(group_id) is None:
                return not_found(group_id)
        return None

    def _change_type_problem(self, change_type: str, resource: str) -> ApiResponse | None:
        kinds = {c.strip() for c in change_type.split(",")}
        unsupported = sorted(kinds - SUPPORTED_CHANGE_TYPES)
        if unsupported:
            return graph_error(
                400,
                "InvalidRequest",
                f"ChangeType '{unsupported[0]}' is not supported for resource '{resource}'.",
            )
        return None

    def _client_state_problem(self, client_state: Any) -> ApiResponse | None:
        if client_state is None:
            return None
        if not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE:
            return graph_error(
                400,
                "InvalidRequest",
                f"clientState must be a string of at most {MAX_CLIENT_STATE} characters.",
            )
        return None

    def _expiration(self, text: str) -> datetime | ApiResponse:
        try:
            expiration = parse_iso(text)
        except ValueError:
            return graph_error(400, "InvalidRequest", f"Invalid expirationDateTime '{text}'.")
        now = self._org.clock.now()
        if expiration <= now:
            return graph_error(400, "InvalidRequest", "Subscription expiration must be in the future.")
        if expiration - now > MAX_LIFETIME:
            minutes = int(MAX_LIFETIME.total_seconds() // 60)
            return graph_error(
                400, "InvalidRequest", f"Subscription expiration can only be {minutes} minutes in the future."
            )
        return expiration

    def _url_problem(self, url: str) -> ApiResponse | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return graph_error(400, "InvalidRequest", f"Invalid notification URL '{url}'.")
        if self._validator is None:
            return None
        if parts.hostname not in LOOPBACK_HOSTS or not self._validator(url):
            return graph_error(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Response must exactly "
                "match validationToken query parameter.",
            )
        return None
