"""The Microsoft Graph client (httpx for calls, msal for app-only tokens).

Seatwarden reads entitlement from Entra groups (transitive members, and group delta for
change notifications), removes people from IdP-synced access groups where a policy
allows writes, keeps change-notification subscriptions alive, and sends warning mail.
Wire formats: WIRE.md §§11-18, with the Microsoft Learn pages cited there.

The one place a slip deletes a person instead of a membership is the member ``DELETE``:
without ``/$ref`` Graph deletes the user object itself (WIRE.md §14). Every member
removal here is built by ``_member_ref_path``, which always ends in ``/$ref``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx
import msal
import msal.authority
import msal.exceptions
import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared.errors import (
    CA_BUNDLE_SETTING,
    ENTRA_AUTHORITY_HOST_SETTING,
    ENTRA_CERTIFICATE_SETTING,
    ENTRA_CERTIFICATE_THUMBPRINT_SETTING,
    ENTRA_CLIENT_ID_SETTING,
    ENTRA_CLIENT_SECRET_SETTING,
    ENTRA_TENANT_ID_SETTING,
    GRAPH_API_BASE_SETTING,
    DeltaResyncRequired,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    IncompleteRead,
    RemoteError,
    TransportFailed,
)
from shared.http import (
    CallContext,
    HttpCaller,
    MembershipChange,
    Pacer,
    RequestLog,
    RetryPolicy,
    iter_pages,
    make_async_client,
    parse_retry_after,
)

__all__ = [
    "MAX_BATCH_REQUESTS",
    "MAX_DELTA_GROUP_IDS",
    "EntraUser",
    "GraphClient",
    "GraphCredentials",
    "GroupDelta",
    "Subscription",
    "TokenProvider",
    "TokenSource",
    "clear_token_cache",
    "graph_error",
    "map_graph_error",
    "token_provider",
]

# https://learn.microsoft.com/graph/json-batching: at most 20 requests per $batch.
MAX_BATCH_REQUESTS = 20
# https://learn.microsoft.com/graph/api/group-delta: `$filter=id eq … or …`, at most 50 ids.
MAX_DELTA_GROUP_IDS = 50
# https://learn.microsoft.com/graph/api/resources/subscription: clientState ≤ 128 characters.
MAX_CLIENT_STATE = 128

# Endpoint classes (pacing and the request log).
READ = "graph.read"
DELTA = "graph.delta"
MEMBERSHIP = "graph.membership"
BATCH = "graph.batch"
SUBSCRIPTIONS = "graph.subscriptions"
MAIL = "graph.mail"

# The application permission each call needs
# (https://learn.microsoft.com/graph/permissions-reference), for 403 messages.
_READ_MEMBERS = "GroupMember.Read.All"
_WRITE_MEMBERS = "GroupMember.ReadWrite.All"
_SUBSCRIBE_GROUPS = "Group.Read.All (subscriptions on groups)"
_SEND_MAIL = "Mail.Send"

_USER_TYPE = "#microsoft.graph.user"
_RESYNC_CODES = frozenset({"syncStateNotFound", "resyncRequired"})

TokenSource = Callable[[str], Awaitable[str]]


# --- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphCredentials:
    """An Entra app registration's identity: a client secret, or a certificate.

    The certificate form is the PEM private key plus the certificate's SHA-1 thumbprint
    (hex), as msal takes it. Secrets are kept out of ``repr``.
    """

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_pem: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError(f"{ENTRA_TENANT_ID_SETTING} is empty: set it to the Entra tenant id")
        if not self.client_id:
            raise ValueError(
                f"{ENTRA_CLIENT_ID_SETTING} is empty: set it to the app registration's client id"
            )
        has_secret = bool(self.client_secret)
        has_cert = bool(self.certificate_pem) or bool(self.certificate_thumbprint)
        if has_secret == has_cert:
            raise ValueError(
                f"Set either {ENTRA_CLIENT_SECRET_SETTING} or {ENTRA_CERTIFICATE_SETTING} with "
                f"{ENTRA_CERTIFICATE_THUMBPRINT_SETTING}, not both and not neither"
            )
        if has_cert and not (self.certificate_pem and self.certificate_thumbprint):
            raise ValueError(
                f"A certificate credential needs both {ENTRA_CERTIFICATE_SETTING} (PEM private key) "
                f"and {ENTRA_CERTIFICATE_THUMBPRINT_SETTING}"
            )

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_secret, self.certificate_pem) if s)

    def msal_credential(self) -> str | dict[str, str]:
        if self.client_secret:
            return self.client_secret
        assert self.certificate_pem and self.certificate_thumbprint
        return {"private_key": self.certificate_pem, "thumbprint": self.certificate_thumbprint}

    def fingerprint(self) -> str:
        """A digest of the credential, so a rotated secret gets a fresh msal app."""
        material = self.client_secret or f"{self.certificate_thumbprint}:{self.certificate_pem}"
        return hashlib.sha256(material.encode()).hexdigest()


# One msal app per (authority, client, credential, TLS trust) per process: msal keeps its
# token cache in the app, so a fresh app per call would fetch a new token per call.
_APPS: dict[tuple[str, str, str, str], Any] = {}
_APPS_LOCK = threading.Lock()

AppFactory = Callable[..., Any]


def clear_token_cache() -> None:
    """Forget every msal app (and its cached tokens). For tests and credential rotation."""
    with _APPS_LOCK:
        _APPS.clear()


def _authority(authority_host: str, tenant_id: str) -> tuple[str, str]:
    """``https://{host}/{tenant}`` and the bare host name, or ``GraphAuthError``."""
    raw = authority_host.strip().rstrip("/")
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme != "https" or not parts.hostname:
        raise GraphAuthError(
            f"{ENTRA_AUTHORITY_HOST_SETTING} must be an https URL or host name (msal accepts only "
            f"https authorities); got {authority_host!r}"
        )
    return f"https://{parts.netloc}{parts.path}/{quote(tenant_id, safe='')}", parts.hostname


