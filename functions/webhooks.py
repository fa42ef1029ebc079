"""Return events and Entra change notifications: answer fast, enqueue, decide on the queue.

`POST /api/webhooks/atlassian` takes Jira admin webhooks (HMAC-signed) and the org audit-log
webhook (a shared Authorization value); `POST /api/webhooks/graph[/lifecycle]` takes Graph
change notifications. Each verifies, de-duplicates and enqueues within a second (Graph
wants 2xx within 3 s); the queue functions then decide through the ordinary rules.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions._common import error_response, headers_of, json_response, with_clients
from shared.bootstrap import App
from shared.services.entra_sync import EntraSync
from shared.services.returns import EventService
from shared.services.webhooks import (
    BadRequest,
    Unauthorized,
    classify_audit,
    classify_jira,
    parse_graph,
    parse_json,
    verify_authorization,
    verify_jira,
)
from shared.settings import MissingSetting

bp = func.Blueprint()
log = logging.getLogger("seatwarden.webhooks")

RETURNS_QUEUE = "seatwarden-returns"
GRAPH_QUEUE = "seatwarden-graph"


@bp.route(route="webhooks/atlassian", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def atlassian_webhook(req: func.HttpRequest) -> func.HttpResponse:
    app = App.from_env()
    headers = headers_of(req)
    body = req.get_body() or b""
    try:
        if "x-hub-signature" in headers or "x-atlassian-webhook-identifier" in headers:
            secret = app.settings.require("jira_webhook_secret", "Jira admin webhooks are signed with it")
            verify_jira(headers, body, secret)
            payload = parse_json(body)
            event = classify_jira(headers, payload)
            events = [event] if event else []
        else:
            expected = app.settings.require(
                "audit_webhook_authorization", "the org audit-log webhook sends it as Authorization"
            )
            verify_authorization(headers, expected)
            events = classify_audit(parse_json(body))
    except Unauthorized as exc:
        log.warning("atlassian webhook refused: %s", exc)
        return error_response(401, "unauthorized")
    except BadRequest as exc:
        return error_response(400, str(exc))
    except MissingSetting as exc:
        log.error("%s", exc)
        return error_response(503, f"not configured: {exc.name}")
    queued = 0
    for event in events:
        if not app.storage.deliveries.first_time(event.source, event.delivery_id):
            continue
        try:
            app.storage.queues.send("returns", event.to_message())
        except Exception:
            # Not queued: the vendor's retry of this delivery must be a first time again.
            app.storage.deliveries.forget(event.source, event.delivery_id)
            raise
        queued += 1
    return json_response({"accepted": len(events), "queued": queued}, 202 if queued else 200)


@bp.route(route="webhooks/graph", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return _graph(req, lifecycle=False)


@bp.route(route="webhooks/graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_lifecycle_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return _graph(req, lifecycle=True)


def _graph(req: func.HttpRequest, lifecycle: bool) -> func.HttpResponse:
    # The validation handshake: echo the token, URL-decoded, as text/plain within 10 s.
    token = req.params.get("validationToken")
    if token is not None:
        # nosniff: the token is the caller's text, and no browser should read it as a page.
        return func.HttpResponse(
            token, status_code=200, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"}
        )
    app = App.from_env()
    try:
        expected = app.settings.require("graph_client_state", "Graph notifications carry it as clientState")
        notifications, dropped = parse_graph(parse_json(req.get_body() or b""), expected)
    except BadRequest as exc:
        return error_response(400, str(exc))
    except MissingSetting as exc:
        log.error("%s", exc)
        return error_response(503, f"not configured: {exc.name}")
    if dropped:
        log.warning("dropped %d Graph notification(s) with a wrong clientState", dropped)
    for note in notifications:
        app.storage.queues.send(
            "graph",
            {
                "type": "lifecycle" if lifecycle else "change",
                "subscription_id": note.subscription_id,
                "group_id": note.group_id,
                "lifecycle_event": note.lifecycle_event,
            },
        )
    return json_response({"queued": len(notifications), "dropped": dropped}, 202)


@bp.queue_trigger(arg_name="msg", queue_name=RETURNS_QUEUE, connection="AzureWebJobsStorage")
async def handle_return(msg: func.QueueMessage) -> None:
    message = json.loads(msg.get_body().decode("utf-8"))
    app = App.from_env()

    async def work(atlassian, graph):
        service = EventService(app.storage, atlassian, graph, app.clock, app.policies.policies)
        return await service.person_returned(str(message["account_id"]))

    outcome = await with_clients(app, work)
    log.info("return event %s: %s", message.get("delivery_id"), json.dumps(outcome.to_dict()))


@bp.queue_trigger(arg_name="msg", queue_name=GRAPH_QUEUE, connection="AzureWebJobsStorage")
async def handle_graph(msg: func.QueueMessage) -> None:
    message = json.loads(msg.get_body().decode("utf-8"))
    app = App.from_env()

    async def work(atlassian, graph):
        sync = EntraSync(app.storage, atlassian, graph, app.clock, app.policies.policies)
        return await sync.handle(message)

    result = await with_clients(app, work)
    log.info("graph notification %s: %s", message.get("type"), json.dumps(result, default=str))
