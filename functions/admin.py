"""The admin HTTP API, behind function keys: runs, per-user results, approvals, exports, audit, report."""

from __future__ import annotations

import azure.functions as func

from functions._common import error_response, json_response
from shared.bootstrap import App
from shared.report import CONTENT_SECURITY_POLICY, render_report
from shared.services.admin import AdminService, NotApprovable
from shared.services.report import UnknownPolicy, build_report
from shared.store import RunNotFound

bp = func.Blueprint()


def _service() -> tuple[App, AdminService]:
    app = App.from_env()
    return app, AdminService(app.storage, app.clock)


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
