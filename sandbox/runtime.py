"""``Sandbox``: the org, both servers and every control, started and stopped as one.

Tests and the app's CLI use only this face (exported from ``sandbox``)::

    with Sandbox.start(SandboxConfig(users=200, seed=7)) as sb:
        client = AtlassianClient(base=sb.atlassian_base, org_id=sb.org_id, key=sb.api_key)
        sb.advance(days=30)
        assert [c.kind for c in sb.changes()] == [...]
"""

from __future__ import annotations

import random
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from . import actions, events
from .activity import AdvanceResult, simulate_days
from .atlassian_api import AtlassianApi
from .atlassian_common import ApiKeyScopes, atlassian_error
from .atlassian_events import render_event
from .clock import Clock
from .control import control_router
from .entra_api import EntraApi, aad_error
from .faults import Faults
from .generator import DEFAULT_PRODUCTS, generate_org
from .graph_api import GraphApi
from .graph_common import GRAPH_PREFIX, GraphPermissions, graph_error
from .graph_mail import Mail
from .graph_subscriptions import Subscription
from .model import Change, EntraMemberChange, OrgEvent
from .org import VIA_SANDBOX, Org
from .orgfile import load_org
from .ratelimit import RateLimiter
from .routing import ApiRequest, ApiResponse, Router
from .server import RequestCounter, SandboxServer, Traffic, Vendor
from .timeutil import epoch_ms, iso_ms
from .tls import make_client_certificate, make_server_tls
from .tokens import TokenStore


@dataclass(frozen=True)
class SandboxConfig:
    """How to build and run a sandbox. ``org_file`` replaces the generator when given."""

    users: int = 200
    seed: int = 7
    org_file: str | Path | None = None
    latency_ms: int = 0
    rate_scale: float = 1.0
    activity_in_search: bool = True
    products: tuple[str, ...] = DEFAULT_PRODUCTS
    start: datetime | None = None  # the clock's start (and the generator's "today")
    frozen_clock: bool = False  # no real-time ticking; only advance() moves the clock
    fault_timeout_s: float = 30.0
    port_atlassian: int = 0  # 0: an ephemeral port
    port_microsoft: int = 0
    synced_access_groups: bool = False  # {product}-users synced from Entra too
    validate_notification_urls: bool = False  # handshake on subscription create
    deliver_notifications: bool = False  # POST Graph notifications on Entra changes
    verbose: bool = False  # log every request to stderr
    api_key_scopes: tuple[str, ...] | None = None  # None: a key without scopes
    graph_permissions: tuple[str, ...] | None = None  # None: every permission Seatwarden uses


def _atlassian_vendor() -> Vendor:
    def error(req: ApiRequest, status: int, message: str) -> ApiResponse:
        # Codes for unknown routes and injected 5xx are the sandbox's own, in Atlassian's form.
        return atlassian_error(status, f"ADMIN-{status}-1", message)

    def throttled(req: ApiRequest, retry_after: int) -> ApiResponse:
        return atlassian_error(
            429,
            "ADMIN-429-1",
            "Too many requests",
            "Rate limit exceeded; retry after the Retry-After interval.",
            headers={"Retry-After": str(retry_after)},
        )

    return Vendor("atlassian", error, throttled, rate_limit_headers=True)


def _microsoft_vendor() -> Vendor:
    def error(req: ApiRequest, status: int, message: str) -> ApiResponse:
        if req.path.startswith(GRAPH_PREFIX):
            code = {
                404: "Request_ResourceNotFound",
                405: "Request_BadRequest",
                500: "InternalServerError",
                503: "serviceNotAvailable",
            }.get(status, "UnknownError")
            return graph_error(status, code, message)
        return aad_error(
            status,
            "temporarily_unavailable" if status >= 500 else "invalid_request",
            90033 if status >= 500 else 900144,
            message,
        )

    def throttled(req: ApiRequest, retry_after: int) -> ApiResponse:
        headers = {"Retry-After": str(retry_after)}
        if req.path.startswith(GRAPH_PREFIX):
            # https://learn.microsoft.com/graph/throttling : 429 with Retry-After seconds.
            return graph_error(429, "TooManyRequests", "Too many requests.", headers)
        response = aad_error(429, "temporarily_unavailable", 90033, "Too many requests; retry later.")
        response.headers.update(headers)
        return response

    return Vendor("microsoft", error, throttled, rate_limit_headers=False)


