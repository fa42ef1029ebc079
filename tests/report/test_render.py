"""The page is one self-contained document, and every stored value is escaped on its way in."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

from shared.forecast import Due
from shared.report import CONTENT_SECURITY_POLICY, render_report
from shared.services.report import IdleBucket, PolicyReport, ReportData, RunPoint, Saving

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = '<img src=x onerror="alert(1)">'


def point(run_id: str, status: str = "done", why: str = "", **counts: int) -> RunPoint:
    return RunPoint(
        run_id=run_id,
        started_at=NOW,
        mode="report" if status == "report" else "enforce",
        status=status,
        licensed_before=120,
        licensed_after=110,
        counts=counts,
        revocations=counts.get("INACTIVE", 0),
        applied=0,
        verdict_why=why,
        limit=2,
    )


def policy_report(
    name: str = "conf", runs: tuple[RunPoint, ...] = (), dues: tuple[Due, ...] = ()
) -> PolicyReport:
    return PolicyReport(
        name=name,
        product="confluence",
        mode="enforce",
        inactive_after_days=90,
        external_inactive_after_days=None,
        runs=runs,
        licensed_now=110,
        idle=(IdleBucket(0, 90, 100, False), IdleBucket(91, None, 10, True)),
        idle_unknown=0,
        dues=dues,
        latest_planned=runs[-1].run_id if runs else None,
        saving=Saving(6.05, 10, 1, 0, None, None),
    )


def test_stored_values_are_escaped_wherever_they_appear() -> None:
    held = point(f"conf.{HOSTILE}", status="held", why=f"because {HOSTILE}", INACTIVE=5)
    due = Due("712020:x", f"{HOSTILE}@example.com", date(2026, 3, 2), None, 89, 90)
    page = render_report(ReportData(NOW, 30, (policy_report(f"p-{HOSTILE}", (held,), (due,)),)))
    assert HOSTILE not in page
    assert "<img" not in page
    assert page.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 4  # run, why, person, policy


def test_the_page_loads_nothing_from_anywhere() -> None:
    runs = (point("conf.1", INACTIVE=3, GRANT=2), point("conf.2", status="held", why="too many", INACTIVE=9))
    page = render_report(ReportData(NOW, 30, (policy_report(runs=runs),)))
    assert "<script" not in page
    assert not re.search(r"\b(src|href|srcset|action|poster)\s*=", page)
    assert "url(" not in page and "@import" not in page and "://" not in page
    # and the page's own policy forbids loading anything, should something slip in
    assert f'http-equiv="Content-Security-Policy" content="{html.escape(CONTENT_SECURITY_POLICY)}"' in page


def test_an_empty_installation_gets_a_page_that_says_what_comes() -> None:
    page = render_report(ReportData(NOW, 30, (policy_report(),)))
    assert "No runs yet" in page
    assert "No run is held" in page
    assert "Nobody is due to lose a license" in page


def test_the_due_table_shows_the_first_fifty_and_says_how_many_there_are() -> None:
    dues = tuple(
        Due(f"a{i:03d}", f"p{i:03d}@example.com", date(2026, 3, 2 + i % 20), None, 80, 90) for i in range(73)
    )
    page = render_report(ReportData(NOW, 30, (policy_report(runs=(point("conf.1"),), dues=dues),)))
    assert page.count('<tr class="due">') == 50
    assert '<strong id="due-shown">50</strong>' in page
    assert '<strong id="due-total">73</strong>' in page
