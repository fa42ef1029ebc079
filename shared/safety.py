"""Blast radius: a run that would take away too many licenses is held for approval.

A wrong removal is the worst failure Seatwarden can have, so a plan revoking more than
`max_revocations` licenses, or more than `max_revocation_percent` of those licensed, is saved
with its plan and held: nothing is applied until an administrator approves the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Policy
from shared.model import Plan


@dataclass(frozen=True)
class Verdict:
    held: bool
    revocations: int
    limit: int
    why: str

    def to_dict(self) -> dict[str, object]:
        return {"held": self.held, "revocations": self.revocations, "limit": self.limit, "why": self.why}


def blast_radius(plan: Plan, policy: Policy) -> Verdict:
    """Judge a plan against the policy's limits; the smaller of the two limits applies."""
    radius = policy.blast_radius
    by_percent = int(plan.licensed_before * radius.max_revocation_percent / 100)
    limit = min(radius.max_revocations, by_percent)
    revocations = plan.revocations
    if revocations > limit:
        return Verdict(
            True,
            revocations,
            limit,
            f"{revocations} revocations exceed the limit of {limit} "
            f"(max_revocations {radius.max_revocations}, "
            f"{radius.max_revocation_percent:g}% of {plan.licensed_before} licensed)",
        )
    return Verdict(False, revocations, limit, f"{revocations} revocations within the limit of {limit}")
