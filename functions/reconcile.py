"""The nightly reconcile (timer), its lookups and the action executor (queues), with their poison queues."""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from functions._common import poisoned, queue_json, with_clients
from shared.bootstrap import App
from shared.services.execute import BadMessage, Executor
from shared.services.lookups import LookupWorker
from shared.services.reconcile import Reconciler
from shared.services.warnings import MailSetup

bp = func.Blueprint()
log = logging.getLogger("seatwarden.functions")

#: Queue names; tests and the CLI use the same ones through shared.store.
ACTIONS_QUEUE = "seatwarden-actions"
LOOKUPS_QUEUE = "seatwarden-lookups"

# The schedule is a binding property the host reads when it indexes the app, so it is the one
# setting read at import; it has a default, so indexing never needs it (NCRONTAB, UTC).
RECONCILE_SCHEDULE = os.environ.get("RECONCILE_SCHEDULE", "0 0 2 * * *")


@bp.timer_trigger(arg_name="timer", schedule=RECONCILE_SCHEDULE, use_monitor=True, run_on_startup=False)
async def nightly_reconcile(timer: func.TimerRequest) -> None:
    app = App.from_env()
    if timer.past_due:
        log.warning("nightly reconcile is running late (past due)")
    mail = MailSetup.from_settings(app.settings)

    async def work(atlassian, graph):
        # Lookups go onto a queue in paced batches; the plan follows when they are done.
        return await Reconciler(app.storage, atlassian, graph, app.clock, holder="timer", mail=mail).run(
            app.policies, lookups="queue"
        )

    report = await with_clients(app, work)
    for outcome in report.outcomes:
        log.info("reconcile %s", json.dumps(outcome.to_dict(), default=str))


@bp.queue_trigger(arg_name="msg", queue_name=LOOKUPS_QUEUE, connection="AzureWebJobsStorage")
async def look_up_activity(msg: func.QueueMessage) -> None:
    """One batch of last-active lookups; the batch that empties the queue starts the plan."""
    message = json.loads(msg.get_body().decode("utf-8"))
    if message.get("type") != "lookups":
        raise BadMessage(f"not a lookups message: {message.get('type')!r}")
    app = App.from_env()

    async def work(atlassian, graph):
        worker = LookupWorker(app.storage, atlassian, app.clock)
        counts = await worker.apply(message)
        if worker.batch_done(message):
            counts["planned"] = await _plan_after_lookups(app, atlassian, graph)
        return counts

    log.info("lookups batch: %s", json.dumps(await with_clients(app, work)))


@bp.queue_trigger(arg_name="msg", queue_name=LOOKUPS_QUEUE + "-poison", connection="AzureWebJobsStorage")
async def record_poisoned_lookups(msg: func.QueueMessage) -> None:
    """A lookups batch the host gave up on: its people stay unknown tonight (left alone), and
    it still counts against its job, so the last batch starts the plan for everyone else."""
    message = poisoned(msg, "lookups")
    if not isinstance(message, dict) or message.get("type") != "lookups":
        return
    app = App.from_env()

    async def work(atlassian, graph):
        worker = LookupWorker(app.storage, atlassian, app.clock)
        if worker.batch_done(message, outcome="poisoned"):
            return await _plan_after_lookups(app, atlassian, graph)
        return 0

    log.info("poisoned lookups batch counted; %s policies planned", await with_clients(app, work))


async def _plan_after_lookups(app: App, atlassian, graph) -> int:
    """The pass after the lookups queue: plan every policy, with what the lookups found."""
    mail = MailSetup.from_settings(app.settings)
    report = await Reconciler(app.storage, atlassian, graph, app.clock, holder="lookups", mail=mail).run(
        app.policies, lookups="skip"
    )
    return len(report.outcomes)


@bp.queue_trigger(arg_name="msg", queue_name=ACTIONS_QUEUE, connection="AzureWebJobsStorage")
async def execute_action(msg: func.QueueMessage) -> None:
    """Apply one action. Transient errors raise, so the host retries and then poisons it."""
    message = queue_json(msg)
    app = App.from_env()

    async def work(atlassian, graph):
        return await Executor(app.storage, atlassian, graph, app.clock).apply(message)

    await with_clients(app, work)


@bp.queue_trigger(arg_name="msg", queue_name=ACTIONS_QUEUE + "-poison", connection="AzureWebJobsStorage")
def record_poisoned_action(msg: func.QueueMessage) -> None:
    """After the last try the host moves the message here: record it against its run."""
    message = poisoned(msg, "actions")
    try:
        run_id = str(message.get("run_id") or "")
        account_id = str(message["action"]["account_id"])
    except (KeyError, TypeError, AttributeError):
        return
    if run_id:
        app = App.from_env()
        app.storage.results.set_outcome(
            run_id, account_id, "poisoned", f"gave up after {msg.dequeue_count} tries"
        )
        app.storage.runs.record_outcome(run_id, "poisoned")