# AADSTS codes an operator can act on (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_AADSTS_FIXES: Mapping[int, str] = {
    7000215: f"the client secret is wrong: check {ENTRA_CLIENT_SECRET_SETTING}",
    7000222: f"the client secret has expired: create a new one and set {ENTRA_CLIENT_SECRET_SETTING}",
    700016: (
        f"no such application in this tenant: check {ENTRA_CLIENT_ID_SETTING} and {ENTRA_TENANT_ID_SETTING}"
    ),
    90002: f"no such tenant: check {ENTRA_TENANT_ID_SETTING}",
    900023: f"the tenant id is malformed: check {ENTRA_TENANT_ID_SETTING}",
    700027: (
        f"the certificate signature was not accepted: check {ENTRA_CERTIFICATE_SETTING} and "
        f"{ENTRA_CERTIFICATE_THUMBPRINT_SETTING} match a certificate uploaded to the app registration"
    ),
    700024: "the client assertion is not within its valid time range: check the host clock",
    500011: f"Graph is not known to this tenant under that name: check {GRAPH_API_BASE_SETTING}",
    7000112: f"the application is disabled: re-enable the app registration ({ENTRA_CLIENT_ID_SETTING})",
}


class TokenProvider:
    """App-only tokens from Entra through msal; ``await provider(scope)`` returns a bearer token.

    msal is synchronous (``requests``), so each call runs in a worker thread. Its own
    cache answers repeat calls until the token nears expiry
    (msal ``acquire_token_for_client`` reads the cache first since 1.23).
    """

    def __init__(
        self,
        authority_host: str,
        creds: GraphCredentials,
        verify: bool | str = True,
        *,
        app_factory: AppFactory | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.authority, host = _authority(authority_host, creds.tenant_id)
        self.creds = creds
        self.verify = verify
        self._app_factory = app_factory
        self._timeout = timeout
        # msal does instance discovery against login.microsoftonline.com for a host it does
        # not know; a stand-in (the sandbox) or a private authority must skip it
        # (msal 1.39 ClientApplication.__init__ `instance_discovery`, WIRE.md §11).
        self._instance_discovery = None if host in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS else False

    def __repr__(self) -> str:
        return f"TokenProvider(authority={self.authority!r}, client_id={self.creds.client_id!r})"

    def _app(self) -> Any:
        key = (self.authority, self.creds.client_id, self.creds.fingerprint(), str(self.verify))
        with _APPS_LOCK:
            app = _APPS.get(key)
            if app is None:
                factory = self._app_factory or msal.ConfidentialClientApplication
                extra: dict[str, Any] = {}
                if isinstance(self.verify, str):
                    extra["http_client"] = _pinned_session(self.verify)
                app = factory(
                    self.creds.client_id,
                    client_credential=self.creds.msal_credential(),
                    authority=self.authority,
                    verify=self.verify,
                    timeout=self._timeout,
                    instance_discovery=self._instance_discovery,
                    **extra,
                )
                _APPS[key] = app
            return app

    def _acquire(self, scope: str) -> str:
        secrets = self.creds.secrets
        token_url = f"{self.authority}/oauth2/v2.0/token"
        try:
            result = self._app().acquire_token_for_client(scopes=[scope])
        except requests.exceptions.SSLError as exc:
            raise TransportFailed(
                f"TLS to the Entra authority failed ({type(exc).__name__}); "
                f"for a private CA set {CA_BUNDLE_SETTING}",
                vendor="entra",
                method="POST",
                url=token_url,
                secrets=secrets,
                retryable=False,
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise TransportFailed(
                f"Entra token endpoint unreachable ({type(exc).__name__}); "
                f"check {ENTRA_AUTHORITY_HOST_SETTING}",
                vendor="entra",
                method="POST",
                url=token_url,
                secrets=secrets,
            ) from exc
        except msal.exceptions.MsalServiceError as exc:  # msal raises on 5xx
            raise TransportFailed(
                f"Entra token endpoint failed: {exc}",
                vendor="entra",
                method="POST",
                url=token_url,
                secrets=secrets,
            ) from exc
        except json.JSONDecodeError as exc:
            raise TransportFailed(
                "Entra token endpoint answered with a body that is not JSON",
                vendor="entra",
                method="POST",
                url=token_url,
                secrets=secrets,
            ) from exc
        except ValueError as exc:  # msal: authority metadata could not be fetched (4xx)
            raise GraphAuthError(
                f"Entra did not recognise the authority {self.authority} ({exc}); check "
                f"{ENTRA_TENANT_ID_SETTING} and {ENTRA_AUTHORITY_HOST_SETTING}",
                method="GET",
                url=f"{self.authority}/v2.0/.well-known/openid-configuration",
                secrets=secrets,
            ) from exc
        if isinstance(result, dict) and isinstance(result.get("access_token"), str):
            return str(result["access_token"])
        error = str(result.get("error") or "unknown_error") if isinstance(result, dict) else "unknown_error"
        codes = result.get("error_codes") if isinstance(result, dict) else None
        fix = next((_AADSTS_FIXES[c] for c in codes or () if c in _AADSTS_FIXES), None)
        if fix is None:
            fix = {
                "invalid_client": (
                    f"the client credentials were refused: check {ENTRA_CLIENT_ID_SETTING} and "
                    f"{ENTRA_CLIENT_SECRET_SETTING} (or {ENTRA_CERTIFICATE_SETTING})"
                ),
                "unauthorized_client": (
                    f"the application may not use this grant: check {ENTRA_CLIENT_ID_SETTING}"
                ),
                "invalid_scope": f"the Graph scope {scope!r} was refused: check {GRAPH_API_BASE_SETTING}",
                "invalid_request": f"check {ENTRA_TENANT_ID_SETTING} and {ENTRA_CLIENT_ID_SETTING}",
            }.get(
                error, f"check {ENTRA_TENANT_ID_SETTING}, {ENTRA_CLIENT_ID_SETTING} and the app's credential"
            )
        description = str(result.get("error_description") or "") if isinstance(result, dict) else ""
        first_line = description.splitlines()[0] if description else ""
        raise GraphAuthError(
            f"Entra refused a token for {scope}: {fix}"
            + (f" (Entra says {first_line!r})" if first_line else ""),
            method="POST",
            url=token_url,
            code=error,
            secrets=secrets,
        )

    async def __call__(self, scope: str) -> str:
        return await asyncio.to_thread(self._acquire, scope)


def _pinned_session(ca_bundle: str) -> Any:
    """A requests session that trusts exactly `ca_bundle`.

    msal talks through `requests`, which lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
    environment override a session's `verify` (Session.merge_environment_settings). With a
    private CA configured (SEATWARDEN_CA_BUNDLE), the environment must not win.
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle
    return session


def token_provider(
    authority_host: str,
    creds: GraphCredentials,
    verify: bool | str = True,
    *,
    app_factory: AppFactory | None = None,
) -> TokenProvider:
    """A ``TokenProvider`` for ``https://{authority_host}/{tenant}``; the msal app behind it is
    shared by every provider with the same authority, client and credential in this process.

    ``verify`` may be a CA bundle path (``SEATWARDEN_CA_BUNDLE``, the sandbox's certificate).
    """
    return TokenProvider(authority_host, creds, verify, app_factory=app_factory)


# --- wire models ---------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel, frozen=True)


class EntraUser(_Wire):
    """A user among a group's transitive members (``$select=id,userPrincipalName,mail,accountEnabled``)."""

    id: str
    user_principal_name: str | None = None
    mail: str | None = None
    account_enabled: bool | None = None


class Subscription(_Wire):
    """A Graph change-notification subscription (https://learn.microsoft.com/graph/api/resources/subscription)."""

    id: str
    resource: str | None = None
    change_type: str | None = None
    notification_url: str | None = None
    lifecycle_notification_url: str | None = None
    expiration_date_time: datetime | None = None
    client_state: str | None = None
    application_id: str | None = None
    creator_id: str | None = None


class _Collection(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    value: list[dict[str, Any]]
    next_link: str | None = Field(default=None, alias="@odata.nextLink")
    delta_link: str | None = Field(default=None, alias="@odata.deltaLink")


@dataclass
class GroupDelta:
    """What changed in a set of groups' direct members since the last delta link.

    On a first round (no delta link) ``added`` is each group's whole current membership.
    Only user members are in ``added``/``removed``; a group whose non-user members
    changed (a nested group joined or left) is in ``nested_changes``: re-read its
    transitive members. ``deleted_groups`` came back with ``@removed``. Store
    ``delta_link`` for the next round.
    """

    added: dict[str, set[str]]
    removed: dict[str, set[str]]
    delta_link: str
    deleted_groups: set[str] = field(default_factory=set)
    nested_changes: set[str] = field(default_factory=set)


# --- errors ---------------------------------------------------------------------------------


def _graph_error_facts(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code") if isinstance(err.get("code"), str) else None
        inner = err.get("innerError") or err.get("innererror")  # the service and the SDK spell it differently
        if (
            code in (None, "", "UnknownError")
            and isinstance(inner, dict)
            and isinstance(inner.get("code"), str)
        ):
            code = inner["code"]
        return code, str(err.get("message") or "")
    return None, ""


def graph_error(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    *,
    method: str,
    url: str,
    hint: str | None = None,
    secrets: Sequence[str] = (),
) -> GraphError:
    """The most specific ``GraphError`` for a failed Graph answer (a response or a ``$batch`` item)."""
    code, message = _graph_error_facts(body)
    says = f": Graph says {message!r}" if message else ""
    lower = {k.lower(): v for k, v in headers.items()}
    kw: dict[str, Any] = {"method": method, "url": url, "status": status, "code": code}
    if status == 410 or code in _RESYNC_CODES:
        return DeltaResyncRequired(
            f"The delta link is no longer valid{says}; discard it and start a full delta round",
            location=lower.get("location"),
            **kw,
        )
    if status == 429:
        return GraphThrottled(
            f"Graph throttling persisted{says}",
            retry_after=parse_retry_after(lower.get("retry-after"), time.time()),
            secrets=secrets,
            **kw,
        )
    if status == 401:
        return GraphAuthError(
            f"Graph did not accept the token{says}. Check {ENTRA_TENANT_ID_SETTING}, "
            f"{ENTRA_CLIENT_ID_SETTING} and that {GRAPH_API_BASE_SETTING} is the Graph "
            "the token was issued for",
            secrets=secrets,
            **kw,
        )
    if status == 403:
        needed = f" the application permission {hint}" if hint else " an application permission"
        return GraphAuthError(
            f"The app registration ({ENTRA_CLIENT_ID_SETTING}) lacks{needed}, or admin consent for it{says}. "
            "Grant it in Entra > App registrations > API permissions and grant admin consent",
            needed=hint,
            secrets=secrets,
            **kw,
        )
    if status == 404:
        return GraphNotFound(f"Not found{says}", secrets=secrets, **kw)
    return GraphError(f"Graph answered HTTP {status}{says}", secrets=secrets, **kw)


def map_graph_error(response: httpx.Response, ctx: CallContext) -> GraphError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return graph_error(
        response.status_code,
        response.headers,
        body,
        method=ctx.method,
        url=ctx.url,
        hint=ctx.hint,
        secrets=ctx.secrets,
    )


# --- helpers ----------------------------------------------------------------------------------


def _id(value: str, what: str) -> str:
    """An object id for a path or an OData filter: never a path separator or a quote."""
    if not value or value in {".", ".."} or any(c in value for c in "/?#'\"\\ "):
        raise ValueError(f"{what} {value!r} is not a valid Graph id")
    return quote(value, safe="-._~@")


def _member_ref_path(group_id: str, object_id: str) -> str:
    """``groups/{gid}/members/{oid}/$ref``: remove a membership. Without ``/$ref`` Graph
    deletes the directory object itself (WIRE.md §14), so this is the only builder."""
    return f"groups/{_id(group_id, 'group id')}/members/{_id(object_id, 'member id')}/$ref"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("expiration times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_collection(data: Any, what: str) -> _Collection:
    try:
        return _Collection.model_validate(data)
    except ValidationError as exc:
        raise IncompleteRead(what, "the page has no 'value' list") from exc


def _is_user(item: Mapping[str, Any]) -> bool:
    kind = item.get("@odata.type")
    if isinstance(kind, str):
        return kind.lower() == _USER_TYPE
    return "userPrincipalName" in item  # $select'ed user fields without a type annotation


# --- the client ---------------------------------------------------------------------------------


class GraphClient:
    """Async Microsoft Graph client.

    ``graph_base`` is ``https://graph.microsoft.com/v1.0`` for the real service, the
    sandbox's otherwise; the token scope is ``{scheme}://{host}/.default`` of that base.
    Links Graph returns (``@odata.nextLink``, ``@odata.deltaLink``) are followed verbatim,
    but only on that origin: the bearer token is not sent anywhere else.
    """

    def __init__(
        self,
        graph_base: str,
        token_provider: TokenSource,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        log: RequestLog | None = None,
        verify: bool | str = True,
    ) -> None:
        parts = urlsplit(graph_base.strip())
        if parts.scheme not in {"https", "http"} or not parts.netloc:
            raise ValueError(
                f"{GRAPH_API_BASE_SETTING} must be a URL such as https://graph.microsoft.com/v1.0; "
                f"got {graph_base!r}"
            )
        self.graph_base = graph_base.strip().rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.scope = f"{self.origin}/.default"
        self._token_provider = token_provider
        self.retry = retry or RetryPolicy()
        self._owns_client = client is None
        self._client = client or make_async_client(
            self.graph_base + "/",
            transport=transport,
            verify=verify,
            timeout=self.retry.timeout,
            headers={"Accept": "application/json"},
        )
        self._caller = HttpCaller(
            self._client,
            vendor="graph",
            map_error=map_graph_error,
            retry=self.retry,
            pacer=pacer,
            log=log,
            auth=self._auth_headers,
        )

    def __repr__(self) -> str:
        return f"GraphClient(graph_base={self.graph_base!r})"

    async def _auth_headers(self) -> dict[str, str]:
        token = await self._token_provider(self.scope)
        self._caller.add_secret(token)  # tokens need not look like JWTs (the sandbox's do not)
        return {"Authorization": f"Bearer {token}"}

    @property
    def request_log(self) -> RequestLog:
        return self._caller.log

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _url(self, path: str) -> str:
        return f"{self.graph_base}/{path}"

    def _own_link(self, link: str, what: str) -> str:
        if not (link == self.origin or link.startswith(self.origin + "/")):
            raise IncompleteRead(
                what, "Graph returned a link to another origin; not following it with our token"
            )
        return link

    # --- reads ---

    async def transitive_members(self, group_id: str) -> list[EntraUser]:
        """Every user in the group, directly or through nested groups (all pages).

        Non-user members (groups, devices, service principals) are skipped. A page that
        fails after retries raises ``IncompleteRead``
        (https://learn.microsoft.com/graph/api/group-list-transitivemembers).
        """
        what = f"Graph transitive members of {group_id}"
        first = self._url(
            f"groups/{_id(group_id, 'group id')}/transitiveMembers"
            "?$select=id,userPrincipalName,mail,accountEnabled&$top=999"
        )

        async def fetch(link: str | None) -> tuple[list[dict[str, Any]], str | None]:
            url = first if link is None else self._own_link(link, what)
            data = await self._caller.send_json(
                "GET", url, what=what, endpoint_class=READ, hint=_READ_MEMBERS
            )
            page = _parse_collection(data, what)
            return page.value, page.next_link

        users: dict[str, EntraUser] = {}
        async for items in iter_pages(fetch, what=what):
            for item in items:
                if not _is_user(item):
                    continue
                try:
                    user = EntraUser.model_validate(item)
                except ValidationError as exc:
                    raise IncompleteRead(what, "a member without an id") from exc
                users[user.id] = user
        return list(users.values())

    async def count_transitive_members(self, group_id: str) -> int:
        """How many users are in the group, directly or nested: one call, no paging.

        ``GET /groups/{id}/transitiveMembers/microsoft.graph.user?$count=true`` with
        ``ConsistencyLevel: eventual`` (an OData cast needs both) reads ``@odata.count``;
        the count comes from an index that may lag recent changes slightly
        (https://learn.microsoft.com/graph/api/group-list-transitivemembers).
        """
        what = f"Graph transitive member count of {group_id}"
        data = await self._caller.send_json(
            "GET",
            self._url(
                f"groups/{_id(group_id, 'group id')}/transitiveMembers/microsoft.graph.user"
                "?$count=true&$top=1&$select=id"
            ),
            what=what,
            endpoint_class=READ,
            headers={"ConsistencyLevel": "eventual"},
            hint=_READ_MEMBERS,
        )
        count = data.get("@odata.count") if isinstance(data, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            raise IncompleteRead(what, "the answer has no @odata.count")
        return count

    async def authenticate(self) -> None:
        """Get a token now (msal caches it), so a credential problem shows before any call."""
        await self._auth_headers()

    async def get_user(self, object_id: str) -> EntraUser | None:
        """One user by object id (``GET /users/{id}``), or None if Entra has no such user.

        A delta names only object ids; this is how a member Seatwarden has not seen yet is
        matched to an Atlassian account by email (https://learn.microsoft.com/graph/api/user-get).
        """
        what = f"Graph user {object_id}"
        try:
            data = await self._caller.send_json(
                "GET",
                self._url(
                    f"users/{_id(object_id, 'user id')}?$select=id,userPrincipalName,mail,accountEnabled"
                ),
                what=what,
                endpoint_class=READ,
                hint="User.ReadBasic.All",
            )
        except GraphNotFound:
            return None
        try:
            return EntraUser.model_validate(data)
        except ValidationError as exc:
            raise IncompleteRead(what, "the user came back without an id") from exc

    async def group_delta(self, group_ids: Iterable[str], delta_link: str | None = None) -> GroupDelta:
        """Changes to the direct members of up to 50 groups since ``delta_link`` (or all of them).

        ``/groups/delta?$select=members&$filter=id eq '…' or …``; every page is merged by
        group id, later pages winning, so replays and groups repeated across pages are
        harmless (https://learn.microsoft.com/graph/delta-query-groups). A 410 or
        ``syncStateNotFound``/``resyncRequired`` raises ``DeltaResyncRequired``; any other
        failing page raises ``IncompleteRead`` and the stored link stays as it was.
        Callers with more than 50 groups call once per chunk and keep one link per chunk.
        """
        ids = list(dict.fromkeys(group_ids))
        if len(ids) > MAX_DELTA_GROUP_IDS:
            raise ValueError(
                f"group_delta takes at most {MAX_DELTA_GROUP_IDS} group ids per query; got {len(ids)}"
            )
        if not ids and delta_link is None:
            raise ValueError("group_delta needs group ids or a delta link")
        what = "Graph group delta"
        if delta_link is None:
            odata_filter = " or ".join(f"id eq '{_id(g, 'group id')}'" for g in ids)
            first = self._url(f"groups/delta?$select=members&$filter={quote(odata_filter, safe=chr(39))}")
        else:
            first = self._own_link(delta_link, what)
        wanted = set(ids)
        added: dict[str, set[str]] = {g: set() for g in ids}
        removed: dict[str, set[str]] = {g: set() for g in ids}
        deleted: set[str] = set()
        nested: set[str] = set()
        final_link: list[str] = []

        async def fetch(link: str | None) -> tuple[list[dict[str, Any]], str | None]:
            url = first if link is None else self._own_link(link, what)
            data = await self._caller.send_json(
                "GET", url, what=what, endpoint_class=DELTA, hint=_READ_MEMBERS
            )
            page = _parse_collection(data, what)
            if page.next_link is None:
                if page.delta_link is None:
                    raise IncompleteRead(
                        what, "the last page has neither @odata.nextLink nor @odata.deltaLink"
                    )
                final_link.append(self._own_link(page.delta_link, what))
            return page.value, page.next_link

        async for groups in iter_pages(fetch, what=what, start=delta_link):
            for group in groups:
                gid = group.get("id")
                if not isinstance(gid, str) or (wanted and gid not in wanted):
                    continue
                if "@removed" in group:
                    deleted.add(gid)
                for member in group.get("members@delta") or ():
                    oid = member.get("id") if isinstance(member, dict) else None
                    if not isinstance(oid, str):
                        raise IncompleteRead(what, f"a members@delta entry of group {gid} has no id")
                    if not _is_user(member) and "@odata.type" in member:
                        nested.add(gid)
                        continue
                    if "@removed" in member:
                        removed.setdefault(gid, set()).add(oid)
                        added.setdefault(gid, set()).discard(oid)
                    else:
                        added.setdefault(gid, set()).add(oid)
                        removed.setdefault(gid, set()).discard(oid)
        return GroupDelta(
            added=added,
            removed=removed,
            delta_link=final_link[-1],
            deleted_groups=deleted,
            nested_changes=nested,
        )

    # --- membership writes ---

    async def remove_member(self, group_id: str, object_id: str) -> MembershipChange:
        """Remove a member: ``DELETE /groups/{gid}/members/{oid}/$ref``.

        404 ``Request_ResourceNotFound`` counts as "already not a member" unless Graph's
        message names the group (the group itself is missing: a wrong id must surface)
        (https://learn.microsoft.com/graph/api/group-delete-members).
        """
        try:
            await self._caller.send(
                "DELETE",
                self._url(_member_ref_path(group_id, object_id)),
                endpoint_class=MEMBERSHIP,
                hint=_WRITE_MEMBERS,
            )
        except GraphNotFound as exc:
            if _names_group(exc.detail, group_id, object_id):
                raise
            return MembershipChange.ALREADY_DONE
        return MembershipChange.APPLIED

    async def add_member(self, group_id: str, object_id: str) -> MembershipChange:
        """Add a member: ``POST /groups/{gid}/members/$ref``. Graph answers 400 "One or more
        added object references already exist" for a member; that counts as done
        (https://learn.microsoft.com/graph/api/group-post-members)."""
        body = {"@odata.id": f"{self.graph_base}/directoryObjects/{_id(object_id, 'member id')}"}
        try:
            await self._caller.send(
                "POST",
                self._url(f"groups/{_id(group_id, 'group id')}/members/$ref"),
                endpoint_class=MEMBERSHIP,
                idempotent=True,
                json=body,
                hint=_WRITE_MEMBERS,
            )
        except GraphError as exc:
            if exc.status == 400 and "already exist" in exc.detail.lower():
                return MembershipChange.ALREADY_DONE
            raise
        return MembershipChange.APPLIED

    async def batch_remove_members(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], MembershipChange | RemoteError]:
        """Remove many memberships through ``$batch``, 20 per request.

        Items are correlated by ``id`` (responses come in any order). Only the items that
        got 429 (or a transient 5xx) are sent again, after the longest ``Retry-After``
        among them, for at most ``retry.max_tries`` rounds. Each pair maps to its outcome:
        a ``MembershipChange`` or the error that ended it; nothing is raised for one item
        (https://learn.microsoft.com/graph/json-batching). A ``GraphAuthError`` on the batch
        request itself is raised: no item can succeed.
        """
        pending = list(dict.fromkeys(pairs))
        for gid, oid in pending:
            _member_ref_path(gid, oid)  # validate every id before sending anything
        results: dict[tuple[str, str], MembershipChange | RemoteError] = {}
        url = self._url("$batch")
        rounds = 0
        while pending:
            rounds += 1
            again: list[tuple[str, str]] = []
            waits: list[float] = []
            for start in range(0, len(pending), MAX_BATCH_REQUESTS):
                chunk = pending[start : start + MAX_BATCH_REQUESTS]
                requests_ = [
                    {"id": str(i), "method": "DELETE", "url": "/" + _member_ref_path(g, o)}
                    for i, (g, o) in enumerate(chunk, start=1)
                ]
                try:
                    data = await self._caller.send_json(
                        "POST",
                        url,
                        what="Graph $batch",
                        endpoint_class=BATCH,
                        idempotent=True,
                        json={"requests": requests_},
                        hint=_WRITE_MEMBERS,
                    )
                except GraphAuthError:
                    raise
                except (RemoteError, IncompleteRead) as exc:
                    error = (
                        exc if isinstance(exc, RemoteError) else GraphError(str(exc), method="POST", url=url)
                    )
                    results.update({pair: error for pair in chunk})
                    continue
                by_id = _batch_responses(data)
                for i, pair in enumerate(chunk, start=1):
                    item = by_id.get(str(i))
                    if item is None:  # no answer for this item: unknown, so try it again
                        again.append(pair)
                        waits.append(self.retry.backoff(rounds))
                        continue
                    status, headers, body = item
                    if 200 <= status < 300:
                        results[pair] = MembershipChange.APPLIED
                        continue
                    error = graph_error(
                        status,
                        headers,
                        body,
                        method="DELETE",
                        url=self._url(_member_ref_path(*pair)),
                        hint=_WRITE_MEMBERS,
                    )
                    if isinstance(error, GraphNotFound) and not _names_group(error.detail, *pair):
                        results[pair] = MembershipChange.ALREADY_DONE
                    elif status == 429 or status in {500, 502, 503, 504}:
                        lower = {k.lower(): v for k, v in headers.items()}
                        wait = parse_retry_after(lower.get("retry-after"), time.time())
                        waits.append(self.retry.backoff(rounds) if wait is None else wait)
                        again.append(pair)
                        results[pair] = error  # stays if we give up
                    else:
                        results[pair] = error
            if not again:
                break
            wait = max(waits)
            if rounds >= self.retry.max_tries or wait > self.retry.max_retry_after:
                for pair in again:
                    result = results.get(pair)
                    if isinstance(result, RemoteError):
                        result.retry_after = wait
                    else:
                        results[pair] = GraphThrottled(
                            "no answer for this $batch item",
                            method="DELETE",
                            url=self._url(_member_ref_path(*pair)),
                            retry_after=wait,
                        )
                break
            await self.retry.sleep(wait)
            pending = again
        return results

    # --- subscriptions ---

    async def create_subscription(
        self,
        resource: str,
        notification_url: str,
        lifecycle_url: str,
        client_state: str,
        expires: datetime,
        *,
        change_type: str = "updated,deleted",
    ) -> Subscription:
        """Create a change-notification subscription. Graph validates both URLs before
        answering 201, so the function app must be reachable. Not retried after a timeout:
        a repeat could create a duplicate (the subscription keeper lists and reconciles)."""
        if len(client_state) > MAX_CLIENT_STATE:
            raise ValueError(f"clientState is limited to {MAX_CLIENT_STATE} characters")
        body = {
            "changeType": change_type,
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "resource": resource,
            "expirationDateTime": _iso(expires),
            "clientState": client_state,
        }
        data = await self._caller.send_json(
            "POST",
            self._url("subscriptions"),
            what="Graph subscription",
            endpoint_class=SUBSCRIPTIONS,
            idempotent=False,
            json=body,
            hint=_SUBSCRIBE_GROUPS,
        )
        return self._subscription(data)

    async def renew_subscription(self, subscription_id: str, expires: datetime) -> Subscription:
        data = await self._caller.send_json(
            "PATCH",
            self._url(f"subscriptions/{_id(subscription_id, 'subscription id')}"),
            what="Graph subscription",
            endpoint_class=SUBSCRIPTIONS,
            idempotent=True,
            json={"expirationDateTime": _iso(expires)},
            hint=_SUBSCRIBE_GROUPS,
        )
        return self._subscription(data)

    async def reauthorize_subscription(self, subscription_id: str) -> None:
        """Answer a ``reauthorizationRequired`` lifecycle event (204, no body)."""
        await self._caller.send(
            "POST",
            self._url(f"subscriptions/{_id(subscription_id, 'subscription id')}/reauthorize"),
            endpoint_class=SUBSCRIPTIONS,
            idempotent=True,
            hint=_SUBSCRIBE_GROUPS,
        )

    async def delete_subscription(self, subscription_id: str) -> bool:
        """Delete a subscription; ``False`` if it was already gone."""
        try:
            await self._caller.send(
                "DELETE",
                self._url(f"subscriptions/{_id(subscription_id, 'subscription id')}"),
                endpoint_class=SUBSCRIPTIONS,
                hint=_SUBSCRIBE_GROUPS,
            )
        except GraphNotFound:
            return False
        return True

    async def list_subscriptions(self) -> list[Subscription]:
        what = "Graph subscriptions"
        first = self._url("subscriptions")

        async def fetch(link: str | None) -> tuple[list[dict[str, Any]], str | None]:
            url = first if link is None else self._own_link(link, what)
            data = await self._caller.send_json(
                "GET", url, what=what, endpoint_class=SUBSCRIPTIONS, hint=_SUBSCRIBE_GROUPS
            )
            page = _parse_collection(data, what)
            return page.value, page.next_link

        subscriptions: list[Subscription] = []
        async for items in iter_pages(fetch, what=what):
            subscriptions.extend(self._subscription(item) for item in items)
        return subscriptions

    def _subscription(self, data: Any) -> Subscription:
        try:
            return Subscription.model_validate(data)
        except ValidationError as exc:
            raise IncompleteRead("Graph subscription", "the answer has no subscription id") from exc

    # --- mail ---

    async def send_mail(
        self,
        sender: str,
        to: Sequence[str] | str,
        subject: str,
        body: str,
        *,
        content_type: str = "Text",
        save_to_sent_items: bool = False,
    ) -> None:
        """Send a mail as ``sender`` (a mailbox id or address): ``POST /users/{sender}/sendMail``.

        202 means queued, not delivered. Not retried after a timeout: a repeat could send
        the mail twice (https://learn.microsoft.com/graph/api/user-sendmail).
        """
        recipients = [to] if isinstance(to, str) else list(to)
        if not recipients:
            raise ValueError("send_mail needs at least one recipient")
        message = {
            "message": {
                "subject": subject,
                "body": {"contentType": content_type, "content": body},
                "toRecipients": [{"emailAddress": {"address": a}} for a in recipients],
            },
            "saveToSentItems": save_to_sent_items,
        }
        await self._caller.send(
            "POST",
            self._url(f"users/{_id(sender, 'sender')}/sendMail"),
            endpoint_class=MAIL,
            idempotent=False,
            json=message,
            hint=_SEND_MAIL,
        )


def _names_group(detail: str, group_id: str, object_id: str) -> bool:
    """Does a ``Request_ResourceNotFound`` message name the group (and not the member)?"""
    text = detail.lower()
    return group_id.lower() in text and object_id.lower() not in text


def _batch_responses(data: Any) -> dict[str, tuple[int, dict[str, str], Any]]:
    """``$batch`` answers by request id; malformed items are left out (and so retried)."""
    out: dict[str, tuple[int, dict[str, str], Any]] = {}
    responses = data.get("responses") if isinstance(data, dict) else None
    for item in responses if isinstance(responses, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("status"), int):
            continue
        raw_headers = item.get("headers")
        headers: dict[str, Any] = raw_headers if isinstance(raw_headers, dict) else {}
        out[str(item.get("id"))] = (
            item["status"],
            {str(k): str(v) for k, v in headers.items()},
            item.get("body"),
        )
    return out
