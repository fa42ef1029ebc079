"""The Atlassian Organizations API client: users, groups, memberships, activity, org events.

Only the calls Seatwarden needs, on the endpoints that outlive the v1 sunset of
30 June 2026 and the v2 ``GET`` list sunset of 30 June 2027: the v2 ``search`` POSTs for
reads, v2 memberships and suspend/restore for writes, and v1 ``last-active-dates`` and
``events-stream`` (not on the sunset list). Wire formats: WIRE.md §§2-7, and
https://developer.atlassian.com/cloud/admin/organization/rest/.

Reads are strict about what matters and lenient about the rest: a page without ``data``,
or a timestamp that does not parse, ends the read with ``IncompleteRead`` (an unreadable
"last active" must never become "never active"), while unknown fields are ignored and
fields WIRE.md marks UNCONFIRMED are optional. A list field that was not returned is
``None``, not ``[]``: "not expanded" is not "has none".
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from shared.errors import (
    ATLASSIAN_API_KEY_SETTING,
    ATLASSIAN_DIRECTORY_ID_SETTING,
    ATLASSIAN_ORG_ID_SETTING,
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
from shared.http import (
    CallContext,
    HttpCaller,
    MembershipChange,
    Pacer,
    RequestLog,
    RetryPolicy,
    iter_pages,
    make_async_client,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_USER_EXPAND",
    "AtlassianClient",
    "AtlassianGroup",
    "AtlassianUser",
    "EventAction",
    "GroupCounts",
    "GroupRef",
    "LastActive",
    "OrgEvent",
    "ProductAccess",
    "map_atlassian_error",
]

DEFAULT_BASE_URL = "https://api.atlassian.com/admin"
DEFAULT_USER_EXPAND = ("productAccess", "groups", "platformRoles")

# Endpoint classes: the unit of pacing (shared.http.Pacer) and of the request log.
USERS_SEARCH = "atlassian.users_search"
GROUPS_SEARCH = "atlassian.groups_search"
MEMBERSHIP = "atlassian.membership"
USER_LIFECYCLE = "atlassian.user_lifecycle"
LAST_ACTIVE = "atlassian.last_active"
EVENTS = "atlassian.events"
EVENT_ACTIONS = "atlassian.event_actions"

# What an API key "with scopes" needs per call (https://developer.atlassian.com/cloud/admin/scopes/).
# Atlassian documents read:directories:admin for the v2 directory reads (JJS
# src/admin/api/users.ts) and read:events:admin for events; it documents no scope for
# the v2 writes or for last-active-dates, so those messages say "a key without scopes".
_READ_SCOPE = "read:directories:admin"
_WRITE_SCOPE = "a key without scopes (Atlassian documents no scope for this write)"
_LAST_ACTIVE_SCOPE = "read:directories:admin, or a key without scopes"
_EVENTS_SCOPE = "read:events:admin, or a key without scopes"

# Seat exhaustion, WIRE.md §10: the org API's codes, and the substring the admin hub and
# Jira use ("licenceExceeded", "LicenceExceededException").
_SEAT_CODES = frozenset({"ADMIN-409-3", "ADMIN-UAM-409-3", "ADMIN-400-32"})
_SEAT_MARKERS = ("licenceexceeded", "licenseexceeded")
# A 404 with one of these codes names the org or the group, not the member: the call was
# wrong, so a remove must not count it as "already not a member".
_ORG_OR_GROUP_NOT_FOUND = frozenset({"ADMIN-404-2", "ADMIN-404-10", "ADMIN-UAM-404-3"})
# ADMIN-403-5 is the generated clients' "group" 403 (WIRE.md §6); with the words Atlassian
# uses in its docs ("You can't add a user to a group synced from an identity provider",
# JJS src/admin/api/groups.ts) it is how an IdP-synced group refuses a change. UNCONFIRMED.
_SYNCED_CODES = frozenset({"ADMIN-403-5"})
_SYNCED_MARKERS = ("synced", "identity provider", "externally managed", "scim", "managed by external")
# Words of a refusal of the "-" (all directories) selector. UNCONFIRMED: Atlassian says
# orgs on the original experience "can use the Get directories API to specify which
# directory" (https://community.atlassian.com/forums/Enterprise-articles/New-Organization-APIs-to-power-admin-automation/ba-p/3151762)
# but documents no error for not doing so.
_DIRECTORY_MARKERS = (
    "user management experience",
    "centralized",
    "centralised",
    "directoryid",
    "directory id",
    "multiple directories",
    "specify a directory",
)


# --- wire models ---------------------------------------------------------------------------


def _instant(value: Any) -> Any:
    """Read an Atlassian timestamp leniently in form, strictly in meaning.

    ISO 8601 with or without time ("2024-01-01" means midnight UTC) and naive values
    (Atlassian documents UTC) are accepted; text that is not a timestamp raises, so the
    read stops instead of guessing.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {type(value).__name__}")


