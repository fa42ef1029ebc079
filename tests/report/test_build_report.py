"""The report's facts come from what the store records: runs, results, user states, forecasts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.config import parse_policy
from shared.forecast import Due
from shared.model import Action, Facts, GroupRole, Op, OpKind, Plan, Reason, action_id
from shared.services.report import UnknownPolicy, build_report
from shared.store import Storage, UserState
from tests.store import RequestCounter, open_storage

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

POLICIES = parse_policy(
    {
        "policies": [
            {
                "name": "conf",
                "product": "confluence",
                "entitlement": {"atlassian_group": "confluence-user-role"},
                "access_group": "confluence-users",
                "marker_group": "confluence-unlicensed-users",
                "inactive_after_days": 30,
                "seat_price": 10.0,
                "mode": "enforce",
            },
            {
                "name": "jira",
                "product": "jira-software",
                "entitlement": {"atlassian_group": "jira-software-user-role"},
                "access_group": "jira-software-users",
                "marker_group": "jira-software-unlicensed-users",
            },
        ]
    },
    "report test",
)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def action(policy: str, product: str, account_id: str, reason: Reason) -> Action:
    return Action(
        id=action_id(policy, account_id, reason, TODAY),
        policy=policy,
        product=product,
        account_id=account_id,
        reason=reason,
        ops=(Op(OpKind.REMOVE, GroupRole.ACCESS, "g-access"),),
        facts=Facts(True, True, False, email=f"{account_id}@example.com"),
    )


def run(
    storage: Storage,
    policy: str,
    product: str,
    mode: str,
    status: str,
    started: datetime,
    actions: dict[str, Reason] | None = None,
    outcomes: dict[str, str] | None = None,
    **fields: Any,
) -> str:
    """A run as the reconcile and the executors leave it: plan saved, outcomes recorded."""
    created = storage.runs.create(policy, product, mode, started)
    planned = tuple(action(policy, product, a, r) for a, r in sorted((actions or {}).items()))
    counts: dict[str, int] = {}
    for a in planned:
        counts[a.reason.value] = counts.get(a.reason.value, 0) + 1
    storage.results.save_plan(created.run_id, Plan(policy, product, started, planned))
    applied = 0
    for account_id, outcome in (outcomes or {}).items():
        storage.results.set_outcome(created.run_id, account_id, outcome)
        applied += outcome == "applied"
    storage.runs.set_status(
        created.run_id, status, counts=counts, actions_total=len(planned), actions_applied=applied, **fields
    )
    return created.run_id


def state(account_id: str, product: str = "confluence", **fields: Any) -> UserState:
    return UserState(account_id=account_id, product=product, last_seen=TODAY, **fields)


@pytest.fixture
def storage(azurite: str, table_prefix: str) -> Storage:
    return open_storage(azurite, table_prefix)


@pytest.fixture
def history(storage: Storage) -> dict[str, str]:
    """Four weeks of Confluence runs and one report-mode Jira run, with states and a forecast."""
    runs = {
        "report": run(
            storage,
            "conf",
            "confluence",
            "report",
            "report",
            NOW - timedelta(days=28),
            {"r1": Reason.INACTIVE},
        ),
        "first": run(
            storage,
            "conf",
            "confluence",
            "enforce",
            "done",
            NOW - timedelta(days=21),
            {"a1": Reason.INACTIVE, "a2": Reason.INACTIVE, "a3": Reason.INACTIVE, "g1": Reason.GRANT},
            {"a1": "applied", "a2": "applied", "a3": "skipped", "g1": "applied"},
            licensed_before=12,
            licensed_after=10,
        ),
        "held": run(
            storage,
            "conf",
            "confluence",
            "enforce",
            "held",
            NOW - timedelta(days=14),
            {f"h{i}": Reason.INACTIVE for i in range(5)},
            verdict={
                "held": True,
                "revocations": 5,
                "limit": 2,
                "why": "5 revocations exceed the limit of 2",
            },
        ),
        "latest": run(
            storage,
            "conf",
            "confluence",
            "enforce",
            "done",
            NOW - timedelta(days=7),
            {"u1": Reason.REVOKE_UNENTITLED, "c1": Reason.INACTIVE},
            {"u1": "applied", "c1": "waiting"},
        ),
        "jira": run(
            storage,
            "jira",
            "jira-software",
            "report",
            "report",
            NOW - timedelta(days=1),
            {"j1": Reason.INACTIVE, "j2": Reason.REVOKE_UNENTITLED, "j3": Reason.GRANT},
        ),
        "jira-failed": run(storage, "jira", "jira-software", "enforce", "failed", NOW - timedelta(hours=2)),
    }
    week_ago = days_ago(7)
    storage.dues.save(
        runs["latest"],
        [
            Due(
                "d1", "d1@example.com", TODAY + timedelta(days=2), week_ago - timedelta(days=20), 20, 30
            ).to_dict(),
            Due(
                "d2", "d2@example.com", TODAY + timedelta(days=1), week_ago - timedelta(days=21), 21, 30
            ).to_dict(),
            Due(
                "d3", "d3@example.com", TODAY + timedelta(days=1), week_ago - timedelta(days=21), 21, 30
            ).to_dict(),
            Due(
                "d4", "d4@example.com", TODAY + timedelta(days=3), week_ago - timedelta(days=19), 19, 30
            ).to_dict(),
        ],
    )
    storage.users.upsert_many(
        "confluence",
        [
            state("a1", licensed=False, marked=True, last_active=days_ago(60)),  # freed, still free
            state("a2", licensed=True, last_active=days_ago(1)),  # freed, then came back
            state("u1", licensed=False),  # freed, still free
            state("d1", licensed=True, last_active=week_ago - timedelta(days=20)),  # idle 27: 8-30
            state("d2", licensed=True, last_active=week_ago - timedelta(days=21)),  # idle 28: 8-30
            state("d3", licensed=True, last_active=days_ago(2)),  # used the product since the forecast
            state("d4", licensed=False),  # lost the license since the forecast
            state("n1", licensed=True, licensed_since=days_ago(10)),  # never active, licensed 10 days ago
            state("o1", licensed=True, last_active=days_ago(45)),  # 31-60: past the threshold of 30
            state("o2", licensed=True, last_active=days_ago(400)),  # over 365
            state("q1", licensed=True),  # activity still to be looked up
        ],
    )
    return runs


def test_the_saving_counts_applied_revocations_whose_people_still_hold_no_license(
    storage: Storage, history: dict[str, str]
) -> None:
    report = build_report(storage, POLICIES, NOW)
    conf = report.policies[0]
    # a1 and u1: applied and still unlicensed. Not a2 (came back), a3 (skipped), c1 (left to
    # the CSV), g1 (a grant), the report-mode run's r1 or the held run's five.
    assert conf.saving.freed_seats == 2
    assert conf.saving.freed_monthly == pytest.approx(20.0)
    assert conf.saving.freed_runs == 2
    assert conf.saving.waiting_seats == 0
    assert report.freed_monthly == pytest.approx(20.0)


def test_a_report_mode_plan_is_a_decision_away_and_has_no_price_without_seat_price(
    storage: Storage, history: dict[str, str]
) -> None:
    jira = build_report(storage, POLICIES, NOW).policies[1]
    # The failed run after it planned nothing: the report-mode plan stays the latest.
    assert jira.latest_planned == history["jira"]
    assert jira.saving.waiting_seats == 2  # INACTIVE and REVOKE_UNENTITLED; the grant frees nothing
    assert jira.saving.waiting_status == "report"
    assert jira.saving.seat_price is None
    assert jira.saving.waiting_monthly is None


def test_held_runs_are_listed_with_their_verdict_and_known_as_superseded_once_a_newer_run_planned(
    storage: Storage, history: dict[str, str]
) -> None:
    report = build_report(storage, POLICIES, NOW)
    ((policy, held),) = report.held
    assert held.run_id == history["held"]
    assert held.revocations == 5
    assert held.limit == 2
    assert held.verdict_why == "5 revocations exceed the limit of 2"
    assert policy.superseded(held)
    assert report.awaiting_approval == []


def test_a_held_run_that_is_the_latest_plan_awaits_approval(storage: Storage) -> None:
    held = run(storage, "conf", "confluence", "enforce", "held", NOW, {"h1": Reason.INACTIVE})
    report = build_report(storage, POLICIES, NOW)
    assert [r.run_id for _, r in report.awaiting_approval] == [held]
    assert report.policies[0].saving.waiting_seats == 1


def test_due_next_comes_from_the_latest_forecast_soonest_first_less_who_used_or_lost_it_since(
    storage: Storage, history: dict[str, str]
) -> None:
    report = build_report(storage, POLICIES, NOW)
    conf = report.policies[0]
    assert conf.latest_planned == history["latest"]
    assert [(d.account_id, d.due_on) for d in conf.dues] == [
        ("d2", TODAY + timedelta(days=1)),
        ("d1", TODAY + timedelta(days=2)),
    ]
    # Idle days as of today, not as of the run a week ago.
    assert [d.idle_days for d in conf.dues] == [28, 27]
    assert [r.due.account_id for r in report.due_next] == ["d2", "d1"]


def test_the_idle_histogram_counts_the_people_licensed_now_with_the_threshold_as_an_edge(
    storage: Storage, history: dict[str, str]
) -> None:
    conf = build_report(storage, POLICIES, NOW).policies[0]
    bars = {b.label: b.people for b in conf.idle}
    assert list(bars) == [
        "0\u20137",
        "8\u201330",
        "31\u201360",
        "61\u201390",
        "91\u2013180",
        "181\u2013365",
        "over 365",
    ]
    # a2 and d3 (used lately); d1, d2 and n1 (licensed ten days ago, never active); o1; o2.
    assert bars == {
        "0\u20137": 2,
        "8\u201330": 3,
        "31\u201360": 1,
        "61\u201390": 0,
        "91\u2013180": 0,
        "181\u2013365": 0,
        "over 365": 1,
    }
    assert [b.past_threshold for b in conf.idle] == [False, False, True, True, True, True, True]
    assert conf.idle_unknown == 1
    assert conf.licensed_now == 8


def test_runs_come_oldest_first_with_their_counts_for_the_charts(
    storage: Storage, history: dict[str, str]
) -> None:
    conf = build_report(storage, POLICIES, NOW, runs_per_policy=3).policies[0]
    assert [r.run_id for r in conf.runs] == [history["first"], history["held"], history["latest"]]
    assert conf.runs[0].counts == {"GRANT": 1, "INACTIVE": 3}
    assert conf.runs[0].revocations == 3
    assert conf.runs[0].licensed_before == 12


def test_one_policy_can_be_asked_for_and_an_unknown_one_is_refused(
    storage: Storage, history: dict[str, str]
) -> None:
    assert [p.name for p in build_report(storage, POLICIES, NOW, policy="jira").policies] == ["jira"]
    with pytest.raises(UnknownPolicy, match="no policy named 'nope'"):
        build_report(storage, POLICIES, NOW, policy="nope")


def test_a_fresh_installation_has_a_report_with_nothing_in_it(storage: Storage) -> None:
    report = build_report(storage, POLICIES, NOW)
    assert [p.runs for p in report.policies] == [(), ()]
    assert report.held == [] and report.due_next == [] and report.licensed_now == 0


def test_the_report_reads_pages_of_people_not_a_query_per_person(
    azurite: str, table_prefix: str, history: dict[str, str]
) -> None:
    counter = RequestCounter()
    counted = open_storage(azurite, table_prefix, raw_request_hook=counter)
    counter.reset()
    build_report(counted, POLICIES, NOW)
    before = len(counter.urls)
    counted.users.upsert_many(
        "confluence",
        [state(f"bulk{i:05d}", licensed=True, last_active=days_ago(i % 50)) for i in range(1500)],
    )
    counter.reset()
    report = build_report(counted, POLICIES, NOW)
    assert report.policies[0].licensed_now == 8 + 1500
    # 1,500 more people are one more page of the users partition (1,000 a page), nothing more.
    assert len(counter.urls) <= before + 1
    # Per policy: its runs, its people, the latest forecast, the results of runs that freed seats.
    assert before <= 10
