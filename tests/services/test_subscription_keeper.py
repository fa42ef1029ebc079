"""The subscription keeper records what it keeps: Graph's id, resource and expiry, and where
the clientState comes from, never the clientState itself (DESIGN.md, "State")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sandbox import Sandbox
from shared.services.subscriptions import CLIENT_STATE_SETTING, RENEW_WITHIN, REQUESTED_LIFETIME
from tests.services.test_live_check import (
    CLIENT_STATE,
    app_with_storage,
    entra_policy,
    keep_subscriptions,
    policies,
)


async def graph_subscriptions(app: object) -> list[object]:
    graph = app.graph()  # type: ignore[attr-defined]
    try:
        return list(await graph.list_subscriptions())
    finally:
        await graph.aclose()


def test_the_keeper_records_each_subscription_and_its_renewal(
    start_sandbox: Callable[..., Sandbox], azurite: str, table_prefix: str
) -> None:
    sb = start_sandbox(users=40, seed=5, frozen_clock=True)
    app = app_with_storage(sb, azurite, table_prefix)
    file = policies(entra_policy(sb))
    gid = sb.org.entra_group_id("confluence")

    keep_subscriptions(app, file)

    (live,) = asyncio.run(graph_subscriptions(app))
    (recorded,) = app.storage.subscriptions.list()
    assert (recorded.id, recorded.resource, recorded.group_id) == (live.id, f"groups/{gid}", gid)  # type: ignore[attr-defined]
    assert recorded.expires_at == live.expiration_date_time  # type: ignore[attr-defined]
    assert recorded.client_state_ref == CLIENT_STATE_SETTING
    assert CLIENT_STATE not in repr(recorded)

    sb.advance(days=(REQUESTED_LIFETIME - RENEW_WITHIN).days + 1)
    keep_subscriptions(app, file)

    (renewed,) = app.storage.subscriptions.list()
    assert renewed.id == recorded.id
    assert renewed.expires_at - recorded.expires_at >= timedelta(days=28)