Instant = Annotated[datetime | None, BeforeValidator(_instant)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel, frozen=True)


class ProductAccess(_Wire):
    """A product the user can use, with the last time they used it in this directory."""

    key: str
    id: str | None = None
    last_active_timestamp: Instant = None


class GroupRef(_Wire):
    id: str
    name: str | None = None


class AtlassianUser(_Wire):
    """A user from the v2 users search (WIRE.md §2).

    ``platform_roles``, ``product_access`` and ``groups`` are ``None`` when the search
    did not return them (not expanded), and a list (maybe empty) when it did.
    """

    account_id: str
    account_type: str | None = None
    email: str | None = None
    name: str | None = None
    status: str | None = None
    account_status: str | None = None
    membership_status: str | None = None
    claim_status: str | None = None
    management_source: str | None = None
    added_to_org: Instant = None
    platform_roles: list[str] | None = None
    product_access: list[ProductAccess] | None = None
    groups: list[GroupRef] | None = None

    @property
    def group_ids(self) -> frozenset[str] | None:
        return None if self.groups is None else frozenset(g.id for g in self.groups)


class GroupCounts(_Wire):
    users: int | None = None
    resources: int | None = None


class AtlassianGroup(_Wire):
    """A group from the v2 groups search (WIRE.md §4)."""

    id: str
    name: str
    description: str | None = None
    directory_id: str | None = None
    external_synced: bool | None = None
    managed_by: str | None = None
    counts: GroupCounts | None = None

    @property
    def is_synced(self) -> bool:
        """True for a group synced from an identity provider: its members change in the IdP."""
        return bool(self.external_synced) or self.managed_by == "external"


class _Links(_Wire):
    next: str | None = None


class _PageLinks(_Wire):
    links: _Links | None = None


class _UserPage(_Wire):
    data: list[AtlassianUser]
    links: _Links | None = None


class _GroupPage(_Wire):
    data: list[AtlassianGroup]
    links: _Links | None = None


class EventActor(_Wire):
    id: str | None = None
    name: str | None = None
    email: str | None = None


class EventObject(_Wire):
    """An entry of an event's ``context`` or ``container``: what the event was about."""

    id: str
    type: str | None = None
    attributes: dict[str, Any] = {}


class EventAttributes(_Wire):
    action: str
    time: Instant = None
    processed_at: Instant = None
    actor: EventActor | None = None
    context: list[EventObject] = []
    container: list[EventObject] = []
    location: dict[str, Any] | None = None


class EventMessage(_Wire):
    content: str | None = None
    format: str | None = None


class OrgEvent(_Wire):
    """An org audit-log event (WIRE.md §7). ``message`` is a sibling of ``attributes``."""

    id: str
    type: str | None = None
    attributes: EventAttributes
    message: EventMessage | None = None

    @property
    def action(self) -> str:
        return self.attributes.action

    @property
    def time(self) -> datetime | None:
        return self.attributes.time

    @property
    def actor_id(self) -> str | None:
        return self.attributes.actor.id if self.attributes.actor else None


class _EventMeta(_Wire):
    next: str | None = None


