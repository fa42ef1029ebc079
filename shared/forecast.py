"""Who is due to lose a license to inactivity, and when: the rules asked about a later day.

Pure, like the rules: a snapshot, a policy, the time and tonight's plan in; a list out. The
warnings (a mail `warn_before_days` before the revocation) and the report's "due next" both
read it, so what they announce is what the rules will do if nobody uses the product meanwhile.

It does not restate the idle arithmetic of `shared.rules`: it plans the same snapshot as of the
horizon's last day and reads each INACTIVE action's facts back into a date. An action at day H
with `idle_days` i and `threshold_days` t fires first on H - i + t + ACTIVITY_LAG_DAYS, the day
the person's idle time first reaches the threshold plus the reporting lag.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.config import Policy
from shared.model import Plan, Reason, Snapshot
from shared.rules import ACTIVITY_LAG_DAYS, plan_product


@dataclass(frozen=True, slots=True)
class Due:
    """One person who loses the license to INACTIVE on `due_on` unless they use the product."""

    account_id: str
    email: str
    due_on: date
    last_active: date | None
    idle_days: int
    threshold_days: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "email": self.email,
            "due_on": self.due_on.isoformat(),
            "last_active": self.last_active.isoformat() if self.last_active else None,
            "idle_days": self.idle_days,
            "threshold_days": self.threshold_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Due:
        last = data.get("last_active")
        return cls(
            account_id=str(data["account_id"]),
            email=str(data.get("email") or ""),
            due_on=date.fromisoformat(str(data["due_on"])),
            last_active=date.fromisoformat(str(last)) if last else None,
            idle_days=int(data.get("idle_days") or 0),
            threshold_days=int(data.get("threshold_days") or 0),
        )


def forecast_horizon(policy: Policy) -> int:
    """Days ahead worth knowing: the warning period, or a week where no warning is sent."""
    return policy.warn_before_days or 7


def forecast_revocations(
    snapshot: Snapshot, policy: Policy, now: datetime, tonight: Plan, horizon_days: int
) -> list[Due]:
    """People not revoked tonight whom INACTIVE takes within `horizon_days`, soonest first.

    `tonight` is the plan made from the same snapshot at `now`; anyone with an action in it is
    left out (their license is decided tonight). People whose activity is unknown, excluded
    people, admins and accounts outside the policy's targeting never appear, because the rules
    never plan INACTIVE for them.
    """
    if horizon_days <= 0:
        return []
    decided = {a.account_id for a in tonight.actions}
    today = now.date()
    horizon_end = today + timedelta(days=horizon_days)
    later = plan_product(snapshot, policy, now + timedelta(days=horizon_days))
    due: list[Due] = []
    for action in later.actions:
        if action.reason is not Reason.INACTIVE or action.account_id in decided:
            continue
        facts = action.facts
        assert facts.idle_days is not None and facts.threshold_days is not None
        due_on = horizon_end - timedelta(days=facts.idle_days - facts.threshold_days - ACTIVITY_LAG_DAYS)
        if due_on <= today:
            continue  # due already, yet not revoked tonight: the rules have it waiting, not due
        due.append(
            Due(
                account_id=action.account_id,
                email=facts.email,
                due_on=due_on,
                last_active=facts.last_active,
                idle_days=facts.idle_days - horizon_days,
                threshold_days=facts.threshold_days,
            )
        )
    due.sort(key=lambda d: (d.due_on, d.account_id))
    return due
