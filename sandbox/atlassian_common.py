"""What every Atlassian Organizations API endpoint shares: paths, the error body, the
API-key guard, limits and the ``{"message"}`` answer.

Errors are ``{"errors": [{"id", "status" (a string), "code", "title", "detail"}]}``
(WIRE.md §6; https://developer.atlassian.com/cloud/admin/organization/rest/intro/).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .org import Org
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


def api_key_guard(org: Org, api_key: str) -> Callable[[Handler], Handler]:
    """Wrap handlers so they run only for the org's API key, its org id and (on v2 paths)
    its directory (``-`` meaning all of them); 401 or 404 in Atlassian's shape otherwise."""

    def guard(handler: Handler) -> Handler:
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
            directory = params.pop("directory_id", None)
            if directory is not None and directory not in ("-", org.identity.directory_id):
                return atlassian_error(
                    404, "ADMIN-404-1", "Directory not found", f"No directory with id {directory}."
                )
            return handler(req, **params)

        return guarded

    return guard
