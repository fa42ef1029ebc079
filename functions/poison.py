"""The poison queues of the work that needs no more than a record when it is given up on.

A return or an Entra change that failed five times is caught up by the next nightly run, a
warning not sent is not repeated (shared/services/warnings.py), a plan preview can be asked
for again. Each is logged at error level, and each invocation raises the poison alert
(infra/modules/monitoring.bicep). Actions and lookups have their own handlers
(functions/reconcile.py): those count against a run.
"""

from __future__ import annotations

import azure.functions as func

from functions._common import poisoned
from functions.admin import PREVIEWS_QUEUE
from functions.warnings import WARNINGS_QUEUE
from functions.webhooks import GRAPH_QUEUE, RETURNS_QUEUE
from shared.store.queues import POISON_SUFFIX

bp = func.Blueprint()

_CONNECTION = "AzureWebJobsStorage"


@bp.queue_trigger(arg_name="msg", queue_name=RETURNS_QUEUE + POISON_SUFFIX, connection=_CONNECTION)
def record_poisoned_return(msg: func.QueueMessage) -> None:
    poisoned(msg, "returns")


@bp.queue_trigger(arg_name="msg", queue_name=GRAPH_QUEUE + POISON_SUFFIX, connection=_CONNECTION)
def record_poisoned_graph_change(msg: func.QueueMessage) -> None:
    poisoned(msg, "graph")


@bp.queue_trigger(arg_name="msg", queue_name=WARNINGS_QUEUE + POISON_SUFFIX, connection=_CONNECTION)
def record_poisoned_warnings(msg: func.QueueMessage) -> None:
    poisoned(msg, "warnings")


@bp.queue_trigger(arg_name="msg", queue_name=PREVIEWS_QUEUE + POISON_SUFFIX, connection=_CONNECTION)
def record_poisoned_preview(msg: func.QueueMessage) -> None:
    poisoned(msg, "previews")
