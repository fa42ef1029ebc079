"""The revocation forecast announces exactly what the rules will do on each later day."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.forecast import Due, forecast_revocations
from shared.model import Reason
from shared.rules import plan_product
from tests.rules.conftest import PROPERTY_SETTINGS
from tests.rules.orgs import NOW, TODAY, OrgBuilder, make_policy
from tests.rules.test_rules_properties import orgs


def _forecast(org: OrgBuilder, horizon: int = 14, **policy: object) -> dict[str, Due]:
    snapshot = org.build()
    chosen = make_policy(**policy)  # type: ignore[arg-type]
    tonight = plan_product(snapshot, chosen, NOW)
    return {d.account_id: d for d in forecast_revocations(snapshot, chosen, NOW, tonight, horizon)}


def test_a_person_idle_85_of_90_days_is_due_when_the_threshold_and_the_reporting_lag_have_passed() -> None:
    org = OrgBuilder().person("ann", entitled=True, licensed=True, idle_days=85)
    due = _forecast(org, inactive_after_days=90)["ann"]
    # idle 85 days tonight; idle 91 (90 + one day of reporting lag) in six days
    assert due.due_on == TODAY + timedelta(days=6)
    assert due.idle_days == 85
    assert due.threshold_days == 90
    assert due.last_active == TODAY - timedelta(days=85)


def test_a_never_active_person_is_due_grace_days_after_the_threshold_counted_from_licensing() -> None:
    org = OrgBuilder().person("bo", entitled=True, licensed=True, licensed_days_ago=100)
    due = _forecast(org, inactive_after_days=90, grace_days=14)["bo"]
    assert due.due_on == TODAY + timedelta(days=90 + 14 + 1 - 100)
    assert due.last_active is None


def test_people_revoked_tonight_excluded_admins_and_unknown_activity_are_not_forecast() -> None:
    org = (
        OrgBuilder()
        .person("gone-tonight", entitled=True, licensed=True, idle_days=200)
        .person("admin", entitled=True, licensed=True, idle_days=88, admin=True)
        .person("vip", entitled=True, licensed=True, idle_days=88, groups=["vip"])
        .person("unknown", entitled=True, licensed=True, unknown=True)
        .person("recent", entitled=True, licensed=True, idle_days=3)
    )
    assert _forecast(org, inactive_after_days=90, exclusions={"groups": ["vip"]}) == {}


def test_the_forecast_looks_no_further_than_its_horizon() -> None:
    org = (
        OrgBuilder()
        .person("soon", entitled=True, licensed=True, idle_days=88)
        .person("later", entitled=True, licensed=True, idle_days=60)
    )
    assert set(_forecast(org, horizon=7, inactive_after_days=90)) == {"soon"}
    assert _forecast(org, horizon=0, inactive_after_days=90) == {}


@PROPERTY_SETTINGS
@given(org=orgs(seat_caps=False), horizon=st.integers(1, 20))
def test_each_forecast_date_is_the_first_day_the_rules_plan_inactive_for_that_person(org, horizon) -> None:  # type: ignore[no-untyped-def]
    for policy in org.policies:
        tonight = plan_product(org.snapshot, policy, NOW)
        decided = {a.account_id for a in tonight.actions}
        first_day: dict[str, object] = {}
        for k in range(1, horizon + 1):
            later = plan_product(org.snapshot, policy, NOW + timedelta(days=k))
            for action in later.actions:
                if action.reason is Reason.INACTIVE and action.account_id not in decided:
                    first_day.setdefault(action.account_id, TODAY + timedelta(days=k))
        forecast = forecast_revocations(org.snapshot, policy, NOW, tonight, horizon)
        assert {d.account_id: d.due_on for d in forecast} == first_day
        assert [d.due_on for d in forecast] == sorted(d.due_on for d in forecast)
