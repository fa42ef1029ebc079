"""`GET /api/relicense[?product=<key>]`: a signed-in person takes their license back, at once.

App Service authentication (infra/modules/function.bicep) signs the person in with Entra ID
and passes their claims in X-MS-CLIENT-PRINCIPAL; the function is anonymous to the Functions
host for that reason, and refuses by itself when there is no principal (401), when the
principal cannot be read (400), or when App Service authentication is not in front of the app
(503). None of these changes anything. Otherwise the self-service return decides through the
ordinary rules and the page says what happened (shared/services/selfservice.py).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import azure.functions as func

from functions._common import headers_of, with_clients
from shared import pages
from shared.bootstrap import App
from shared.config import PolicyError
from shared.errors import SeatwardenError
from shared.model import SnapshotError
from shared.services.selfservice import BadPrincipal, Principal, SelfService, UnknownProduct
from shared.settings import MissingSetting

bp = func.Blueprint()
log = logging.getLogger("seatwarden.selfservice")

#: A personal page: never cached, never framed, no scripts, nothing sent on to other sites.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page_response(page: pages.Page) -> func.HttpResponse:
    return func.HttpResponse(
        page.render(),
        status_code=page.status,
        mimetype="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def _path_and_query(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route(route="relicense", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def relicense(req: func.HttpRequest) -> func.HttpResponse:
    app = App.from_env()
    contact = app.settings.help_contact
    here = _path_and_query(req)
    if not app.settings.easy_auth_enabled:
        log.error("self-service: App Service authentication is not enabled (WEBSITE_AUTH_ENABLED); refused")
        return page_response(pages.not_configured(contact))
    try:
        principal = Principal.from_headers(headers_of(req))
    except BadPrincipal as exc:
        log.warning("self-service: refused a principal header: %s", exc)
        return page_response(pages.bad_principal(contact, here))
    if principal is None:
        return page_response(pages.not_signed_in(contact, here))
    product = (req.params.get("product") or "").strip() or None

    async def work(atlassian, graph):
        service = SelfService(
            app.storage, atlassian, graph, app.clock, app.policies.policies, app.settings.entra_tenant_id
        )
        return await service.relicense(principal, product)

    try:
        result = await with_clients(app, work)
    except UnknownProduct as exc:
        return page_response(pages.unknown_product(exc, contact))
    except (MissingSetting, PolicyError) as exc:
        log.error("self-service: not configured: %s", exc)
        return page_response(pages.not_configured(contact))
    except (SeatwardenError, SnapshotError) as exc:
        # Nothing half-done: the executor raises before its audit entry, and a retry is safe.
        log.warning("self-service for %s failed: %s", principal.label, exc)
        return page_response(pages.try_again(contact))
    return page_response(pages.result_page(result, contact))
