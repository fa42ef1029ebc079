"""The admin HTTP API, behind function keys: plan previews, runs, per-user results, approvals,
exports, audit, the HTML report; and the queue function that makes a requested preview."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions._common import error_response, json_response, with_clients
from shared.bootstrap import App
from shared.report import CONTENT_SECURITY_POLICY, render_report
from shared.services.admin import AdminService, NotApprovable
from shared.services.execute import BadMessage
from shared.services.report import UnknownPolicy, build_report
from shared.store import RunNotFound
from shared.untrusted import Unreadable, load_json

bp = func.Blueprint()
log = logging.getLogger("seatwarden.admin")

PREVIEWS_QUEUE = "seatwarden-previews"


def _service() -> tuple[App, AdminService]:
    app = App.from_env()
    return app, AdminService(app.storage, app.clock)


@bp.route(route="admin/plan", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def request_preview(req: func.HttpRequest) -> func.HttpResponse:
    """Ask for a dry run now: `{"policies": [names]}` or no body for all. Answers 202 at once.

    Reading a large org takes longer than an HTTP call may last, so the preview is made by a
    queue function; it is saved as a `report` run, which `GET admin/plan?policy=` returns.
    """
    app = App.from_env()
    raw = req.get_body() or b""
    try:
        body = load_json(raw) if raw.strip() else {}
    except Unreadable as exc:
        return error_response(400, f"the body is {exc}")
    if not isinstance(body, dict) or set(body) - {"policies"}:
        # A typo ({"polices": ...}) must not quietly mean every policy.
        return error_response(400, 'expected {"policies": [names]}, or no body for every policy')
    names = body.get("policies")
    known = [p.name for p in app.policies.policies]
    if names is None:
        names = known
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return error_response(400, "policies must be a list of policy names")
    unknown = sorted(set(names) - set(known))
    if unknown:
        return error_response(400, f"no policy named {', '.join(unknown)}; known: {', '.join(known)}")
    requested_by = req.headers.get("x-ms-client-principal-name") or "admin-api"
    app.storage.queues.send_many("previews", [{"type": "preview", "policies": names, "by": requested_by}])
    return json_response({"queued": names, "result": "GET /api/admin/plan?policy=<name>"}, 202)


@bp.route(route="admin/plan", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def show_plan(req: func.HttpRequest) -> func.HttpResponse:
    """The newest plan of a policy: its run and every action with its reason and facts."""
    app = App.from_env()
    policy = req.params.get("policy")
    if not policy:
        return error_response(400, "give ?policy=<name>")
    newest = app.storage.runs.list(policy=policy, limit=1)
    if not newest:
        return error_response(404, f"no runs of policy {policy} yet: POST admin/plan to make one")
    run = newest[0]
    actions = [r for r in app.storage.results.rows(run.run_id) if r["action_id"]]
    return json_response({"run": run.to_dict(), "actions": actions})


@bp.queue_trigger(arg_name="msg", queue_name=PREVIEWS_QUEUE, connection="AzureWebJobsStorage")
async def make_preview(msg: func.QueueMessage) -> None:
    """A requested dry run: plan the named policies in report mode and change nothing.

    People whose activity would need a lookup tonight are left out (unknown), so a preview
    never waits hours for lookups; it shows what is known now.
    """
    from shared.services.reconcile import Reconciler

    try:
        message = json.loads(msg.get_body().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadMessage(f"preview message {msg.id} is not JSON") from exc
    if not isinstance(message, dict) or message.get("type") != "preview":
        raise BadMessage(f"not a preview message: {msg.id}")
    app = App.from_env()
    names = set(message.get("policies") or ())
    chosen = [p for p in app.policies.policies if p.name in names]

    async def work(atlassian, graph):
        return await Reconciler(app.storage, atlassian, graph, app.clock, holder="preview").run(
            chosen, mode="report", enqueue=False, lookups="skip"
        )

    report = await with_clients(app, work)
    for outcome in report.outcomes:
        log.info("preview for %s: %s", message.get("by"), json.dumps(outcome.to_dict(), default=str))


@bp.route(route="admin/runs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    app, _ = _service()
    try:
        limit = min(int(req.params.get("limit", "20")), 200)
    except ValueError:
        return error_response(400, "limit must be a number")
    runs = app.storage.runs.list(policy=req.params.get("policy"), limit=limit)
    return json_response([r.to_dict() for r in runs])


@bp.route(route="admin/runs/{run_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def show_run(req: func.HttpRequest) -> func.HttpResponse:
    app, admin = _service()
    run_id = req.route_params.get("run_id", "")
    try:
        run = admin.run(run_id)
    except RunNotFound:
        return error_response(404, f"no run {run_id}")
    return json_response({"run": run.to_dict(), "results": app.storage.results.rows(run_id)})


@bp.route(route="admin/runs/{run_id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def approve_run(req: func.HttpRequest) -> func.HttpResponse:
    _, admin = _service()
    run_id = req.route_params.get("run_id", "")
    approver = req.headers.get("x-ms-client-principal-name") or "admin-api"
    try:
        count = admin.approve(run_id, f"api:{approver}")
    except RunNotFound:
        return error_response(404, f"no run {run_id}")
    except NotApprovable as exc:
        return error_response(409, str(exc))
    return json_response({"run_id": run_id, "enqueued": count}, 202)


@bp.route(route="admin/runs/{run_id}/idp-csv", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def idp_csv(req: func.HttpRequest) -> func.HttpResponse:
    _, admin = _service()
    run_id = req.route_params.get("run_id", "")
    try:
        files = admin.idp_csv(run_id)
    except RunNotFound:
        return error_response(404, f"no run {run_id}")
    group = req.params.get("group")
    if group is None:
        return json_response({"groups": sorted(files)})
    if group not in files:
        return error_response(404, f"no removals for group {group} in run {run_id}")
    return func.HttpResponse(files[group], status_code=200, mimetype="text/csv")


@bp.route(route="admin/audit", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def audit(req: func.HttpRequest) -> func.HttpResponse:
    app, _ = _service()
    entries = app.storage.audit.query(
        account_id=req.params.get("account"), action=req.params.get("action"), limit=500
    )
    return json_response([e.to_dict() for e in entries])


@bp.route(route="admin/report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def report(req: func.HttpRequest) -> func.HttpResponse:
    """The HTML report, of every policy or of `?policy=NAME`."""
    app = App.from_env()
    try:
        data = build_report(app.storage, app.policies, app.clock(), policy=req.params.get("policy"))
    except UnknownPolicy as exc:
        return error_response(404, str(exc))
    return func.HttpResponse(
        render_report(data),
        status_code=200,
        mimetype="text/html",
        charset="utf-8",
        # The page loads nothing; the header says so to browsers that get it from here.
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
