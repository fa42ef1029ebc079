"""The Atlassian Organizations REST API, as much of it as Seatwarden calls.

Base path ``/admin`` with ``Authorization: Bearer <org API key>``
(https://developer.atlassian.com/cloud/admin/organization/rest/intro/): directories,
users search, users, suspend and restore, groups search, groups, memberships, and
last-active dates. v2 pages hand back ``links.next`` as a cursor to send as ``cursor``
(WIRE.md §2). The audit log is in ``atlassian_events``; shared pieces in
``atlassian_common``.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .atlassian_common import (
    DIRECTORY,
    ONLY_WITHOUT_SCOPES,
    READ_DIRECTORIES,
    V1,
    V2,
    ApiKeyScopes,
    api_key_guard,
    atlassian_error,
    message_response,
    parse_limit,
)
from .atlassian_events import AtlassianEvents
from .cursor import InvalidCursor, decode_cursor, encode_cursor
from .model import Group, User
from .org import VIA_API, GroupIsSynced, Org, SeatLimitReached, UnknownGroup, UnknownUser
from .ratelimit import GROUPS, LAST_ACTIVE, MEMBERSHIPS, SUSPEND_RESTORE, USERS_SEARCH
from .routing import ApiRequest, ApiResponse, BadJson, Handler, Router
from .timeutil import from_epoch, iso_date, iso_ms, iso_seconds

USERS_DEFAULT_LIMIT = 50  # WIRE.md §2 (jira.js)
# Atlassian documents no maximum: its reference and the jira.js model generated from its
# schema (src/admin/models/multiDirectoryUserSearchRequest.ts) say only "Defaults to 50"
# (https://developer.atlassian.com/cloud/admin/organization/rest/api-group-users/). The one
# figure found is a third party's: "Maximum value is 100" for the v2 users list
# (https://docs.blinkops.com/docs/integrations/atlassian-organizations/actions/list-organization-users).
# So 100, and a larger limit is capped to it rather than refused. UNCONFIRMED.
USERS_MAX_LIMIT = 100
GROUPS_DEFAULT_LIMIT = 20  # WIRE.md §4
GROUPS_MAX_LIMIT = 100  # UNCONFIRMED, capped like users
USER_EXPANDS = {"platformRoles", "counts.resources", "productAccess", "groups"}
STATUS_VALUES = {"active", "suspended", "not_invited", "deactivated", "for_deletion"}


@dataclass(frozen=True)
class _UserQuery:
    """A parsed users search: the candidates to walk and a test for each person."""

    candidates: list[int] | None  # user indices in accountId order; None: everyone
    accept: Callable[[User], bool]
    fingerprint: str  # ties a cursor to the filters it was issued for


class AtlassianApi:
    def __init__(
        self,
        org: Org,
        *,
        api_key: str,
        activity_in_search: bool = True,
        scopes: ApiKeyScopes | None = None,
    ) -> None:
        self._org = org
        self.scopes = scopes or ApiKeyScopes()
        self._guard = api_key_guard(org, api_key, self.scopes)
        self.activity_in_search = activity_in_search
        #: account id -> the JSON of the user's unchanging fields (``_users_json``), for links
        #: under ``_static_root``
        self._static: dict[str, str] = {}
        self._static_root = ""

    def register(self, router: Router) -> None:
        def add(method: str, template: str, endpoint_class: str, handler: Handler, scope: str | None) -> None:
            router.add(method, template, endpoint_class, self._guard(handler, scope))

        reads, writes = READ_DIRECTORIES, ONLY_WITHOUT_SCOPES
        add("GET", V2 + "/directories", GROUPS, self.list_directories, reads)
        add("POST", DIRECTORY + "/users/search", USERS_SEARCH, self.search_users, reads)
        add("GET", DIRECTORY + "/users/{account_id}", USERS_SEARCH, self.get_user, reads)
        add("POST", DIRECTORY + "/users/{account_id}/suspend", SUSPEND_RESTORE, self.suspend, writes)
        add("POST", DIRECTORY + "/users/{account_id}/restore", SUSPEND_RESTORE, self.restore, writes)
        add("POST", DIRECTORY + "/groups/search", GROUPS, self.search_groups, reads)
        add("GET", DIRECTORY + "/groups/{group_id}", GROUPS, self.get_group, reads)
        add("POST", DIRECTORY + "/groups/{group_id}/memberships", MEMBERSHIPS, self.add_member, writes)
        add(
            "DELETE",
            DIRECTORY + "/groups/{group_id}/memberships/{account_id}",
            MEMBERSHIPS,
            self.remove_member,
            writes,
        )
        add(
            "GET",
            V1 + "/directory/users/{account_id}/last-active-dates",
            LAST_ACTIVE,
            self.last_active_dates,
            reads,
        )
        AtlassianEvents(self._org).register(router, self._guard)

    def _root(self, req: ApiRequest) -> str:
        return (
            f"{req.base_url}/admin/v2/orgs/{self._org.org_id}/directories/{self._org.identity.directory_id}"
        )

    # ---- directories and users ------------------------------------------------------

    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-directory/
    def list_directories(self, req: ApiRequest) -> ApiResponse:
        ident = self._org.identity
        return ApiResponse.json(
            200,
            {
                "data": [{"directoryId": ident.directory_id, "name": ident.directory_name, "icon": None}],
                "links": {"self": None, "prev": None, "next": None},
            },
        )

    # POST /v2/orgs/{orgId}/directories/{directoryId}/users/search (WIRE.md §2)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-users/
    def search_users(self, req: ApiRequest) -> ApiResponse:
        try:
            body = req.json()
        except BadJson as exc:
            return atlassian_error(400, "ADMIN-400-24", "Invalid request body", str(exc))
        if not isinstance(body, dict):
            return atlassian_error(
                400, "ADMIN-400-24", "Invalid request body", "The body must be a JSON object."
            )
        limit = parse_limit(body.get("limit"), USERS_DEFAULT_LIMIT, USERS_MAX_LIMIT)
        if isinstance(limit, ApiResponse):
            return limit
        expand = body.get("expand") or []
        if not isinstance(expand, list) or not set(expand) <= USER_EXPANDS:
            return atlassian_error(
                400, "ADMIN-400-24", "Invalid expand", f"expand takes {sorted(USER_EXPANDS)}."
            )
        with self._org.lock:
            query = self._user_query(body)
            if isinstance(query, ApiResponse):
                return query
            start = 0
            cursor = body.get("cursor")
            if cursor:
                try:
                    state = decode_cursor("users", str(cursor))
                    if state.get("f") != query.fingerprint:
                        raise InvalidCursor("cursor issued for other filters")
                    start = int(state["p"])
                except (InvalidCursor, KeyError, ValueError):
                    return atlassian_error(
                        400, "ADMIN-400-1", "Invalid cursor", "The cursor is not valid for this request."
                    )
            page: list[User] = []
            next_position: int | None = None
            for person in self._walk(query, start):
                if len(page) == limit:
                    next_position = person.index
                    break
                page.append(person)
            data = self._users_json(page, set(expand), self._root(req))
        next_cursor = (
            None if next_position is None else encode_cursor("users", p=next_position, f=query.fingerprint)
        )
        links = _dumps({"self": cursor or None, "prev": None, "next": next_cursor})
        body = f'{{"data":{data},"links":{links}}}'.encode()
        return ApiResponse(200, body, {"Content-Type": "application/json"})

    def _walk(self, query: _UserQuery, start: int) -> Iterator[User]:
        """Matching people from user index ``start`` on, in accountId order."""
        users = self._org.users
        if query.candidates is None:
            positions: Any = range(start, len(users))
        else:
            positions = query.candidates[bisect_left(query.candidates, start) :]
        for position in positions:
            person = users[position]
            if query.accept(person):
                yield person

    def _user_query(self, body: dict[str, Any]) -> _UserQuery | ApiResponse:
        if body.get("searchTerm") and body.get("emails"):
            return atlassian_error(
                400, "ADMIN-400-24", "Invalid request body", "searchTerm and emails cannot be combined."
            )
        lists: dict[str, list[str]] = {}
        for name in (
            "accountIds",
            "groupIds",
            "emailDomains",
            "status",
            "accountStatus",
            "membershipStatus",
            "roleIds",
            "emails",
            "resourceIds",
            "directoryIds",
        ):
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return atlassian_error(
                    400, "ADMIN-400-24", "Invalid request body", f"{name} must be a list of strings."
                )
            lists[name] = value
        if not set(lists.get("status", [])) <= STATUS_VALUES:
            return atlassian_error(
                400, "ADMIN-400-24", "Invalid status", f"status takes {sorted(STATUS_VALUES)}."
            )
        org = self._org
        candidates: list[int] | None = None
        if "accountIds" in lists:
            candidates = sorted(u.index for a in lists["accountIds"] if (u := org.find_user(a)) is not None)
        elif "emails" in lists:
            candidates = sorted(u.index for e in lists["emails"] if (u := org.user_by_email(e)) is not None)
        group_ids = [g for g in lists.get("groupIds", []) if _exists(org.group, g)]
        resource_groups = [
            g.id
            for r in lists.get("resourceIds", [])
            for p in org.products
            if org.resource_id(p.key) == r
            for g in org.access_groups(p.key)
        ]
        if "groupIds" in lists or "resourceIds" in lists:
            scoped = org.sorted_member_indices(group_ids) if "groupIds" in lists else None
            by_resource = org.sorted_member_indices(resource_groups) if "resourceIds" in lists else None
            for narrowed in (scoped, by_resource):
                if narrowed is None:
                    continue
                candidates = narrowed if candidates is None else sorted(set(candidates) & set(narrowed))
        accept = _user_predicate(
            lists, body.get("searchTerm"), body.get("mfaEnabled"), body.get("claimStatus")
        )
        filters = {k: v for k, v in body.items() if k not in ("cursor", "limit", "expand")}
        fingerprint = hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]
        return _UserQuery(candidates, accept, fingerprint)

    def _users_json(self, users: list[User], expand: set[str], root: str) -> str:
        """A page's ``data`` array as JSON text: what ``_user_json`` gives, built cheaply.

        A 100,000-person org is read a thousand pages a night; rendering each person from
        scratch (an md5 for the avatar, a dozen timestamps, every group scanned per person)
        cost the sandbox more than the client spent on the page. The fields that never
        change are rendered once per person and kept; the rest (status, roles, activity,
        groups) are rendered per request. tests/sandbox/test_atlassian_api.py holds the two
        renderings equal.
        """
        if root != self._static_root:
            self._static.clear()
            self._static_root = root
        org = self._org
        groups = [
            (g.members, _dumps({"id": g.id, "name": g.name, "description": g.description}))
            for g in (org.groups if "groups" in expand else ())
        ]
        products = [f'{{"key":{_dumps(p.key)},"id":{_dumps(org.resource_id(p.key))}' for p in org.products]
        rendered = []
        for user in users:
            static = self._static.get(user.account_id)
            if static is None:
                static = self._static[user.account_id] = _dumps(self._static_fields(user, root))[1:-1]
            parts = [
                static,
                f'"status":{_dumps(user.status)},"accountStatus":{_dumps(user.account_status)}'
                f',"membershipStatus":{_dumps(user.membership_status)}',
            ]
            if "platformRoles" in expand:
                parts.append(f'"platformRoles":{_dumps(list(user.platform_roles))}')
            if "counts.resources" in expand:
                parts.append(f'"counts":{_dumps(self._counts(user))}')
            if "productAccess" in expand:
                entries = []
                for prefix, stamp in zip(products, user.last_active, strict=True):
                    if not stamp:
                        continue
                    if self.activity_in_search:
                        entries.append(f'{prefix},"lastActiveTimestamp":"{_iso_ms_of_epoch(stamp)}"}}')
                    else:
                        entries.append(prefix + "}")
                parts.append(f'"productAccess":[{",".join(entries)}]')
            if "groups" in expand:
                account_id = user.account_id
                mine = [ref for members, ref in groups if account_id in members]
                parts.append(f'"groups":[{",".join(mine)}]')
            rendered.append("{" + ",".join(parts) + "}")
        return "[" + ",".join(rendered) + "]"

    def _static_fields(self, user: User, root: str) -> dict[str, Any]:
        """The fields of a user that no change to the org alters."""
        avatar = f"https://avatar.example/{hashlib.md5(user.email.encode()).hexdigest()}"  # noqa: S324
        return {
            "accountId": user.account_id,
            "accountType": "atlassian",
            "addedToOrg": iso_ms(user.added_to_org),
            "name": user.name,
            "nickname": user.name.split(" ")[0],
            "email": user.email,
            "emailVerified": True,
            "claimStatus": user.claim_status,
            "picture": avatar,
            "avatar": avatar,
            "managementSource": "invited" if user.is_external else "synced",
            "mfaEnabled": user.mfa_enabled,
            "jobTitle": user.job_title,
            "department": user.department,
            "organization": None,
            "location": None,
            "timeZone": None,
            "links": {"self": f"{root}/users/{user.account_id}"},
            "deactivatedOn": None,
            "forDeletion": False,
        }

    def _counts(self, user: User) -> dict[str, int]:
        org = self._org
        return {
            "resources": sum(
                1 for p in org.products if any(user.account_id in g.members for g in org.access_groups(p.key))
            )
        }

    def _user_json(self, user: User, expand: set[str], root: str) -> dict[str, Any]:
        """One user as the v2 users endpoints return them (WIRE.md §2)."""
        data: dict[str, Any] = {
            **self._static_fields(user, root),
            "status": user.status,
            "accountStatus": user.account_status,
            "membershipStatus": user.membership_status,
        }
        if "platformRoles" in expand:
            data["platformRoles"] = list(user.platform_roles)
        if "counts.resources" in expand:
            data["counts"] = self._counts(user)
        if "productAccess" in expand:
            data["productAccess"] = self._product_access(user)
        if "groups" in expand:
            data["groups"] = [
                {"id": g.id, "name": g.name, "description": g.description}
                for g in self._org.groups
                if user.account_id in g.members
            ]
        return data

    def _product_access(self, user: User) -> list[dict[str, Any]]:
        """Products the person has used: never-used products have no entry.

        With ``activity_in_search`` off, entries lack ``lastActiveTimestamp``, as in orgs
        whose search does not carry activity: clients must fall back to last-active-dates.
        """
        entries = []
        for product, stamp in zip(self._org.products, user.last_active, strict=True):
            if not stamp:
                continue
            entry: dict[str, Any] = {"key": product.key, "id": self._org.resource_id(product.key)}
            if self.activity_in_search:
                entry["lastActiveTimestamp"] = iso_ms(from_epoch(stamp))
            entries.append(entry)
        return entries

    # GET …/directories/{directoryId}/users/{accountId} -> {"data": {…}} (WIRE.md §2)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-users/
    def get_user(self, req: ApiRequest, account_id: str) -> ApiResponse:
        with self._org.lock:
            user = self._org.find_user(account_id)
            if user is None:
                return _user_not_found(account_id)
            return ApiResponse.json(
                200,
                {
                    "data": self._user_json(
                        user, {"platformRoles", "productAccess", "groups"}, self._root(req)
                    )
                },
            )

    # POST …/users/{accountId}/suspend and …/restore (WIRE.md §5)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-users/
    def suspend(self, req: ApiRequest, account_id: str) -> ApiResponse:
        try:
            self._org.suspend(account_id, via=VIA_API)
        except UnknownUser:
            return _user_not_found(account_id)
        return message_response(f"Access for user {account_id} is suspended.")

    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-users/
    def restore(self, req: ApiRequest, account_id: str) -> ApiResponse:
        try:
            self._org.restore(account_id, via=VIA_API)
        except UnknownUser:
            return _user_not_found(account_id)
        return message_response(f"Access for user {account_id} is restored.")

    # ---- groups ---------------------------------------------------------------------------

    # POST /v2/orgs/{orgId}/directories/{directoryId}/groups/search (WIRE.md §4)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-groups/
    def search_groups(self, req: ApiRequest) -> ApiResponse:
        try:
            body = req.json()
        except BadJson as exc:
            return atlassian_error(400, "ADMIN-400-24", "Invalid request body", str(exc))
        if not isinstance(body, dict):
            return atlassian_error(
                400, "ADMIN-400-24", "Invalid request body", "The body must be a JSON object."
            )
        names = body.get("groupNames")
        if names and (body.get("searchTerm") or body.get("groupIds")):
            return atlassian_error(
                400,
                "ADMIN-400-24",
                "Invalid request body",
                "groupNames cannot be combined with searchTerm or groupIds.",
            )
        limit = parse_limit(body.get("limit"), GROUPS_DEFAULT_LIMIT, GROUPS_MAX_LIMIT)
        if isinstance(limit, ApiResponse):
            return limit
        offset = 0
        if body.get("cursor"):
            try:
                offset = int(decode_cursor("groups", str(body["cursor"]))["o"])
            except (InvalidCursor, KeyError, ValueError):
                return atlassian_error(
                    400, "ADMIN-400-1", "Invalid cursor", "The cursor is not valid for this request."
                )
        expand = set(body.get("expand") or [])
        with self._org.lock:
            matches = [g for g in self._org.groups if _group_matches(g, body)]
            page = matches[offset : offset + limit]
            data = [self._group_json(g, expand, self._root(req)) for g in page]
        more = offset + limit < len(matches)
        return ApiResponse.json(
            200,
            {
                "data": data,
                "links": {
                    "self": body.get("cursor"),
                    "prev": None,
                    "next": encode_cursor("groups", o=offset + limit) if more else None,
                },
            },
        )

    # GET …/directories/{directoryId}/groups/{groupId} -> {"data": {…}} (WIRE.md §4)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-groups/
    def get_group(self, req: ApiRequest, group_id: str) -> ApiResponse:
        with self._org.lock:
            try:
                group = self._org.group(group_id)
            except UnknownGroup:
                return _group_not_found(group_id)
            return ApiResponse.json(
                200, {"data": self._group_json(group, {"counts.users", "counts.resources"}, self._root(req))}
            )

    def _group_json(self, group: Group, expand: set[str], root: str) -> dict[str, Any]:
        synced = group.external_synced
        data: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "directoryId": self._org.identity.directory_id,
            "managementAccess": {"deletable": not synced, "modifiable": not synced, "readable": True},
            "externalSynced": synced,
            "managedBy": "external" if synced else "admins",
            "links": {"self": f"{root}/groups/{group.id}"},
        }
        counts: dict[str, int] = {}
        if "counts.users" in expand:
            counts["users"] = len(group.members)
        if "counts.resources" in expand:
            counts["resources"] = len(group.grants)
        if counts:
            data["counts"] = counts
        return data

    # POST …/groups/{groupId}/memberships {"accountId"} and
    # DELETE …/groups/{groupId}/memberships/{accountId} (WIRE.md §4, §10)
    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-groups/
    def add_member(self, req: ApiRequest, group_id: str) -> ApiResponse:
        try:
            body = req.json(allow_empty=False)
        except BadJson as exc:
            return atlassian_error(400, "ADMIN-400-24", "Invalid request body", str(exc))
        account_id = body.get("accountId") if isinstance(body, dict) else None
        if not isinstance(account_id, str) or not account_id:
            return atlassian_error(400, "ADMIN-400-24", "Invalid request body", "accountId is required.")
        return self._change_membership(group_id, account_id, add=True)

    # https://developer.atlassian.com/cloud/admin/organization/rest/api-group-groups/
    def remove_member(self, req: ApiRequest, group_id: str, account_id: str) -> ApiResponse:
        return self._change_membership(group_id, account_id, add=False)

    def _change_membership(self, group_id: str, account_id: str, *, add: bool) -> ApiResponse:
        change = self._org.add_member if add else self._org.remove_member
        try:
            change(group_id, account_id, via=VIA_API)
        except UnknownGroup:
            return _group_not_found(group_id)
        except UnknownUser:
            return _user_not_found(account_id)
        except GroupIsSynced as exc:
            return atlassian_error(
                403,
                "ADMIN-403-5",
                "Group is managed externally",
                f"Group {exc} is synced from an identity provider; change its members there.",
            )
        except SeatLimitReached as exc:
            return atlassian_error(
                409,
                "ADMIN-409-3",
                "License limit exceeded",
                f"Licence exceeded for {exc.product}: all {exc.limit} seats are taken.",
            )
        verb = "added to" if add else "removed from"
        return message_response(f"User {account_id} {verb} group {group_id}.")

    # ---- activity and events ----------------------------------------------------------

    # GET /v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates (WIRE.md §3)
    # https://developer.atlassian.com/cloud/admin/organization/user-last-active-dates/
    def last_active_dates(self, req: ApiRequest, account_id: str) -> ApiResponse:
        with self._org.lock:
            user = self._org.find_user(account_id)
            if user is None:
                return _user_not_found(account_id)
            access = [
                {
                    "id": self._org.resource_id(p.key),
                    "key": p.key,
                    "last_active": iso_date(from_epoch(stamp)),
                    "last_active_timestamp": iso_seconds(from_epoch(stamp)),
                }
                for p, stamp in zip(self._org.products, user.last_active, strict=True)
                if stamp
            ]
            added = user.added_to_org
        return ApiResponse.json(
            200,
            {
                "data": {
                    "product_access": access,
                    "added_to_org": iso_date(added),
                    "added_to_org_timestamp": iso_seconds(added),
                },
                "links": {"next": None},
            },
        )


def _user_predicate(
    lists: dict[str, list[str]], search_term: Any, mfa: Any, claim: Any
) -> Callable[[User], bool]:
    """The filters of a users search as one test; absent filters accept everyone."""
    accounts = set(lists["accountIds"]) if "accountIds" in lists else None
    emails = {e.lower() for e in lists["emails"]} if "emails" in lists else None
    domains = {d.lower().lstrip("@") for d in lists["emailDomains"]} if "emailDomains" in lists else None
    statuses = set(lists["status"]) if "status" in lists else None
    account_statuses = set(lists["accountStatus"]) if "accountStatus" in lists else None
    memberships = set(lists["membershipStatus"]) if "membershipStatus" in lists else None
    roles = set(lists["roleIds"]) if "roleIds" in lists else None
    term = search_term.lower() if isinstance(search_term, str) and search_term else None

    def accept(user: User) -> bool:
        if accounts is not None and user.account_id not in accounts:
            return False
        if emails is not None and user.email.lower() not in emails:
            return False
        if domains is not None and user.email.rpartition("@")[2].lower() not in domains:
            return False
        if statuses is not None and user.status not in statuses:
            return False
        if account_statuses is not None and user.account_status not in account_statuses:
            return False
        if memberships is not None and user.membership_status not in memberships:
            return False
        if roles is not None and not roles & set(user.platform_roles):
            return False
        if isinstance(mfa, bool) and user.mfa_enabled != mfa:
            return False
        if isinstance(claim, str) and user.claim_status != claim:
            return False
        if term is not None and term not in user.name.lower() and term not in user.email.lower():
            return False
        return True

    return accept


def _group_matches(group: Group, body: dict[str, Any]) -> bool:
    names = body.get("groupNames")
    if names and group.name.lower() not in {str(n).lower() for n in names}:
        return False
    ids = body.get("groupIds")
    if ids and group.id not in set(ids):
        return False
    term = body.get("searchTerm")
    if term and str(term).lower() not in group.name.lower():
        return False
    accounts = body.get("accountIds")
    if accounts and not set(accounts) & group.members:
        return False
    return True


def _exists(lookup: Callable[[str], object], key: str) -> bool:
    try:
        lookup(key)
    except (UnknownGroup, UnknownUser):
        return False
    return True


def _user_not_found(account_id: str) -> ApiResponse:
    return atlassian_error(404, "ADMIN-404-8", "User not found", f"No user with id {account_id}.")


def _group_not_found(group_id: str) -> ApiResponse:
    return atlassian_error(404, "ADMIN-404-10", "Group not found", f"No group with id {group_id}.")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@lru_cache(maxsize=1 << 16)
def _iso_ms_of_epoch(stamp: int) -> str:
    return iso_ms(from_epoch(stamp))
