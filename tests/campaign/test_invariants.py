"""The campaign's checkers catch what they exist for: each is shown a planted violation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.campaign.invariants import (
    Timeline,
    Use,
    license_differences,
    unaudited_or_unmade,
    wrongful_removals,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADA, BOB = "712020:ada", "712020:bob"
ACCESS, MARKER, ENTRA = "g-access", "g-marker", "e-role"


@dataclass
class Change:
    seq: int
    kind: str
    details: dict[str, Any]
    at: datetime = NOW


@dataclass
class Entry:
    account_id: str
    after: dict[str, Any] = field(default_factory=dict)


def removal(seq: int, account: str, group: str = ACCESS, via: str = "api", at: datetime = NOW) -> Change:
    details = {"group_id": group, "group_name": group, "account_id": account, "via": via}
    return Change(seq, "membership_removed", details, at)


def entra(seq: int, kind: str, account: str) -> Change:
    return Change(seq, kind, {"group_id": ENTRA, "account_id": account, "via": "sandbox"})


def timeline(**changes: Any) -> Timeline:
    base = Timeline(
        entra_group={"confluence": ENTRA},
        entitled={"confluence": {ADA}},
        last_active={(ADA, "confluence"): NOW - timedelta(days=3), (BOB, "confluence"): NOW},
        access_groups={ACCESS: "confluence"},
        threshold_days={"confluence": 90},
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def op(kind: str, group: str = ACCESS) -> dict[str, Any]:
    return {"kind": kind, "role": "access", "group_id": group, "via": "atlassian"}


def test_a_license_taken_from_an_entitled_recently_active_person_is_flagged() -> None:
    [violation] = wrongful_removals([removal(1, ADA)], timeline())
    assert ADA in violation and "within 90 days" in violation


def test_removals_that_are_allowed_are_not_flagged() -> None:
    idle = timeline(last_active={(ADA, "confluence"): NOW - timedelta(days=120)})
    assert wrongful_removals([removal(1, ADA)], idle) == []  # idle past the threshold
    assert wrongful_removals([removal(1, BOB)], timeline()) == []  # active, but not entitled
    assert wrongful_removals([removal(1, ADA, group=MARKER)], timeline()) == []  # not a license


def test_entitlement_and_use_are_taken_as_they_were_at_the_moment_of_the_removal() -> None:
    left_then_removed = [entra(1, "entra_member_removed", ADA), removal(2, ADA)]
    assert wrongful_removals(left_then_removed, timeline()) == []
    joined_then_removed = [entra(1, "entra_member_added", BOB), removal(2, BOB)]
    assert len(wrongful_removals(joined_then_removed, timeline())) == 1
    idle = timeline(last_active={}, uses=[Use(1, ADA, "confluence", NOW)])
    assert wrongful_removals([removal(1, ADA)], idle) == []  # removed before the use
    assert len(wrongful_removals([removal(1, ADA), removal(2, ADA)], idle)) == 1  # after it


def test_a_change_without_its_audit_entry_is_flagged() -> None:
    [violation] = unaudited_or_unmade([removal(1, ADA)], [])
    assert "1 in the change log, 0 claimed" in violation


def test_an_op_listed_only_as_found_in_effect_does_not_count_as_auditing_a_change() -> None:
    found = Entry(ADA, {"changed": [], "already_in_effect": [op("remove")]})
    assert len(unaudited_or_unmade([removal(1, ADA)], [found])) == 1


def test_a_change_audited_twice_and_an_audited_change_never_made_are_flagged() -> None:
    entry = Entry(ADA, {"changed": [op("remove")]})
    assert unaudited_or_unmade([removal(1, ADA)], [entry]) == []
    assert "2 claimed" in unaudited_or_unmade([removal(1, ADA)], [entry, entry])[0]
    assert "0 in the change log, 1 claimed" in unaudited_or_unmade([], [entry])[0]


def test_changes_made_by_others_need_no_audit_entry() -> None:
    assert unaudited_or_unmade([removal(1, ADA, via="scim"), removal(2, BOB, via="sandbox")], []) == []


def test_licenses_that_differ_from_the_fault_free_run_are_named() -> None:
    assert license_differences({"confluence": {ADA}}, {"confluence": {ADA}}) == []
    [violation] = license_differences({"confluence": {BOB}}, {"confluence": {ADA}})
    assert f"['{BOB}']" in violation and f"missing: ['{ADA}']" in violation
