"""What every Atlassian Organizations API endpoint shares: paths, the error body, the
API-key guard (with the key's scopes), limits and the ``{"message"}`` answer.

Errors are ``{"errors": [{"id", "status" (a string), "code", "title", "detail"}]}``
(WIRE.md §6; https://developer.atlassian.com/cloud/admin/organization/rest/intro/).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .org import Org
from .rights import Rights
from .routing import ApiRequest, ApiResponse, Handler

V2 = "/admin/v2/orgs/{org_id}"
V1 = "/admin/v1/orgs/{org_id}"
DIRECTORY = V2 + "/directories/{directory_id}"


def atlassian_error(
    status: int, code: str, title: str, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    """The Organizations API error body; ``status`` goes out as a string."""
    return ApiResponse.json(
        status,
        {
            "errors": [
                {
                    "id": str(uuid.uuid4()),
                    "status": str(status),
                    "code": code,
                    "title": title,
                    "detail": detail,
                }
            ]
        },
        headers=headers,
    )


def message_response(text: str) -> ApiResponse:
    # v1 suspend/restore moved from 204 to 200 + {"message"} (WIRE.md §5, Admin changelog
    # https://developer.atlassian.com/cloud/admin/changelog/); v2 is typed void upstream.
    return ApiResponse.json(200, {"message": text})


def parse_limit(raw: Any, default: int, maximum: int) -> int | ApiResponse:
    """A page size: ``default`` when absent, capped at ``maximum``, 400 when not positive."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or isinstance(raw, bool):
        return atlassian_error(400, "ADMIN-400-24", "Invalid limit", "limit must be a positive integer.")
    return min(value, maximum)


#: The scope a key *with* scopes needs per endpoint family. Atlassian lets an org API key be
#: created with or without scopes (https://developer.atlassian.com/cloud/admin/scopes/); the
#: v2 directory reads name ``read:directories:admin`` (jira.js ``src/admin/api/users.ts``).
#: UNCONFIRMED, sandbox choices: last-active dates take ``read:directories:admin`` too, the
#: events API ``read:events:admin`` (https://jira.atlassian.com/browse/AX-712 asks for that
#: scope because the events API took only keys without scopes), and the v2 membership and
#: suspend/restore writes, for which Atlassian documents no scope, take only a key without
#: scopes (``None`` below), as https://jira.atlassian.com/browse/AX-1798 describes for the
#: user and group endpoints.
READ_DIRECTORIES = "read:directories:admin"
READ_EVENTS = "read:events:admin"
ONLY_WITHOUT_SCOPES: str | None = None


class ApiKeyScopes(Rights):
    """The org API key's scopes: ``None`` is a key without scopes, which may call everything.

    Changeable while serving (``Sandbox.set_api_key_scopes``), as an admin replacing the key
    with a scoped one would.
    """

    def refusal(self, needed: str | None) -> ApiResponse | None:
        """403 when a key with scopes lacks ``needed`` (or ``needed`` takes only a key without)."""
        scopes = self.get()
        if scopes is None or (needed is not None and needed in scopes):
            return None
        # The code and wording are the sandbox's choice; WIRE.md §6 lists no scope error.
        detail = (
            f"The API key does not have the scope this operation requires: {needed}."
            if needed is not None
            else "This operation accepts only an API key without scopes."
        )
        return atlassian_error(403, "ADMIN-403-1", "Forbidden", detail)


Guard = Callable[[Handler, str | None], Handler]


def api_key_guard(org: Org, api_key: str, scopes: ApiKeyScopes) -> Guard:
    """Wrap handlers so they run only for the org's API key, its org id and (on v2 paths)
    its directory (``-`` meaning all of them), and, for a key with scopes, only when it has
    the scope the endpoint needs; 401, 404 or 403 in Atlassian's shape otherwise."""

    def guard(handler: Handler, needed: str | None) -> Handler:
        def guarded(req: ApiRequest, org_id: str, **params: str) -> ApiResponse:
            token = req.bearer_token()
            if token is None or not secrets.compare_digest(token, api_key):
                # The code is the sandbox's choice ("ADMIN-401-1"); WIRE.md §6 lists none.
                return atlassian_error(
                    401, "ADMIN-401-1", "Unauthorized", "The API key is missing or not valid for this org."
                )
            if org_id != org.org_id:
                return atlassian_error(
                    404, "ADMIN-404-2", "Organization not found", f"No organization with id {org_id}."
                )
            refused = scopes.refusal(needed)
            if refused is not None:
                return refused
            directory = params.pop("directory_id", None)
            if directory is not None and directory not in ("-", org.identity.directory_id):
                return atlassian_error(
                    404, "ADMIN-404-1", "Directory not found", f"No directory with id {directory}."
                )
            return handler(req, **params)

        return guarded

    return guard