class Sandbox:
    """A running sandbox. Build with ``Sandbox.start(config)``; stop with ``stop()`` or
    by leaving its ``with`` block."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._workdir = Path(tempfile.mkdtemp(prefix="seatwarden-sandbox-"))
        try:
            self._build(config)
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise

    def _build(self, config: SandboxConfig) -> None:
        self.api_key = "ATCTT3x" + secrets.token_urlsafe(32)
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(30)
        self.faults = Faults(config.seed, timeout_s=config.fault_timeout_s)
        self._limiter = RateLimiter(config.rate_scale)
        self._counter = RequestCounter()
        self._traffic = Traffic(self.faults, self._limiter, self._counter, config.latency_ms)
        server_tls = make_server_tls(self._workdir)
        self._client_cert = make_client_certificate(self._workdir, self.client_id)
        self._tokens = TokenStore()
        self._api_key_scopes = ApiKeyScopes(config.api_key_scopes)
        self._graph_permissions = GraphPermissions(config.graph_permissions)
        self._notifier: events.NotificationWorker | None = None
        if config.deliver_notifications:
            self._notifier = events.NotificationWorker(self._post_notification)
        atlassian_router, microsoft_router = self._wire(self._first_org(config), config.seed)

        self._atlassian_server = SandboxServer(
            config.port_atlassian,
            vendor=_atlassian_vendor(),
            router=atlassian_router,
            traffic=self._traffic,
            control=control_router(self),
            verbose=config.verbose,
        )
        try:
            self._microsoft_server = SandboxServer(
                config.port_microsoft,
                vendor=_microsoft_vendor(),
                router=microsoft_router,
                traffic=self._traffic,
                tls=server_tls.context(),
                verbose=config.verbose,
            )
        except BaseException:
            self._atlassian_server.server_close()
            raise
        self.ca_cert_path = str(server_tls.ca_cert_path)
        self._started = False

    def _first_org(self, config: SandboxConfig) -> Org:
        if config.org_file is not None:
            return load_org(config.org_file, start=config.start, frozen=config.frozen_clock)
        return generate_org(
            users=config.users,
            seed=config.seed,
            clock=Clock(config.start, frozen=config.frozen_clock),
            products=config.products,
            synced_access_groups=config.synced_access_groups,
        )

    def _wire(self, org: Org, seed: int) -> tuple[Router, Router]:
        """The vendor APIs over ``org``, and the two servers' routers for them."""
        config = self.config
        self.org = org
        self.clock: Clock = org.clock
        self._activity_rng = random.Random(f"{seed}:activity")
        self._atlassian = AtlassianApi(
            org,
            api_key=self.api_key,
            activity_in_search=config.activity_in_search,
            scopes=self._api_key_scopes,
        )
        atlassian_router = Router()
        self._atlassian.register(atlassian_router)
        validator = events.validate_notification_url if config.validate_notification_urls else None
        self._graph = GraphApi(
            org,
            self._tokens,
            limiter=self._limiter,
            faults=self.faults,
            count=self._counter.add,
            application_id=self.client_id,
            url_validator=validator,
            seed=seed,
            permissions=self._graph_permissions,
        )
        microsoft_router = Router()
        EntraApi(
            org,
            client_id=self.client_id,
            client_secret=self.client_secret,
            client_certificate=self._client_cert,
            tokens=self._tokens,
        ).register(microsoft_router)
        self._graph.register(microsoft_router)
        if self._notifier is not None:
            org.on_entra_change(self._notify_entra_change)
        return atlassian_router, microsoft_router

    def load(self, *, users: int, seed: int, start: datetime | None = None) -> None:
        """Serve a freshly generated org from now on, on the same servers and credentials.

        For campaigns that run hundreds of small orgs: a new org costs a millisecond, new
        servers (certificates, threads) a hundred times that. Faults are cleared and drawn
        from ``seed``; the change log, subscriptions and mail start empty with the org.
        """
        config = self.config
        org = generate_org(
            users=users,
            seed=seed,
            clock=Clock(start, frozen=config.frozen_clock),
            products=config.products,
            synced_access_groups=config.synced_access_groups,
        )
        self.faults.reseed(seed)
        atlassian_router, microsoft_router = self._wire(org, seed)
        self._atlassian_server.router = atlassian_router
        self._microsoft_server.router = microsoft_router

    @classmethod
    def start(cls, config: SandboxConfig | None = None) -> Sandbox:
        """Build the org and start both servers on 127.0.0.1 in background threads."""
        sandbox = cls(config or SandboxConfig())
        sandbox._atlassian_server.start()
        sandbox._microsoft_server.start()
        sandbox._started = True
        return sandbox

    def stop(self) -> None:
        if self._started:
            # Both at once: each waits for its serve loop to notice.
            stoppers = [
                threading.Thread(target=server.stop)
                for server in (self._atlassian_server, self._microsoft_server)
            ]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join()
            self._started = False
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # ---- where and who ---------------------------------------------------------------

    @property
    def atlassian_base(self) -> str:
        """Like ``https://api.atlassian.com/admin``: paths are ``{base}/v2/orgs/{orgId}/…``."""
        return f"{self._atlassian_server.base_url}/admin"

    @property
    def authority_host(self) -> str:
        """Like ``https://login.microsoftonline.com``; the msal authority is
        ``f"{authority_host}/{tenant_id}"``."""
        return self._microsoft_server.base_url

    @property
    def graph_root(self) -> str:
        """Like ``https://graph.microsoft.com``; scopes are ``f"{graph_root}/.default"``
        (the real ``https://graph.microsoft.com/.default`` is accepted too)."""
        return self._microsoft_server.base_url

    @property
    def graph_base(self) -> str:
        return f"{self._microsoft_server.base_url}{GRAPH_PREFIX}"

    @property
    def control_base(self) -> str:
        return f"{self._atlassian_server.base_url}/_sandbox"

    @property
    def org_id(self) -> str:
        return self.org.org_id

    @property
    def tenant_id(self) -> str:
        return self.org.identity.tenant_id

    @property
    def client_cert_pem_path(self) -> str:
        """PEM file with the app certificate's private key and certificate."""
        return str(self._client_cert.pem_path)

    @property
    def client_cert_thumbprint(self) -> str:
        """SHA-1 thumbprint (hex), as msal's ``{"thumbprint": …}`` credential wants it."""
        return self._client_cert.thumbprint

    @property
    def client_private_key_pem(self) -> str:
        return self._client_cert.private_key_pem

    @property
    def client_certificate_pem(self) -> str:
        return self._client_cert.certificate_pem

    def env(self) -> dict[str, str]:
        """The settings a Seatwarden process needs to use this sandbox, by env var name."""
        return {
            "ATLASSIAN_API_BASE": self.atlassian_base,
            "ATLASSIAN_ORG_ID": self.org_id,
            "ATLASSIAN_API_KEY": self.api_key,
            "GRAPH_API_BASE": self.graph_base,
            "ENTRA_AUTHORITY_HOST": self.authority_host,
            "ENTRA_TENANT_ID": self.tenant_id,
            "ENTRA_CLIENT_ID": self.client_id,
            "ENTRA_CLIENT_SECRET": self.client_secret,
            "SEATWARDEN_CA_BUNDLE": self.ca_cert_path,
            "ENTRA_CLIENT_CERT_PATH": self.client_cert_pem_path,
            "ENTRA_CLIENT_CERT_THUMBPRINT": self.client_cert_thumbprint,
            "SANDBOX_CONTROL_URL": self.control_base,
        }

    # ---- time, traffic and faults ----------------------------------------------------

    def advance(self, days: int = 1) -> AdvanceResult:
        """Let ``days`` days pass: licensed people use their products, a few return."""
        return simulate_days(self.org, days, self._activity_rng)

    def set_latency(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("latency must not be negative")
        self._traffic.latency_ms = ms

    def set_rate_limit(self, endpoint_class: str, per_minute: float | None) -> None:
        """Set one endpoint class's limit in requests per minute (None: unlimited)."""
        self._limiter.set_limit(endpoint_class, per_minute)

    def rate_limits(self) -> dict[str, float]:
        return self._limiter.limits()

    def request_counts(self) -> dict[str, int]:
        """Requests per endpoint class since start or the last reset, plus ``total``."""
        return self._counter.snapshot()

    def reset_counts(self) -> None:
        self._counter.reset()

    def set_api_key_scopes(self, scopes: Iterable[str] | None) -> None:
        """Make the org API key one with these scopes (``None``: a key without scopes).

        A key with scopes gets 403 from endpoints whose scope it lacks, and from the writes,
        which take only a key without scopes (sandbox/README.md, "API key scopes")."""
        self._api_key_scopes.set(scopes)

    def api_key_scopes(self) -> frozenset[str] | None:
        return self._api_key_scopes.get()

    def set_graph_permissions(self, permissions: Iterable[str] | None) -> None:
        """Grant the app only these Graph application permissions (``None``: all it uses).

        Graph answers 403 ``Authorization_RequestDenied`` to a call none of whose
        permissions is granted."""
        self._graph_permissions.set(permissions)

    def graph_permissions(self) -> frozenset[str] | None:
        return self._graph_permissions.get()

    def expire_tokens(self) -> None:
        """Expire every issued access token (clients must fetch a new one)."""
        self._tokens.expire_all()

    def force_delta_resync(self) -> None:
        """The next Graph delta request with a token gets 410 Gone."""
        self._graph.delta.force_resync()

    # ---- what happened -----------------------------------------------------------------

    def changes(self, since: int = 0) -> list[Change]:
        """Every mutation since change ``since``: membership, suspension, Entra, Graph."""
        return self.org.changes(since)

    def mails(self) -> list[Mail]:
        return self._graph.mailbox.mails()

    def record_event(
        self, account_id: str, action: str = actions.USER_LOGGED_IN, product: str | None = None
    ) -> OrgEvent:
        """A person's own audit-log event (a login, an access request) happening now."""
        return self.org.user_event(account_id, action, product=product)

    # ---- an Entra admin at work --------------------------------------------------------

    def entra_add_member(self, group_id: str, object_id: str) -> bool:
        """Add a user to an Entra group, as an admin in the portal would. Mirrors into the
        synced Atlassian group and shows up in ``/groups/delta``."""
        return self.org.entra_add_member(group_id, object_id, via=VIA_SANDBOX)

    def entra_remove_member(self, group_id: str, object_id: str) -> bool:
        return self.org.entra_remove_member(group_id, object_id, via=VIA_SANDBOX)

    # ---- the sandbox playing the vendor ------------------------------------------------

    def send_jira_webhook(
        self,
        url: str,
        event: str = "user_updated",
        *,
        account_id: str,
        secret: str | None = None,
        webhook_ids: tuple[int, ...] = (1,),
    ) -> events.Delivery:
        """POST a Jira admin ``user_*`` webhook about ``account_id`` (WIRE.md §9)."""
        user = self.org.user(account_id)
        payload: dict[str, Any] = {
            "timestamp": epoch_ms(self.clock.now()),
            "webhookEvent": event,
            "user": {
                "accountId": user.account_id,
                "accountType": "atlassian",
                "displayName": user.name,
                "active": user.status == "active",
                "self": f"https://{self.org.identity.site_name}.atlassian.net/rest/api/3/"
                f"user?accountId={user.account_id}",
            },
            "matchedWebhookIds": list(webhook_ids),
        }
        return events.jira_webhook(url, payload, secret=secret)

    def send_audit_webhook(
        self,
        url: str,
        action: str = actions.USER_LOGGED_IN,
        *,
        account_id: str,
        authorization: str,
        product: str | None = None,
        wrap: bool = False,
    ) -> events.Delivery:
        """Record an audit-log event for ``account_id`` and POST it (WIRE.md §8): the bare
        event object, or ``{"data": [event]}`` with ``wrap``."""
        event = self.record_event(account_id, action, product)
        rendered = render_event(self.org, event, self._atlassian_server.base_url)
        payload = {"data": [rendered]} if wrap else rendered
        return events.deliver(url, payload, {"Authorization": authorization})

    def send_graph_notification(
        self,
        url: str,
        *,
        group_id: str,
        client_state: str | None,
        subscription_id: str | None = None,
        change_type: str = "updated",
    ) -> events.Delivery:
        """POST a change notification about an Entra group (WIRE.md §16). Uses the active
        subscription on that group when there is one."""
        subscription = self._subscription_for(group_id, subscription_id)
        if subscription is not None:
            sub_id, expiration = subscription.id, iso_ms(subscription.expiration)
        else:
            sub_id = subscription_id or str(uuid.uuid4())
            expiration = iso_ms(self.clock.now() + timedelta(days=2))
        payload = events.graph_notification(
            subscription_id=sub_id,
            expiration=expiration,
            client_state=client_state,
            tenant_id=self.tenant_id,
            group_id=group_id,
            change_type=change_type,
        )
        return events.deliver(url, payload, {})

    def send_lifecycle_notification(
        self,
        url: str,
        *,
        subscription_id: str,
        client_state: str | None,
        event: str = "reauthorizationRequired",
    ) -> events.Delivery:
        expiration = iso_ms(self.clock.now() + timedelta(hours=1))
        payload = events.lifecycle_notification(
            subscription_id=subscription_id,
            expiration=expiration,
            client_state=client_state,
            tenant_id=self.tenant_id,
            event=event,
        )
        return events.deliver(url, payload, {})

    def validate_notification_url(self, url: str) -> bool:
        """Run Graph's validation handshake against ``url``; True if it answered right."""
        return events.validate_notification_url(url)

    def _subscription_for(self, group_id: str, subscription_id: str | None) -> Subscription | None:
        for subscription in self._graph.subscriptions.active():
            if subscription_id is not None and subscription.id != subscription_id:
                continue
            resource = subscription.resource.strip("/").lower()
            if resource in ("groups", f"groups/{group_id}".lower()):
                return subscription
        return None

    def _notify_entra_change(self, change: EntraMemberChange) -> None:
        notifier = self._notifier
        if notifier is None:
            return
        for subscription in self._graph.subscriptions.active():
            resource = subscription.resource.strip("/").lower()
            if resource in ("groups", f"groups/{change.group_id}".lower()):
                notifier.submit(
                    subscription.notification_url,
                    events.graph_notification(
                        subscription_id=subscription.id,
                        expiration=iso_ms(subscription.expiration),
                        client_state=subscription.client_state,
                        tenant_id=self.tenant_id,
                        group_id=change.group_id,
                    ),
                )

    def _post_notification(self, url: str, payload: dict[str, Any]) -> None:
        events.deliver(url, payload, {})
