"""The other timers: the Graph subscription keeper and the org events-stream poller."""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from functions._common import with_clients
from shared.bootstrap import App
from shared.services.events_poller import EventsPoller
from shared.services.subscriptions import SubscriptionKeeper

bp = func.Blueprint()
log = logging.getLogger("seatwarden.timers")

# Binding properties the host reads when it indexes the app; both have defaults (NCRONTAB, UTC).
SUBSCRIPTION_KEEPER_SCHEDULE = os.environ.get("SUBSCRIPTION_KEEPER_SCHEDULE", "0 15 */6 * * *")
EVENTS_POLL_SCHEDULE = os.environ.get("EVENTS_POLL_SCHEDULE", "0 */1 * * * *")


@bp.timer_trigger(arg_name="timer", schedule=SUBSCRIPTION_KEEPER_SCHEDULE, use_monitor=True)
async def keep_subscriptions(timer: func.TimerRequest) -> None:
    app = App.from_env()
    public_url = app.settings.require("public_base_url", "Graph must be told where to send notifications")
    client_state = app.settings.require(
        "graph_client_state", "Graph echoes it so we can trust a notification"
    )

    async def work(atlassian, graph):
        if graph is None:
            return {"skipped": "Graph is not configured"}
        keeper = SubscriptionKeeper(
            app.storage, graph, app.clock, app.policies.policies, public_url, client_state
        )
        return await keeper.keep()

    log.info("subscriptions: %s", json.dumps(await with_clients(app, work)))


@bp.timer_trigger(arg_name="timer", schedule=EVENTS_POLL_SCHEDULE, use_monitor=False)
async def poll_org_events(timer: func.TimerRequest) -> None:
    """For orgs without the audit-log webhook: the same classifier over the events stream."""
    app = App.from_env()

    async def work(atlassian, graph):
        return await EventsPoller(app.storage, atlassian).poll()

    log.info("events poll: %s", json.dumps(await with_clients(app, work)))
