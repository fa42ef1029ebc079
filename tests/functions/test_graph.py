"""Entra change notifications, through the Graph webhook function and the graph queue function."""

from __future__ import annotations

from typing import Any

from tests.functions.conftest import World, policies_with

PRODUCT = "confluence"  # the one demo policy entitled from an Entra group


def notify(world: World, gid: str) -> Any:
    delivery = world.sb.send_graph_notification(
        world.url("/api/webhooks/graph"), group_id=gid, client_state=world.env["GRAPH_CLIENT_STATE"]
    )
    assert delivery.status_code == 202, delivery.text
    world.drain("graph")
    return delivery


def eligible(world: World, account_id: str) -> bool:
    user = world.sb.org.user(account_id)
    excluded = world.sb.org.members("service-accounts") | world.sb.org.members("executives")
    return (
        user.account_status == "active"
        and not user.suspended
        and account_id not in excluded
        and "org-admin" not in " ".join(user.platform_roles)
    )


def outsider(world: World, gid: str) -> Any:
    """An eligible person neither in the Entra group nor licensed: a newcomer to add."""
    sb = world.sb
    members = sb.org.entra_members(gid)
    return next(
        u
        for u in sb.org.users
        if u.entra_object_id not in members
        and not sb.org.is_licensed(u.account_id, PRODUCT)
        and eligible(world, u.account_id)
    )


def test_a_new_entra_member_ends_licensed_with_one_audit_entry(world: World) -> None:
    sb = world.sb
    world.nightly()
    world.drain("actions")
    world.subscribe()
    gid = sb.org.entra_group_id(PRODUCT)
    newcomer = outsider(world, gid)
    assert sb.entra_add_member(gid, newcomer.entra_object_id)
    notify(world, gid)
    assert sb.org.is_licensed(newcomer.account_id, PRODUCT)
    assert len(world.audit_for(newcomer.account_id)) == 1


def test_a_person_who_left_and_rejoined_the_entra_group_ends_licensed_with_one_audit_entry(
    world: World,
) -> None:
    sb = world.sb
    world.nightly()
    world.drain("actions")
    world.subscribe()
    gid = sb.org.entra_group_id(PRODUCT)
    person = next(
        u
        for u in sb.org.users
        if u.entra_object_id in sb.org.entra_members(gid)
        and sb.org.is_licensed(u.account_id, PRODUCT)
        and eligible(world, u.account_id)
        and not world.audit_for(u.account_id)
    )
    assert sb.entra_remove_member(gid, person.entra_object_id)
    notify(world, gid)
    assert not sb.org.is_licensed(person.account_id, PRODUCT)
    left = world.audit_for(person.account_id)
    assert [e.action for e in left] == ["REVOKE_UNENTITLED"]

    assert sb.entra_add_member(gid, person.entra_object_id)
    notify(world, gid)
    assert sb.org.is_licensed(person.account_id, PRODUCT)
    rejoined = [e for e in world.audit_for(person.account_id) if e.seq not in {x.seq for x in left}]
    assert len(rejoined) == 1
    assert rejoined[0].action in ("GRANT", "RELICENSE", "RETURNED")


def test_under_a_report_mode_policy_entra_changes_and_return_events_change_nothing(world: World) -> None:
    sb = world.sb
    world.nightly()
    world.drain("actions")
    world.subscribe()
    world.set_policies(policies_with(sb, mode="report"))
    gid = sb.org.entra_group_id(PRODUCT)
    leaver = next(
        u
        for u in sb.org.users
        if u.entra_object_id in sb.org.entra_members(gid)
        and sb.org.is_licensed(u.account_id, PRODUCT)
        and eligible(world, u.account_id)
    )
    returning = sorted(sb.org.members(f"{PRODUCT}-unlicensed-users") & world.entitled(PRODUCT))[0]
    changes = len(sb.changes())

    assert sb.entra_remove_member(gid, leaver.entra_object_id)
    notify(world, gid)
    delivery = sb.send_jira_webhook(
        world.url("/api/webhooks/atlassian"),
        "user_updated",
        account_id=returning,
        secret=world.env["JIRA_WEBHOOK_SECRET"],
    )
    assert delivery.status_code == 202
    world.drain("returns")

    assert sb.org.is_licensed(leaver.account_id, PRODUCT)
    assert not sb.org.is_licensed(returning, PRODUCT)
    assert [
        c for c in sb.changes()[changes:] if c.system == "atlassian" and c.details.get("via") != "scim"
    ] == []
    assert world.audit_for(leaver.account_id) == []


def test_a_notification_before_the_first_night_takes_no_license_from_the_entitled(world: World) -> None:
    # Found by the fault campaign: the first night failed, a notification then read the whole
    # group, licensed the newcomer (whose state row became the only one) and stored its delta
    # link as the night's. The next night took "entitled" from that one row plus the delta
    # since, and revoked every other entitled, licensed person as unentitled.
    sb = world.sb
    unlimited = {"max_revocations": 1_000_000, "max_revocation_percent": 100}
    world.set_policies(policies_with(sb, mode="enforce", blast_radius=unlimited))
    gid = sb.org.entra_group_id(PRODUCT)
    newcomer = outsider(world, gid)
    entitled = world.entitled(PRODUCT)
    licensed_before = sb.org.members(f"{PRODUCT}-users") & entitled
    assert sb.entra_add_member(gid, newcomer.entra_object_id)
    notify(world, gid)
    world.drain("actions")
    assert sb.org.is_licensed(newcomer.account_id, PRODUCT)

    world.nightly()
    world.drain("actions")

    def decided(action: str) -> set[str]:
        entries = world.storage.audit.query(action=action, limit=1000)
        return {e.account_id for e in entries if e.product == PRODUCT}

    assert not decided("REVOKE_UNENTITLED") & world.entitled(PRODUCT)
    assert licensed_before - sb.org.members(f"{PRODUCT}-users") <= decided("INACTIVE")