class _EventPage(_Wire):
    data: list[OrgEvent]
    meta: _EventMeta | None = None
    links: _Links | None = None


class _EventActionAttributes(_Wire):
    display_name: str | None = None
    group_display_name: str | None = None


class EventAction(_Wire):
    """One key of ``/event-actions``: match return events on ``display_name`` (WIRE.md §7)."""

    id: str
    type: str | None = None
    attributes: _EventActionAttributes = _EventActionAttributes()

    @property
    def display_name(self) -> str | None:
        return self.attributes.display_name


class _EventActionPage(_Wire):
    data: list[EventAction]
    links: _Links | None = None


class _SnakeWire(BaseModel):
    """v1 last-active-dates speaks snake_case."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _ProductLastActiveWire(_SnakeWire):
    key: str
    id: str | None = None
    last_active: Instant = None
    last_active_timestamp: Instant = None


class _LastActiveData(_SnakeWire):
    product_access: list[_ProductLastActiveWire]
    added_to_org: Instant = None
    added_to_org_timestamp: Instant = None


class _LastActivePage(_SnakeWire):
    data: _LastActiveData
    links: _Links | None = None


@dataclass(frozen=True)
class ProductLastActive:
    key: str
    instance_id: str | None
    last_active: datetime | None


@dataclass(frozen=True)
class LastActive:
    """A user's last activity per product key (the latest over the product's instances).

    A product key missing from ``products`` means Atlassian reports no use of it (the
    API returns an empty ``product_access`` for a user who never used a product). The
    data lags up to 24 hours (https://developer.atlassian.com/cloud/admin/organization/user-last-active-dates/).
    """

    account_id: str
    products: dict[str, datetime | None]
    added_to_org: datetime | None
    entries: tuple[ProductLastActive, ...]


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise IncompleteRead(what, f"unexpected response shape: {_problems(exc)}") from exc


def _parse_bytes(model: type[M], content: bytes, what: str) -> M:
    """``_parse`` straight from a body's bytes: pydantic reads the JSON itself, which for a
    users page (160 KB) is half the CPU of ``json.loads`` and a model built from the dicts."""
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        raise IncompleteRead(what, f"unexpected response shape: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)[:3]
    )


def _page_cursor(content: bytes) -> tuple[bytes, str | None]:
    """A page's bytes and its ``links.next``, for ``send_json(decode=...)``: only the link is
    read (the users are read later, while the next page is out). Bytes that are not JSON
    raise ``ValueError``, so the page is asked for again; JSON of the wrong shape gives no
    cursor, and reading the page itself then says what is wrong with it."""
    try:
        links = _PageLinks.model_validate_json(content).links
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
            raise ValueError(f"not JSON: {_problems(exc)}") from exc
        return content, None
    return content, links.next if links else None


def _segment(value: str, what: str) -> str:
    """One URL path segment, checked: an id must never change the path's shape."""
    if not value or value in {".", ".."} or "/" in value or "?" in value or "#" in value:
        raise ValueError(f"{what} {value!r} is not a valid id")
    return quote(value, safe=":@-._~")


def _cursor_from(link: str | None) -> str | None:
    """A bare cursor from a ``links.next`` that is either a cursor or a URL with ``cursor=``."""
    if not link:
        return None
    if "://" not in link and not link.startswith("/"):
        return link
    values = parse_qs(urlsplit(link).query).get("cursor")
    return values[0] if values else None


# --- errors ---------------------------------------------------------------------------------


def _error_facts(response: httpx.Response) -> tuple[str | None, str]:
    """The vendor's error code and a readable description, from any Atlassian error shape.

    Shapes seen: ``{"errors":[{code,title,detail}]}`` (org API), ``{"code","message"}``,
    ``{"key","context":{"message"}}`` (admin hub), ``{"errorMessages":[…]}`` (Jira), and
    Spring's ``{"status","error","message"}`` (gateway 403s).
    """
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:300]
    code: str | None = None
    texts: list[str] = []
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            for err in errors:
                if isinstance(err, dict):
                    code = code or (str(err["code"]) if err.get("code") else None)
                    texts.extend(str(err[k]) for k in ("title", "detail") if err.get(k))
        if isinstance(body.get("code"), str):
            code = code or body["code"]
        if isinstance(body.get("key"), str):
            code = code or body["key"]
        context = body.get("context")
        if isinstance(context, dict) and context.get("message"):
            texts.append(str(context["message"]))
        messages = body.get("errorMessages")
        if isinstance(messages, list):
            texts.extend(str(m) for m in messages)
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                texts.append(body[key])
    return code, "; ".join(dict.fromkeys(texts))


