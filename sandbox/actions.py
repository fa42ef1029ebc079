"""Org audit-log action keys the sandbox emits, in one table so they are easy to change.

UNCONFIRMED: Atlassian documents no list of action keys (WIRE.md §7). Only
``user_logged_in_as_user``, ``jira_issue_viewed`` and ``jira_issue_updated`` are confirmed
by public sources; the keys below are the sandbox's guesses. Clients should load
``GET /v1/orgs/{orgId}/event-actions`` and match on ``displayName``, which is what this
table feeds.
"""

from __future__ import annotations

from typing import NamedTuple


class EventAction(NamedTuple):
    key: str
    display_name: str
    group_display_name: str


USER_ADDED_TO_GROUP = "user_added_to_group"
USER_REMOVED_FROM_GROUP = "user_removed_from_group"
USER_SUSPENDED = "user_access_suspended"
USER_RESTORED = "user_access_restored"
USER_LOGGED_IN = "user_logged_in"
PRODUCT_ACCESS_REQUESTED = "product_access_requested"

EVENT_ACTIONS: dict[str, EventAction] = {
    action.key: action
    for action in (
        EventAction(USER_ADDED_TO_GROUP, "Added user to group", "Group management"),
        EventAction(USER_REMOVED_FROM_GROUP, "Removed user from group", "Group management"),
        EventAction(USER_SUSPENDED, "Suspended user access", "User management"),
        EventAction(USER_RESTORED, "Restored user access", "User management"),
        EventAction(USER_LOGGED_IN, "User logged in", "Authentication"),
        EventAction(PRODUCT_ACCESS_REQUESTED, "Requested product access", "Product access"),
    )
}
