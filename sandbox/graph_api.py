"""Microsoft Graph v1.0 as Seatwarden uses it: group members, delta, member writes,
``$batch``, subscriptions and mail. Every route needs a token from the sandbox's Entra.

The endpoints themselves live in ``graph_delta``, ``graph_batch``,
``graph_subscriptions`` and ``graph_mail``; this module holds the directory reads and
writes, the authentication guard and the route table.
"""

from __future__ import annotations

import re
import uuid
from bisect import bisect_right
from collections.abc import Callable

from .cursor import InvalidCursor, decode_cursor, encode_cursor
from .faults import Faults
from .graph_batch import BatchRunner
from .graph_common import (
    DELETE_USERS,
    GRAPH_PREFIX,
    GROUP_SUBSCRIPTIONS,
    READ_MEMBERS,
    READ_USERS,
    SEND_MAIL,
    WRITE_MEMBERS,
    GraphPermissions,
    graph_base,
    graph_error,
    graph_json,
    group_object,
    not_found,
    parse_select,
    query_string,
    user_object,
)
from .graph_delta import GroupsDelta
from .graph_mail import Mailbox
from .graph_subscriptions import Subscriptions, UrlValidator
from .org import VIA_GRAPH, Org, UnknownEntraGroup, UnknownEntraObject
from .ratelimit import GRAPH, RateLimiter
from .routing import ApiRequest, ApiResponse, BadJson, Handler, Router
from .tokens import TokenState, TokenStore

DEFAULT_TOP = 100  # https://learn.microsoft.com/graph/paging (directory objects)
MAX_TOP = 999
_REFERENCE = re.compile(r"(?:directoryObjects|users)/([^/?#]+)/?$")

_TOKEN_MESSAGES = {
    TokenState.MISSING: "Access token is empty.",
    TokenState.UNKNOWN: "Access token validation failure. Invalid audience.",
    TokenState.EXPIRED: "Lifetime validation failed, the token is expired.",
}