def map_atlassian_error(response: httpx.Response, ctx: CallContext) -> AtlassianError:
    """Turn a failed Organizations API response into the most specific ``AtlassianError``."""
    status = response.status_code
    code, text = _error_facts(response)
    says = f": Atlassian says {text!r}" if text else ""
    lowered = f"{code or ''} {text} {response.text[:2000]}".lower()
    kw: dict[str, Any] = {
        "method": ctx.method,
        "url": ctx.url,
        "status": status,
        "code": code,
        "secrets": ctx.secrets,
    }

    if code in _SEAT_CODES or any(m in lowered for m in _SEAT_MARKERS):
        return SeatLimitReached(
            f"No free seat for a product this group grants{says}. "
            "Free a seat or raise the product's user limit; the grant waits and is not retried",
            **kw,
        )
    if status == 429:
        return RateLimited(f"Atlassian rate limit still exceeded{says}", **kw)
    if (
        ctx.endpoint_class == MEMBERSHIP
        and status in {400, 403, 409, 422}
        and (code in _SYNCED_CODES or any(m in lowered for m in _SYNCED_MARKERS))
    ):
        return GroupIsSynced(
            f"The group is synced from an identity provider and its members cannot be changed "
            f"in Atlassian{says}. Change the membership in Entra instead",
            **kw,
        )
    if status == 401:
        return AuthenticationFailed(
            f"Atlassian did not accept the API key{says}. Set {ATLASSIAN_API_KEY_SETTING} to a current "
            "organization API key (admin.atlassian.com > Settings > API keys); a user API token "
            "does not work here",
            **kw,
        )
    if (
        "/directories/-/" in ctx.url
        and status in {400, 403, 404}
        and any(m in lowered for m in _DIRECTORY_MARKERS)
    ):
        return NotCentralizedUserManagement(
            f"The organization refused the all-directories selector '-'{says}. It appears to be on "
            "Atlassian's original user management experience, with a directory per site. Set "
            f"{ATLASSIAN_DIRECTORY_ID_SETTING} to the directory Seatwarden manages (GET "
            "/v2/orgs/{orgId}/directories lists them); Atlassian no longer migrates such orgs to the "
            "centralized experience",
            **kw,
        )
    if status == 403:
        needed = f" It needs {ctx.hint}." if ctx.hint else ""
        return ScopeMissing(
            f"The API key may not make this call{says}.{needed} Set {ATLASSIAN_API_KEY_SETTING} to a "
            "key created by an organization admin with that scope, or to a key without scopes",
            needed=ctx.hint,
            **kw,
        )
    if status == 404:
        if code == "ADMIN-404-2":
            return NotFound(f"Organization not found{says}. Check {ATLASSIAN_ORG_ID_SETTING}", **kw)
        return NotFound(f"Not found{says}", **kw)
    return AtlassianError(f"Atlassian answered HTTP {status}{says}", **kw)


# --- the client -------------------------------------------------------------------------------


