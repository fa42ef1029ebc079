"""Function keys on the admin API, and each anonymous route authenticating by itself.

Read from the registered app's function metadata, the bindings the Functions host indexes
(`authLevel` of each httpTrigger), not from the decorators' source. A new HTTP route fails
`test_every_http_route_is_classified` until someone decides, here, who may call it.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

import function_app
from sandbox.funcserver import registered

KEYED = (func.AuthLevel.FUNCTION, func.AuthLevel.ADMIN)

#: Routes the host lets anyone call, and what checks the caller instead of a function key
#: (the vendors prove their deliveries their own way, and people signing in hold no key).
ANONYMOUS_BECAUSE = {
    "health": "says only whether settings are present, never their values",
    "webhooks/atlassian": "X-Hub-Signature (HMAC), or the audit-log webhook's Authorization",
    "webhooks/graph": "Graph's validation handshake, then clientState on every notification",
    "webhooks/graph/lifecycle": "the same as webhooks/graph",
    "relicense": "App Service authentication signs people in with Entra ID (infra/modules/function.bicep)",
}


def http_functions() -> dict[str, Any]:
    """Route to the httpTrigger binding as the host reads it (its JSON dict)."""
    found: dict[str, Any] = {}
    for function in registered(function_app.app):
        trigger = function.get_trigger()
        if getattr(trigger, "route", None) is None:
            continue
        binding = trigger.get_dict_repr()
        found.setdefault(trigger.route.strip("/"), []).append((function.get_function_name(), binding))
    return found


def test_every_admin_route_needs_a_function_key() -> None:
    admin = {route: fs for route, fs in http_functions().items() if route.startswith("admin/")}
    assert len(admin) >= 6
    for route, functions in admin.items():
        for name, binding in functions:
            assert binding["authLevel"] in {level.value for level in KEYED} | set(KEYED), (
                route,
                name,
                binding,
            )


def test_only_the_listed_routes_are_anonymous_each_for_its_reason() -> None:
    anonymous = {
        route
        for route, functions in http_functions().items()
        for _, binding in functions
        if binding["authLevel"] == func.AuthLevel.ANONYMOUS
    }
    assert anonymous == set(ANONYMOUS_BECAUSE)


def test_every_http_route_is_classified() -> None:
    for route in http_functions():
        assert route.startswith("admin/") or route in ANONYMOUS_BECAUSE, f"who may call {route}?"


def test_the_app_default_is_a_function_key() -> None:
    """A route registered without an auth level gets the app's, so a forgotten one is keyed."""
    assert function_app.app.auth_level == func.AuthLevel.FUNCTION
