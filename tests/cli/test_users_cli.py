"""`seatwarden users`: idle people by product, days, group and domain; bulk actions, safely."""

from __future__ import annotations

from tests.cli.conftest import Shell

DOMAIN = "example.com"


def _protected(shell: Shell) -> set[str]:
    org = shell.sb.org
    admins = {
        u.account_id
        for u in org.users
        if {"atlassian/org-admin", "atlassian/site-admin"} & set(u.platform_roles)
    }
    return org.members("service-accounts") | org.members("executives") | admins


def test_users_lists_people_idle_at_least_n_days_in_a_domain_and_never_the_protected(shell: Shell) -> None:
    code, out = shell.json("users", "--product", "confluence", "--idle-days", "30", "--domain", DOMAIN)

    assert code == 0
    assert out["people"], "the generated org has idle people at example.com"
    assert all(p["email"].endswith("@" + DOMAIN) for p in out["people"])
    assert all(p["idle_days"] >= 30 for p in out["people"])
    assert not {p["account_id"] for p in out["people"]} & _protected(shell)
    assert all(shell.sb.org.is_licensed(p["account_id"], "confluence") for p in out["people"])
    assert shell.changes() == []


def test_a_group_narrows_the_search_to_its_members(shell: Shell) -> None:
    _, everyone = shell.json("users", "--product", "confluence", "--idle-days", "1")
    code, team = shell.json(
        "users", "--product", "confluence", "--idle-days", "1", "--group", "confluence-users"
    )
    assert code == 0
    members = shell.sb.org.members("confluence-users")
    assert {p["account_id"] for p in team["people"]} == {
        p["account_id"] for p in everyone["people"]
    } & members


def test_an_unknown_group_is_named_and_nothing_is_listed(shell: Shell) -> None:
    result = shell.seatwarden("users", "--product", "confluence", "--group", "no-such-group")
    assert result.exit_code == 1
    assert "no-such-group" in result.output


def test_a_bulk_removal_dry_run_lists_and_changes_nothing(shell: Shell) -> None:
    code, out = shell.json(
        "users", "--product", "confluence", "--idle-days", "60", "--remove-access", "--dry-run"
    )
    assert code == 0
    assert out["people"]
    assert out["outcomes"] == {}
    assert shell.changes() == []


def test_a_bulk_removal_without_yes_and_without_a_terminal_changes_nothing(shell: Shell) -> None:
    result = shell.seatwarden("users", "--product", "confluence", "--idle-days", "60", "--remove-access")
    assert result.exit_code == 2
    assert shell.changes() == []


def test_a_confirmed_bulk_removal_takes_exactly_the_listed_licenses_into_the_marker(shell: Shell) -> None:
    _, listed = shell.json("users", "--product", "confluence", "--idle-days", "60", "--domain", DOMAIN)
    people = {p["account_id"] for p in listed["people"]}

    code, out = shell.json(
        "users",
        "--product",
        "confluence",
        "--idle-days",
        "60",
        "--domain",
        DOMAIN,
        "--remove-access",
        "--yes",
    )

    assert code == 0, out
    assert out["outcomes"] == {"applied": len(people)}
    removed = {c.details["account_id"] for c in shell.changes() if c.kind == "membership_removed"}
    marked = {
        c.details["account_id"]
        for c in shell.changes()
        if c.kind == "membership_added" and c.details["group_name"] == "confluence-unlicensed-users"
    }
    assert removed == marked == people
    [manual] = [r for r in shell.storage.runs.list() if r.mode == "manual"]
    assert manual.status == "done"
    assert {e.account_id for e in shell.storage.audit.query(action="INACTIVE")} == people


def test_a_bulk_suspension_suspends_the_listed_accounts(shell: Shell) -> None:
    _, listed = shell.json("users", "--product", "confluence", "--idle-days", "90", "--domain", DOMAIN)
    code, _ = shell.json(
        "users", "--product", "confluence", "--idle-days", "90", "--domain", DOMAIN, "--suspend", "--yes"
    )
    assert code == 0
    suspended = {c.details["account_id"] for c in shell.changes() if c.kind == "user_suspended"}
    assert suspended == {p["account_id"] for p in listed["people"]}