class AtlassianClient:
    """Async client of the Atlassian Organizations API for one org.

    ``base_url`` is ``https://api.atlassian.com/admin`` for the real service (the
    sandbox's for tests); the client appends ``/v2/orgs/{orgId}/...``. Give it an
    ``httpx.AsyncClient`` to share one, or a ``transport`` (``httpx.MockTransport`` in
    unit tests); ``async with`` closes only what it opened. ``directory_id`` stays ``-``
    (all directories) unless the org is on the original user-management experience.
    """

    def __init__(
        self,
        base_url: str,
        org_id: str,
        api_key: str,
        *,
        directory_id: str = "-",
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        log: RequestLog | None = None,
        verify: bool | str = True,
    ) -> None:
        if not org_id:
            raise ValueError(
                f"{ATLASSIAN_ORG_ID_SETTING} is empty: set it to the organization id "
                "(admin.atlassian.com/o/<orgId>)"
            )
        if not api_key:
            raise ValueError(f"{ATLASSIAN_API_KEY_SETTING} is empty: set it to an organization API key")
        self.base_url = base_url.rstrip("/")
        self.org_id = org_id
        self.directory_id = directory_id
        self._api_key = api_key
        retry = retry or RetryPolicy()
        self._owns_client = client is None
        self._client = client or make_async_client(
            self.base_url + "/",
            transport=transport,
            verify=verify,
            timeout=retry.timeout,
            headers={"Accept": "application/json"},
        )
        self._caller = HttpCaller(
            self._client,
            vendor="atlassian",
            map_error=map_atlassian_error,
            retry=retry,
            pacer=pacer,
            log=log,
            auth=self._auth_headers,
            secrets=(api_key,),
        )
        org = _segment(org_id, ATLASSIAN_ORG_ID_SETTING)
        self._v1 = f"{self.base_url}/v1/orgs/{org}"
        directory = _segment(directory_id, ATLASSIAN_DIRECTORY_ID_SETTING)
        self._v2 = f"{self.base_url}/v2/orgs/{org}/directories/{directory}"

    def __repr__(self) -> str:
        return (
            f"AtlassianClient(base_url={self.base_url!r}, org_id={self.org_id!r}, "
            f"directory_id={self.directory_id!r})"
        )

    async def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

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

    # --- reads ---

    async def iter_user_pages(
        self,
        *,
        expand: Sequence[str] = DEFAULT_USER_EXPAND,
        group_ids: Iterable[str] | None = None,
        account_ids: Iterable[str] | None = None,
        emails: Iterable[str] | None = None,
        limit: int = 100,
        read_ahead: bool = True,
    ) -> AsyncGenerator[list[AtlassianUser], None]:
        """Yield pages of the org's users from ``POST …/users/search``, following ``links.next``.

        One read carries status, admin roles, groups and per-product activity (DESIGN.md,
        "Activity data"). ``limit`` is 100 a page: Atlassian's default is 50 and it documents
        no maximum; 100 is the only maximum found, a third party's (sandbox/atlassian_api.py,
        ``USERS_MAX_LIMIT``), and a larger one would at best be capped. An empty
        ``group_ids`` or ``account_ids`` yields nothing rather than sending an empty filter
        the vendor might read as "no filter". Raises ``IncompleteRead`` when a page fails
        after retries, does not parse, or a cursor repeats. ``read_ahead=False`` for a caller
        that reads only the first page: the next is then not asked for (``iter_pages``).
        """
        body: dict[str, Any] = {"limit": limit, "expand": list(expand)}
        if group_ids is not None:
            body["groupIds"] = list(dict.fromkeys(group_ids))
            if not body["groupIds"]:
                return
        if account_ids is not None:
            body["accountIds"] = list(dict.fromkeys(account_ids))
            if not body["accountIds"]:
                return
        if emails is not None:
            body["emails"] = list(dict.fromkeys(emails))
            if not body["emails"]:
                return
        what = "Atlassian users search"
        url = f"{self._v2}/users/search"

        async def fetch(cursor: str | None) -> tuple[bytes, str | None]:
            request = body if cursor is None else {**body, "cursor": cursor}
            content, next_cursor = await self._caller.send_json(
                "POST",
                url,
                what=what,
                endpoint_class=USERS_SEARCH,
                idempotent=True,
                json=request,
                hint=_READ_SCOPE,
                decode=_page_cursor,
            )
            return content, next_cursor

        # Only the cursor is read before the next page is asked for; the users are read
        # from the page while that request is out (iter_pages).
        async for content in iter_pages(fetch, what=what, read_ahead=read_ahead):
            yield _parse_bytes(_UserPage, content, what).data

    async def search_groups(
        self,
        names: Iterable[str] | None = None,
        ids: Iterable[str] | None = None,
        *,
        limit: int = 100,
    ) -> list[AtlassianGroup]:
        """All groups matching ``names`` (exact, case-insensitive) or ``ids``, with user counts.

        The vendor refuses ``groupNames`` together with ``groupIds`` (400), so this does too.
        With neither, every group of the org is returned.
        """
        if names is not None and ids is not None:
            raise ValueError("search_groups takes names or ids, not both (Atlassian refuses the combination)")
        body: dict[str, Any] = {"limit": limit, "expand": ["counts.users"]}
        if names is not None:
            body["groupNames"] = list(dict.fromkeys(names))
            if not body["groupNames"]:
                return []
        if ids is not None:
            body["groupIds"] = list(dict.fromkeys(ids))
            if not body["groupIds"]:
                return []
        what = "Atlassian groups search"
        url = f"{self._v2}/groups/search"

        async def fetch(cursor: str | None) -> tuple[list[AtlassianGroup], str | None]:
            request = body if cursor is None else {**body, "cursor": cursor}
            data = await self._caller.send_json(
                "POST",
                url,
                what=what,
                endpoint_class=GROUPS_SEARCH,
                idempotent=True,
                json=request,
                hint=_READ_SCOPE,
            )
            page = _parse(_GroupPage, data, what)
            return page.data, page.links.next if page.links else None

        groups: list[AtlassianGroup] = []
        async for page in iter_pages(fetch, what=what):
            groups.extend(page)
        return groups

    async def last_active_dates(self, account_id: str) -> LastActive:
        """A user's last activity per product, from ``GET /v1/…/last-active-dates`` (all pages).

        A failure raises (``IncompleteRead`` or the mapped error): the caller must treat
        the person as unknown, never as "never active" (DESIGN.md, "Activity data").
        """
        what = f"Atlassian last-active dates for {account_id}"
        url = f"{self._v1}/directory/users/{_segment(account_id, 'account id')}/last-active-dates"

        async def fetch(cursor: str | None) -> tuple[_LastActiveData, str | None]:
            data = await self._caller.send_json(
                "GET",
                url,
                what=what,
                endpoint_class=LAST_ACTIVE,
                params={"cursor": cursor} if cursor else None,
                hint=_LAST_ACTIVE_SCOPE,
            )
            page = _parse(_LastActivePage, data, what)
            return page.data, _cursor_from(page.links.next if page.links else None)

        entries: list[ProductLastActive] = []
        added_to_org: datetime | None = None
        async for page in iter_pages(fetch, what=what):
            added_to_org = added_to_org or page.added_to_org_timestamp or page.added_to_org
            entries.extend(
                ProductLastActive(p.key, p.id, p.last_active_timestamp or p.last_active)
                for p in page.product_access
            )
        products: dict[str, datetime | None] = {}
        for entry in entries:  # a product on several sites: the latest use counts
            if entry.key not in products:
                products[entry.key] = entry.last_active
            elif entry.last_active is not None:
                known = products[entry.key]
                products[entry.key] = entry.last_active if known is None else max(known, entry.last_active)
        return LastActive(
            account_id=account_id, products=products, added_to_org=added_to_org, entries=tuple(entries)
        )

    async def events_stream(
        self,
        cursor: str | None = None,
        from_ms: int | None = None,
        limit: int = 200,
    ) -> tuple[list[OrgEvent], str | None]:
        """One page of ``GET /v1/orgs/{orgId}/events-stream`` and the cursor to poll with next.

        ``from_ms`` is epoch milliseconds. The stream's cursor can be reused to poll for
        new events (WIRE.md §7), so when the page names no next cursor the one given is
        returned: store it and call again later.
        """
        if not 1 <= limit <= 500:  # GOA: default 200, max 500
            raise ValueError("events_stream limit must be between 1 and 500")
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if from_ms is not None:
            params["from"] = from_ms
        what = "Atlassian org events stream"
        data = await self._caller.send_json(
            "GET",
            f"{self._v1}/events-stream",
            what=what,
            endpoint_class=EVENTS,
            params=params,
            hint=_EVENTS_SCOPE,
        )
        page = _parse(_EventPage, data, what)
        next_cursor = (page.meta.next if page.meta else None) or _cursor_from(
            page.links.next if page.links else None
        )
        return page.data, next_cursor or cursor

    async def event_actions(self) -> list[EventAction]:
        """Every audit-log action key with its display name (``GET /v1/orgs/{orgId}/event-actions``)."""
        what = "Atlassian event actions"
        url = f"{self._v1}/event-actions"

        async def fetch(cursor: str | None) -> tuple[list[EventAction], str | None]:
            data = await self._caller.send_json(
                "GET",
                url,
                what=what,
                endpoint_class=EVENT_ACTIONS,
                params={"cursor": cursor} if cursor else None,
                hint=_EVENTS_SCOPE,
            )
            page = _parse(_EventActionPage, data, what)
            return page.data, _cursor_from(page.links.next if page.links else None)

        actions: list[EventAction] = []
        async for page in iter_pages(fetch, what=what):
            actions.extend(page)
        return actions

    # --- writes ---
    # Membership add/remove and suspend/restore are idempotent in effect: repeating one
    # leaves the org in the same state, so a try that timed out after the request left is
    # repeated (shared.http.HttpCaller.send, idempotent=True). Any 2xx is success: the
    # vendor types these responses `void` (WIRE.md §§4-5).

    async def add_member(self, group_id: str, account_id: str) -> MembershipChange:
        """Add a user to a group. Raises ``SeatLimitReached`` (not retried) when no seat is free,
        ``GroupIsSynced`` for an IdP-synced group."""
        url = f"{self._v2}/groups/{_segment(group_id, 'group id')}/memberships"
        await self._caller.send(
            "POST",
            url,
            endpoint_class=MEMBERSHIP,
            idempotent=True,
            json={"accountId": account_id},
            hint=_WRITE_SCOPE,
        )
        return MembershipChange.APPLIED

    async def remove_member(self, group_id: str, account_id: str) -> MembershipChange:
        """Remove a user from a group.

        A 404 counts as "already not a member" unless its code names the group or the
        org (ADMIN-404-10, ADMIN-UAM-404-3, ADMIN-404-2): a wrong group id must surface, not
        look like success. Atlassian documents no code for "not a member" (WIRE.md §4).
        """
        group, account = _segment(group_id, "group id"), _segment(account_id, "account id")
        url = f"{self._v2}/groups/{group}/memberships/{account}"
        try:
            await self._caller.send("DELETE", url, endpoint_class=MEMBERSHIP, hint=_WRITE_SCOPE)
        except NotFound as exc:
            if exc.code in _ORG_OR_GROUP_NOT_FOUND:
                raise
            return MembershipChange.ALREADY_DONE
        return MembershipChange.APPLIED

    async def suspend(self, account_id: str) -> str | None:
        """Suspend a user's access in the directory. Returns the vendor's ``message``, if any."""
        return await self._lifecycle(account_id, "suspend")

    async def restore(self, account_id: str) -> str | None:
        """Restore a suspended user's access. Returns the vendor's ``message``, if any."""
        return await self._lifecycle(account_id, "restore")

    async def _lifecycle(self, account_id: str, verb: str) -> str | None:
        url = f"{self._v2}/users/{_segment(account_id, 'account id')}/{verb}"
        response = await self._caller.send(
            "POST", url, endpoint_class=USER_LIFECYCLE, idempotent=True, hint=_WRITE_SCOPE
        )
        try:
            body = response.json() if response.content else None
        except ValueError:
            return None
        return (
            body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), str) else None
        )
