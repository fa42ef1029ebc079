"""Shapes shared by the Graph endpoints: the error body, JSON responses, user objects.

Graph errors are ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}``; clients branch on ``code`` (WIRE.md §18,
https://learn.microsoft.com/graph/errors).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .model import EntraGroup, User
from .rights import Rights
from .routing import ApiRequest, ApiResponse
from .timeutil import UTC

GRAPH_PREFIX = "/v1.0"
JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)

# What GET /users/{id} returns without $select: accountEnabled is not among them
# (https://learn.microsoft.com/graph/api/resources/user#properties).
USER_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


def graph_base(req: ApiRequest) -> str:
    return f"{req.base_url}{GRAPH_PREFIX}"


def graph_json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
    return ApiResponse.json(status, payload, headers=headers, content_type=JSON_TYPE)


def graph_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    return graph_json(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        },
        headers,
    )


def not_found(object_id: str) -> ApiResponse:
    """Graph's answer for an unknown object or a missing reference (WIRE.md §14)."""
    return graph_error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried "
        "reference-property objects are not present.",
    )


def parse_select(req: ApiRequest) -> list[str] | None:
    raw = req.param("$select")
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def user_object(user: User, select: list[str] | None) -> dict[str, Any]:
    """A user as Graph renders it: default properties, or just what ``$select`` names."""
    given, _, surname = user.name.partition(" ")
    full: dict[str, Any] = {
        "businessPhones": [],
        "displayName": user.name,
        "givenName": given or None,
        "jobTitle": user.job_title,
        "mail": user.email,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.entra_object_id,
        "accountEnabled": user.account_enabled,
        "department": user.department,
    }
    wanted = select if select is not None else USER_DEFAULT_PROPERTIES
    rendered: dict[str, Any] = {"@odata.type": "#microsoft.graph.user"}
    rendered.update({name: full[name] for name in wanted if name in full})
    rendered["id"] = user.entra_object_id
    return rendered


def group_object(group: EntraGroup) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": group.id,
        "displayName": group.display_name,
        "description": None,
        "groupTypes": [],
        "mailEnabled": False,
        "securityEnabled": True,
    }


def query_string(params: Mapping[str, str | None]) -> str:
    """A query string that keeps ``$`` and ``,`` readable, as Graph's links do."""
    return "&".join(
        f"{name}={quote(value, safe=',$')}" for name, value in params.items() if value is not None
    )


# Application permissions that let an app call each endpoint, least privileged first, from
# each API page's "Permissions" table on learn.microsoft.com/graph/api/…
READ_MEMBERS = (  # group-list-transitivemembers, group-list-members, group-delta, group-get
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
WRITE_MEMBERS = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
READ_USERS = ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All")
DELETE_USERS = ("User.ReadWrite.All", "Directory.ReadWrite.All")  # what a member DELETE without /$ref needs
SEND_MAIL = ("Mail.Send",)
# subscription-post-subscriptions: a subscription on groups takes Group.Read.All; listing,
# renewing and deleting take "the original permission required to create the subscription"
# (subscription-list).
GROUP_SUBSCRIPTIONS = ("Group.Read.All", "Group.ReadWrite.All")


class GraphPermissions(Rights):
    """The application permissions granted (with admin consent) to the sandbox's app.

    ``None``, the default, grants every permission Seatwarden uses. Real Graph reads them from
    the ``roles`` claim of a token, so a change there applies to tokens issued after it; the
    sandbox applies a change to the next request.
    """

    def refusal(self, any_of: tuple[str, ...]) -> ApiResponse | None:
        """Graph's 403 when none of ``any_of`` is granted (https://learn.microsoft.com/graph/errors)."""
        granted = self.get()
        if granted is None or not any_of or granted & set(any_of):
            return None
        return graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