class GraphApi:
    def __init__(
        self,
        org: Org,
        tokens: TokenStore,
        *,
        limiter: RateLimiter,
        faults: Faults,
        count: Callable[[str], None],
        application_id: str,
        url_validator: UrlValidator | None,
        seed: int,
        permissions: GraphPermissions | None = None,
    ) -> None:
        self._org = org
        self._tokens = tokens
        self.permissions = permissions or GraphPermissions()
        self.delta = GroupsDelta(org)
        self.subscriptions = Subscriptions(org, application_id=application_id, validator=url_validator)
        self.mailbox = Mailbox(org)
        items = Router()  # what a $batch item may call: everything but $batch itself
        self._add_routes(items, with_batch=False)
        self._batch = BatchRunner(items, limiter=limiter, faults=faults, count=count, seed=seed)

    def register(self, router: Router) -> None:
        self._add_routes(router, with_batch=True)

    def _add_routes(self, router: Router, *, with_batch: bool) -> None:
        def add(
            method: str, template: str, handler: Handler, needs: tuple[str, ...], limited: bool = True
        ) -> None:
            guarded = self._guard(handler, needs)
            router.add(method, GRAPH_PREFIX + template, GRAPH, guarded, rate_limited=limited)

        for segment in ("transitiveMembers", "members"):
            add("GET", f"/groups/{{group_id}}/{segment}", self._members_handler(segment), READ_MEMBERS)
            add(
                "GET",
                f"/groups/{{group_id}}/{segment}/microsoft.graph.user",
                self._members_handler(f"{segment}/microsoft.graph.user"),
                READ_MEMBERS,
            )
        add("GET", "/groups/delta", self.delta.handle, READ_MEMBERS)  # before /groups/{id}
        add("GET", "/groups/{group_id}", self.get_group, READ_MEMBERS)
        add("POST", "/groups/{group_id}/members/$ref", self.add_member, WRITE_MEMBERS)
        add("DELETE", "/groups/{group_id}/members/{object_id}/$ref", self.remove_member, WRITE_MEMBERS)
        add("DELETE", "/groups/{group_id}/members/{object_id}", self.delete_member_object, DELETE_USERS)
        add("GET", "/users/{user_id}", self.get_user, READ_USERS)
        add("POST", "/users/{user_id}/sendMail", self.mailbox.send_mail, SEND_MAIL)
        subscriptions = self.subscriptions
        add("POST", "/subscriptions", subscriptions.create, GROUP_SUBSCRIPTIONS)
        add("GET", "/subscriptions", subscriptions.list, GROUP_SUBSCRIPTIONS)
        add("GET", "/subscriptions/{subscription_id}", subscriptions.get, GROUP_SUBSCRIPTIONS)
        add("PATCH", "/subscriptions/{subscription_id}", subscriptions.renew, GROUP_SUBSCRIPTIONS)
        add("DELETE", "/subscriptions/{subscription_id}", subscriptions.delete, GROUP_SUBSCRIPTIONS)
        add(
            "POST",
            "/subscriptions/{subscription_id}/reauthorize",
            subscriptions.reauthorize,
            GROUP_SUBSCRIPTIONS,
        )
        if with_batch:
            # Items are throttled one by one inside the batch, not the envelope, and each
            # item is checked against the permissions on its own.
            add("POST", "/$batch", self._batch.handle, (), limited=False)

    def _guard(self, handler: Handler, needs: tuple[str, ...]) -> Handler:
        """Refuse requests without a valid sandbox token, or without a permission that lets
        the app call the endpoint; stamp Graph's request ids."""

        def guarded(req: ApiRequest, **params: str) -> ApiResponse:
            state = self._tokens.check(req.bearer_token())
            if state is not TokenState.VALID:
                response = graph_error(401, "InvalidAuthenticationToken", _TOKEN_MESSAGES[state])
            else:
                response = self.permissions.refusal(needs) or handler(req, **params)
            response.headers.setdefault("request-id", str(uuid.uuid4()))
            response.headers.setdefault(
                "client-request-id", req.header("client-request-id") or str(uuid.uuid4())
            )
            return response

        return guarded

    def _members_handler(self, segment: str) -> Handler:
        def handler(req: ApiRequest, group_id: str) -> ApiResponse:
            return self.list_members(req, group_id, segment)

        return handler

    # Nested groups do not occur in the sandbox, so members and transitiveMembers agree.
    # https://learn.microsoft.com/graph/api/group-list-transitivemembers
    # https://learn.microsoft.com/graph/api/group-list-members
    def list_members(self, req: ApiRequest, group_id: str, segment: str) -> ApiResponse:
        for option in ("$filter", "$search", "$orderby"):
            if req.param(option) is not None:
                return graph_error(
                    400, "Request_UnsupportedQuery", f"The sandbox does not implement {option} on {segment}."
                )
        counted = (req.param("$count") or "").lower() == "true"
        if counted and (req.header("consistencylevel") or "").lower() != "eventual":
            return graph_error(
                400, "Request_BadRequest", "$count requires the ConsistencyLevel: eventual header."
            )
        top_text = req.param("$top") or str(DEFAULT_TOP)
        if not top_text.isdigit() or not 1 <= int(top_text) <= MAX_TOP:
            return graph_error(
                400,
                "Request_BadRequest",
                f"Invalid page size specified: '{top_text}'. Must be between 1 and {MAX_TOP} inclusive.",
            )
        top = int(top_text)
        select = parse_select(req)
        after = ""
        if req.param("$skiptoken"):
            try:
                after = str(decode_cursor("members", req.param("$skiptoken") or "")["after"])
            except (InvalidCursor, KeyError):
                return graph_error(400, "Request_BadRequest", "Invalid $skiptoken.")
        with self._org.lock:
            group = self._org.find_entra_group(group_id)
            if group is None:
                return not_found(group_id)
            members = self._org.sorted_entra_members(group_id)
            start = bisect_right(members, after) if after else 0
            chunk = members[start : start + top]
            value = []
            for object_id in chunk:
                user = self._org.user_by_object_id(object_id)
                if user is not None:
                    value.append(user_object(user, select))
            total = len(members)
        selected = f"({','.join(select)})" if select else ""
        body: dict[str, object] = {
            "@odata.context": f"{graph_base(req)}/$metadata#directoryObjects{selected}"
        }
        if counted:
            body["@odata.count"] = total
        if start + len(chunk) < total:
            body["@odata.nextLink"] = f"{graph_base(req)}/groups/{group_id}/{segment}?" + query_string(
                {
                    "$select": ",".join(select) if select else None,
                    "$top": str(top),
                    "$count": "true" if counted else None,
                    "$skiptoken": encode_cursor("members", after=chunk[-1]),
                }
            )
        body["value"] = value
        return graph_json(200, body)

    # https://learn.microsoft.com/graph/api/group-get
    def get_group(self, req: ApiRequest, group_id: str) -> ApiResponse:
        group = self._org.find_entra_group(group_id)
        if group is None:
            return not_found(group_id)
        return graph_json(
            200, {"@odata.context": f"{graph_base(req)}/$metadata#groups/$entity", **group_object(group)}
        )

    # https://learn.microsoft.com/graph/api/user-get
    def get_user(self, req: ApiRequest, user_id: str) -> ApiResponse:
        user = self._org.user_by_object_id(user_id) or self._org.user_by_email(user_id)
        if user is None:
            return not_found(user_id)
        return graph_json(
            200,
            {
                "@odata.context": f"{graph_base(req)}/$metadata#users/$entity",
                **user_object(user, parse_select(req)),
            },
        )

    # https://learn.microsoft.com/graph/api/group-post-members : 204; an existing member is
    # refused with 400 "One or more added object references already exist".
    def add_member(self, req: ApiRequest, group_id: str) -> ApiResponse:
        try:
            body = req.json(allow_empty=False)
        except BadJson as exc:
            return graph_error(400, "Request_BadRequest", str(exc))
        reference = body.get("@odata.id") if isinstance(body, dict) else None
        found = _REFERENCE.search(reference) if isinstance(reference, str) else None
        if found is None:
            return graph_error(
                400, "Request_BadRequest", "Invalid @odata.id: expected .../directoryObjects/{id}."
            )
        object_id = found.group(1)
        try:
            added = self._org.entra_add_member(group_id, object_id, via=VIA_GRAPH)
        except UnknownEntraGroup:
            return not_found(group_id)
        except UnknownEntraObject:
            return not_found(object_id)
        if not added:
            return graph_error(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the "
                "following modified properties: 'members'.",
            )
        return ApiResponse.empty(204)

    # https://learn.microsoft.com/graph/api/group-delete-members : 204; not a member -> 404.
    def remove_member(self, req: ApiRequest, group_id: str, object_id: str) -> ApiResponse:
        try:
            removed = self._org.entra_remove_member(group_id, object_id, via=VIA_GRAPH)
        except UnknownEntraGroup:
            return not_found(group_id)
        except UnknownEntraObject:
            return not_found(object_id)
        return ApiResponse.empty(204) if removed else not_found(object_id)

    # WIRE.md §14: without /$ref, an app holding User.ReadWrite.All deletes the user
    # (https://learn.microsoft.com/graph/api/group-delete-members warns to use /$ref).
    # The sandbox records that mistake as "entra_user_deleted" for tests to catch.
    def delete_member_object(self, req: ApiRequest, group_id: str, object_id: str) -> ApiResponse:
        if self._org.find_entra_group(group_id) is None:
            return not_found(group_id)
        try:
            self._org.entra_delete_user(object_id, via=VIA_GRAPH)
        except UnknownEntraObject:
            return not_found(object_id)
        return ApiResponse.empty(204)
