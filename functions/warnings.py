"""Warnings before a revocation and the administrators' run summary (queue `seatwarden-warnings`).

The nightly reconcile queues the warnings in batches spaced to the sender mailbox's rate
(`shared.services.warnings`); each batch is one short invocation here.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions._common import queue_json, with_clients
from shared.bootstrap import App
from shared.services.warnings import MailSetup, NoticeWorker

bp = func.Blueprint()
log = logging.getLogger("seatwarden.functions")

WARNINGS_QUEUE = "seatwarden-warnings"


@bp.queue_trigger(arg_name="msg", queue_name=WARNINGS_QUEUE, connection="AzureWebJobsStorage")
async def send_warnings(msg: func.QueueMessage) -> None:
    """One batch of warnings; the batch that completes the night's job sends the summary."""
    message = queue_json(msg)
    app = App.from_env()
    mail = MailSetup.from_settings(app.settings)

    async def work(atlassian, graph):
        return await NoticeWorker(app.storage, graph, mail, app.clock).apply(message)

    log.info("warnings batch: %s", json.dumps(await with_clients(app, work)))
