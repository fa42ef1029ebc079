"""`GET /api/health`: is the app indexed and are its settings present (never their values)."""

from __future__ import annotations

import json

import azure.functions as func

from shared.config import PolicyError, load_policy_from_settings
from shared.settings import Settings

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    settings = Settings.from_env()
    checks = {
        "atlassian": bool(settings.atlassian_org_id and settings.atlassian_api_key),
        "graph": settings.graph_configured,
        "storage": bool(settings.storage_connection or settings.storage_account),
    }
    try:
        load_policy_from_settings()
        checks["policy"] = True
    except PolicyError:
        checks["policy"] = False
    status = 200 if all(checks.values()) else 503
    return func.HttpResponse(
        json.dumps({"ok": status == 200, "configured": checks}),
        status_code=status,
        mimetype="application/json",
    )
