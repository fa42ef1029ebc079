"""What must hold after every fault campaign scenario, checked from the records alone.

Each checker takes plain data (the sandbox change log, the audit trail, what the campaign
knows about entitlement and use) and returns a list of violations, one sentence each; an
empty list means the invariant held. They know nothing of how a scenario ran, so a unit test
can hand them a planted violation and see it caught (tests/campaign/test_invariants.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: A change Seatwarden made, as both records name it: (kind, group id, account id).
ChangeKey = tuple[str, str, str]

#: Who made a change, per the sandbox change log: Seatwarden's API key, or its Graph app.
SEATWARDEN_VIA = frozenset({"api", "graph"})

_OP_KINDS = {
    ("atlassian", "add"): "membership_added",
    ("atlassian", "remove"): "membership_removed",
    ("atlassian", "suspend"): "user_suspended",
    ("entra", "add"): "entra_member_added",
    ("entra", "remove"): "entra_member_removed",
}


@dataclass
class Use:
    """A person used a product at `at`, after change `after_seq` of the sandbox change log."""

    after_seq: int
    account_id: str
    product: str
    at: datetime


@dataclass
class Timeline:
    """What entitlement and activity were at every point of a scenario.

    Entitlement starts from `entitled` and moves with the Entra membership changes in the
    change log; activity starts from `last_active` and moves with each `Use`.
    """

    #: product -> the Entra group that entitles to it, and that group's members at the start
    entra_group: dict[str, str]
    entitled: dict[str, set[str]]
    #: (account id, product) -> last use at the start (absent: never)
    last_active: dict[tuple[str, str], datetime]
    #: access group id -> product it licenses
    access_groups: dict[str, str]
    #: product -> inactive_after_days of its policy
    threshold_days: dict[str, int]
    uses: list[Use] = field(default_factory=list)


def wrongful_removals(changes: Sequence[Any], timeline: Timeline) -> list[str]:
    """Licenses taken from people who were entitled and had used the product within its
    threshold at that very moment (a removal from an access group, by anyone)."""
    product_of_entra = {gid: product for product, gid in timeline.entra_group.items()}
    entitled = {product: set(members) for product, members in timeline.entitled.items()}
    last_active = dict(timeline.last_active)
    uses = sorted(timeline.uses, key=lambda u: u.after_seq)
    next_use = 0
    violations = []
    for change in changes:
        while next_use < len(uses) and uses[next_use].after_seq < change.seq:
            use = uses[next_use]
            key = (use.account_id, use.product)
            last_active[key] = max(use.at, last_active.get(key, use.at))
            next_use += 1
        details = change.details
        account = details.get("account_id")
        if change.kind in ("entra_member_added", "entra_member_removed"):
            product = product_of_entra.get(details.get("group_id"))
            if product is not None:
                members = entitled.setdefault(product, set())
                (members.add if change.kind == "entra_member_added" else members.discard)(account)
        elif change.kind == "membership_removed" and details.get("group_id") in timeline.access_groups:
            product = timeline.access_groups[details["group_id"]]
            used = last_active.get((account, product))
            threshold = timedelta(days=timeline.threshold_days[product])
            if account in entitled.get(product, ()) and used is not None and change.at - used < threshold:
                violations.append(
                    f"change {change.seq}: {account} lost {product} ({details.get('group_name')}) at "
                    f"{change.at.isoformat()} while entitled and last active {used.isoformat()}, "
                    f"within {threshold.days} days"
                )
    return violations


def changes_by_seatwarden(changes: Iterable[Any]) -> Counter[ChangeKey]:
    found: Counter[ChangeKey] = Counter()
    for change in changes:
        details = change.details
        if details.get("via") not in SEATWARDEN_VIA or change.kind not in _OP_KINDS.values():
            continue
        found[(change.kind, str(details.get("group_id") or ""), str(details.get("account_id")))] += 1
    return found


def changes_claimed(entries: Iterable[Any]) -> Counter[ChangeKey]:
    """The changes the audit trail says Seatwarden made: each entry's `after.changed` ops."""
    claimed: Counter[ChangeKey] = Counter()
    for entry in entries:
        after = entry.after if isinstance(entry.after, Mapping) else {}
        for op in after.get("changed") or ():
            kind = _OP_KINDS.get((op.get("via"), op.get("kind")))
            if kind is not None:
                claimed[(kind, str(op.get("group_id") or ""), entry.account_id)] += 1
    return claimed


def unaudited_or_unmade(changes: Sequence[Any], entries: Sequence[Any]) -> list[str]:
    """Every change Seatwarden made has exactly one audit entry, and every audit entry of a
    change has its change in the sandbox change log."""
    made = changes_by_seatwarden(changes)
    claimed = changes_claimed(entries)
    violations = []
    for key in sorted(made.keys() | claimed.keys()):
        if made[key] != claimed[key]:
            kind, group, account = key
            violations.append(
                f"{kind} of {account} in group {group or '-'}: {made[key]} in the change log, "
                f"{claimed[key]} claimed by the audit trail"
            )
    return violations


def license_differences(
    got: Mapping[str, set[str]], expected: Mapping[str, set[str]], what: str = "the fault-free run"
) -> list[str]:
    """Per product, who holds a license here but not in `expected`, and the other way round."""
    violations = []
    for product in sorted(got.keys() | expected.keys()):
        extra = sorted(got.get(product, set()) - expected.get(product, set()))
        missing = sorted(expected.get(product, set()) - got.get(product, set()))
        if extra or missing:
            violations.append(f"{product}: licensed but not in {what}: {extra}; missing: {missing}")
    return violations
