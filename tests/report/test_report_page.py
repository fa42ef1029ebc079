"""The report as an administrator sees it: served by the admin function, rendered by Chromium.

Weeks of nights on the sandbox (tests/report/history.py), the report fetched over loopback
from `GET /api/admin/report` as the Functions host would serve it, and every assertion made on
the page Chromium rendered with scripts off. Screenshots and a PDF go to out/test-artifacts/.

Without Debian's chromium the test is skipped with how to install it; under `make test`
(SEATWARDEN_REQUIRE_BROWSER=1, which also installs it) it fails instead, so CI proves something.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from shared.forecast import Due
from tests.report.browser import CHROMIUM, Chromium
from tests.report.history import History, report_history

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
SEAT_PRICE = 6.05  # the demo policies' price, which the history uses


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    if not Path(CHROMIUM).exists():
        message = (
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) "
            "or run `make test`, which installs it"
        )
        if os.environ.get("SEATWARDEN_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with Chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def history(azurite: str) -> Iterator[History]:
    with report_history(azurite, "t" + uuid.uuid4().hex[:10]) as history:
        yield history


@pytest.fixture(scope="module")
def page(chromium: Chromium, history: History) -> Any:
    page = chromium.page(1280, 900)
    page.load(f"{history.base_url}/api/admin/report")
    page.settle()
    page.screenshot(ARTIFACTS / "report.png")
    page.pdf(ARTIFACTS / "report.pdf")
    return page


def boxes(page: Any, selector: str) -> list[dict[str, float]]:
    return list(
        page.evaluate(
            f"[...document.querySelectorAll({selector!r})].map(e => {{"
            "const r = e.getBoundingClientRect(); return {width: r.width, height: r.height}; })"
        )
    )


def texts(page: Any, selector: str) -> list[str]:
    return list(page.evaluate(f"[...document.querySelectorAll({selector!r})].map(e => e.textContent.trim())"))


def test_each_policy_has_a_visible_seat_bar_and_an_action_column_per_run(page: Any, history: History) -> None:
    for policy, run_ids in history.runs.items():
        bars = boxes(page, f'svg[data-chart="seats-{policy}"] rect.bar')
        assert len(bars) == len(run_ids), policy
        assert all(b["width"] > 4 and b["height"] > 4 for b in bars), bars
        columns = boxes(page, f'svg[data-chart="actions-{policy}"] g.column')
        assert len(columns) == len(run_ids), policy
        assert any(c["height"] > 4 for c in columns)
        stacks = boxes(page, f'svg[data-chart="actions-{policy}"] rect.bar')
        assert stacks and all(s["width"] > 4 for s in stacks)
        idle = boxes(page, f'svg[data-chart="idle-{policy}"] rect.bar')
        assert idle and max(b["height"] for b in idle) > 50


def test_the_held_run_is_listed_with_how_to_approve_it(page: Any, history: History) -> None:
    (held,) = texts(page, "li.held-run:not(.superseded)")
    assert "Confluence" in held
    assert f"seatwarden approve {history.held_run}" in held
    assert f"POST /api/admin/runs/{history.held_run}/approve" in held
    assert "exceed the limit" in held


def test_an_older_held_run_is_marked_superseded_and_offers_no_approval(page: Any, history: History) -> None:
    (older,) = texts(page, "li.held-run.superseded")
    assert history.superseded_run in older and "can no longer be approved" in older
    assert "seatwarden approve" not in older and "/approve" not in older


def test_the_saving_shown_is_the_seats_the_sandbox_saw_removed_and_still_free(
    page: Any, history: History
) -> None:
    sb = history.sb
    access_groups = {p.access_group for p in history.policies.policies}
    freed = set()
    for change in sb.changes():
        group = change.details.get("group_name")
        if (
            change.kind == "membership_removed"
            and change.details.get("via") == "api"
            and group in access_groups
        ):
            freed.add((group, change.details["account_id"]))
    still_free = {(g, a) for g, a in freed if a not in sb.org.members(g)}
    assert still_free, "the enforce nights freed seats"
    expected = f"{len(still_free) * SEAT_PRICE:,.2f}"
    assert texts(page, "#saving-total") == [expected]
    assert expected in texts(page, ".tile.good .figure")


def test_the_due_table_starts_with_the_soonest_of_the_latest_forecasts(page: Any, history: History) -> None:
    storage = history.app.storage
    forecast = [Due.from_dict(d) for runs in history.runs.values() for d in storage.dues.load(runs[-1])]
    assert forecast, "the history has people due soon"
    shown = [date.fromisoformat(t[:10]) for t in texts(page, "#due-table tbody tr.due td:nth-child(2)")]
    assert shown == sorted(shown)
    assert shown[0] == min(d.due_on for d in forecast)
    assert texts(page, "#due-total") == [str(len(forecast))]


def test_the_page_is_self_contained_quiet_and_fits_the_window(page: Any, history: History) -> None:
    assert page.requests == [f"{history.base_url}/api/admin/report"]
    assert page.problems == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("document.querySelectorAll('script, img, link, iframe, object').length") == 0


def test_the_page_fits_a_phone_without_scrolling_sideways(chromium: Chromium, history: History) -> None:
    phone = chromium.page(390, 844)
    phone.load(f"{history.base_url}/api/admin/report")
    phone.screenshot(ARTIFACTS / "report-phone.png")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.problems == []
