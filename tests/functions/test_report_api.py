"""`GET /api/admin/report`: the HTML report of the runs the nightly function made."""

from __future__ import annotations

import json

import azure.functions as func

from shared.report import CONTENT_SECURITY_POLICY
from tests.functions.conftest import World, run_function


def get_report(params: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET", url="http://127.0.0.1/api/admin/report", headers={}, params=params or {}, body=b""
    )
    response: func.HttpResponse = run_function("report", request)
    return response


def test_the_report_of_every_policy_is_one_html_page_that_may_load_nothing(world: World) -> None:
    world.nightly()
    runs = world.storage.runs.list(limit=20)
    assert {r.policy for r in runs} == {p.name for p in world.policies.policies}

    response = get_report()
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    page = response.get_body().decode("utf-8")
    assert page.startswith("<!doctype html>")
    for policy in world.policies.policies:
        assert f'id="policy-{policy.name}"' in page
        assert f'data-chart="seats-{policy.name}"' in page


def test_a_report_of_one_policy_shows_only_that_policy(world: World) -> None:
    world.nightly()
    page = get_report({"policy": "confluence"}).get_body().decode("utf-8")
    assert 'id="policy-confluence"' in page
    assert 'id="policy-jira-software"' not in page


def test_a_report_of_an_unknown_policy_is_a_404_that_names_it(world: World) -> None:
    response = get_report({"policy": "nope"})
    assert response.status_code == 404
    assert json.loads(response.get_body()) == {"error": "no policy named 'nope'"}
