"""What every function module shares: JSON answers, and running a service with its clients."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import azure.functions as func

from shared.bootstrap import App

T = TypeVar("T")
log = logging.getLogger("seatwarden.functions")


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def error_response(status: int, message: str) -> func.HttpResponse:
    """A JSON error that says what is wrong, never a stack trace or an internal message."""
    return json_response({"error": message}, status)


def queue_json(msg: func.QueueMessage) -> Any:
    """A queue message's JSON body; one that is not JSON raises `BadMessage`, so it is poisoned."""
    from shared.services.execute import BadMessage

    try:
        return json.loads(msg.get_body().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadMessage(f"queue message {msg.id} is not JSON") from exc


def poisoned(msg: func.QueueMessage, kind: str) -> Any:
    """Log a message the host gave up on (it moved it to the ``-poison`` queue after
    ``maxDequeueCount`` tries), and return its JSON body, or None if it has none.

    Every invocation of a ``record_poisoned_*`` function raises the Azure Monitor alert in
    infra/modules/monitoring.bicep; this log line says which message it was.
    """
    try:
        body = json.loads(msg.get_body().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    what = body.get("type") if isinstance(body, dict) else None
    log.error(
        "poisoned %s message %s (%s) after %s tries", kind, msg.id, what or "not JSON", msg.dequeue_count
    )
    return body


def headers_of(req: func.HttpRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in req.headers.items()}


async def with_clients(app: App, work: Callable[[Any, Any | None], Awaitable[T]]) -> T:
    """Open the Atlassian and Graph clients for one piece of work and always close them."""
    async with app.clients() as (atlassian, graph):
        return await work(atlassian, graph)
