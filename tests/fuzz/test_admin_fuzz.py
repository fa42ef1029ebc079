"""Bad input against the admin API: never a 5xx, and nothing but a requested preview is written.

Function keys keep strangers out (tests/security); this is about an administrator's, or a
script's, malformed request: odd run ids, query values and bodies.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.demo import drain
from tests.fuzz import strategies as s
from tests.fuzz.conftest import Fuzzed, fuzz_settings, tried

#: Each admin function, its method and route, and the query parameters it reads.
ADMIN_ROUTES = {
    "request_preview": ("POST", "admin/plan", ()),
    "show_plan": ("GET", "admin/plan", ("policy",)),
    "list_runs": ("GET", "admin/runs", ("limit", "policy")),
    "show_run": ("GET", "admin/runs/{run_id}", ()),
    "approve_run": ("POST", "admin/runs/{run_id}/approve", ()),
    "idp_csv": ("GET", "admin/runs/{run_id}/idp-csv", ("group",)),
    "audit": ("GET", "admin/audit", ("account", "action")),
    "report": ("GET", "admin/report", ("policy",)),
}

#: Query and route values: near the real ones (RUN and POLICY are put in at run time) and not.
VALUES = st.one_of(
    st.sampled_from(
        ["RUN", "RUN0", "RUN/", "POLICY", "POLICY ", "Confluence", "-1", "0", "1e3", "99999999999999999999"]
    ),
    st.sampled_from(["'", "' or 1 eq 1 or '", "%27", "a/b#c?d", "\u0000", "\u00b2" * 13, "9" * 5000]),
    st.text(max_size=30),
)


@pytest.fixture(scope="module")
def run_id(fuzzed: Fuzzed) -> str:
    """A real saved run (a preview in report mode), so run ids near it reach the tables."""
    world = fuzzed.world
    world.storage.queues.send("previews", {"type": "preview", "policies": ["confluence"], "by": "fuzz"})
    drain(world.app, "previews", "make_preview")
    return str(world.storage.runs.list(policy="confluence", limit=1)[0].run_id)


def admin_request(name: str, params: dict[str, str], run: str, body: bytes, headers: dict[str, str]) -> Any:
    method, route, _ = ADMIN_ROUTES[name]
    return func.HttpRequest(
        method=method,
        url="http://127.0.0.1/api/" + route.replace("{run_id}", run),
        headers=headers,
        params=params,
        route_params={"run_id": run} if "{run_id}" in route else {},
        body=body,
    )


@fuzz_settings(400)
@given(data=st.data())
def test_admin_routes_answer_bad_requests_clearly_and_write_nothing(
    fuzzed: Fuzzed, run_id: str, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(ADMIN_ROUTES)))

    def real(value: str) -> str:
        return value.replace("RUN", run_id).replace("POLICY", "confluence")

    wanted = ADMIN_ROUTES[name][2]
    params = {
        k: real(v) for k, v in data.draw(st.dictionaries(st.sampled_from(wanted or ("x",)), VALUES)).items()
    }
    run = real(data.draw(VALUES))
    policies = st.fixed_dictionaries({"policies": s.often(st.lists(st.sampled_from(["confluence", "nope"])))})
    body = data.draw(s.bodies(s.often(policies)) | st.just(b""))
    request = admin_request(name, params, run, body, data.draw(s.headers()))

    response = fuzzed.call(name, request)
    tried(f"admin API: {name}", response.status_code)
    if response.status_code >= 400:
        fuzzed.refused_clearly(response)
    elif name == "request_preview":
        assert response.status_code == 202
        assert (fuzzed.writes.queue_sends, fuzzed.writes.table_writes) == (1, 0)
    else:
        assert fuzzed.writes.requests == [], f"{name} wrote: {fuzzed.writes.requests}"


def test_no_admin_read_changes_anything(fuzzed: Fuzzed, run_id: str) -> None:
    """Every GET route, approve of a run that is not held, and previews asked for in hostile
    bodies: no state change."""
    with fuzzed.unchanged():
        for name, (_, _, wanted) in ADMIN_ROUTES.items():
            if name == "request_preview":
                continue
            for value in (run_id, run_id + "0", "'", "", "9" * 5000):
                params = dict.fromkeys(wanted, value)
                response = fuzzed.call(name, admin_request(name, params, value, b"", {}))
                tried(f"admin API: {name}", response.status_code)
                if response.status_code >= 400:
                    fuzzed.refused_clearly(response)
        for body in s.HOSTILE_BODIES:
            if not body.strip():  # no body: a preview of every policy, rightly queued
                continue
            response = fuzzed.call("request_preview", admin_request("request_preview", {}, "", body, {}))
            tried("admin API: request_preview, hostile bodies", response.status_code)
            fuzzed.refused_clearly(response)
    # A report run is not held: approving it is refused and says why.
    refused = fuzzed.call("approve_run", admin_request("approve_run", {}, run_id, b"", {}))
    assert refused.status_code == 409 and "not held" in json.loads(refused.get_body())["error"]
