"""The live configuration check against the sandbox over real HTTP (and Azurite where storage matters)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from shared.atlassian import AtlassianClient
from shared.bootstrap import App, utc_now
from shared.config import PolicyFile, parse_policy
from shared.demo import demo_policies
from shared.http import RetryPolicy
from shared.services.live_check import Check, LiveCheck, LiveReport, run_live_check
from shared.services.subscriptions import SubscriptionKeeper
from shared.settings import Settings
from shared.store import Subscription

PUBLIC_URL = "http://127.0.0.1:7071"  # stored in subscriptions only; the sandbox never calls it
CLIENT_STATE = "live-check-client-state"
FAST = RetryPolicy(max_tries=2, base_delay=0.01)


@pytest.fixture
def start(start_sandbox: Callable[..., Sandbox]) -> Callable[..., Sandbox]:
    """A small org with a clock that moves only when told."""
    return lambda **overrides: start_sandbox(**{"users": 60, "seed": 5, "frozen_clock": True, **overrides})


def env_of(sb: Sandbox, **extra: str) -> dict[str, str]:
    env = {**sb.env(), **extra}
    env.pop("ENTRA_CLIENT_CERT_PATH")  # the client secret is enough here
    return env


def app_with_storage(sb: Sandbox, azurite: str, table_prefix: str, **extra: str) -> App:
    """The app as a deployment wires it: the sandbox, Azurite, and the subscription keeper's settings."""
    env = env_of(
        sb,
        AzureWebJobsStorage=azurite,
        SEATWARDEN_TABLE_PREFIX=table_prefix,
        SEATWARDEN_PUBLIC_URL=PUBLIC_URL,
        GRAPH_CLIENT_STATE=CLIENT_STATE,
        **extra,
    )
    return App(Settings.from_env(env), clock=sb.clock.now)


def policy(product: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": product,
        "product": product,
        "entitlement": {"atlassian_group": f"{product}-user-role"},
        "access_group": f"{product}-users",
        "marker_group": f"{product}-unlicensed-users",
        **fields,
    }


def policies(*items: dict[str, Any]) -> PolicyFile:
    return parse_policy({"policies": list(items)})


def check(
    sb: Sandbox,
    file: PolicyFile,
    *,
    api_key: str | None = None,
    with_graph: bool = True,
    settings: Settings | None = None,
) -> LiveReport:
    """LiveCheck with clients on the sandbox (no storage)."""
    app = App(Settings.from_env(env_of(sb)), clock=sb.clock.now)

    async def go() -> LiveReport:
        atlassian = AtlassianClient(sb.atlassian_base, sb.org_id, api_key or sb.api_key, retry=FAST)
        graph = app.graph() if with_graph else None
        try:
            return await LiveCheck(file, atlassian, graph, sb.clock.now, settings=settings).run()
        finally:
            await atlassian.aclose()
            if graph is not None:
                await graph.aclose()

    return asyncio.run(go())


def only(report: LiveReport, name: str, **where: Any) -> Check:
    found = [c for c in report.checks if c.name == name and all(getattr(c, k) == v for k, v in where.items())]
    assert len(found) == 1, f"{name} {where}: {[c.to_dict() for c in report.checks]}"
    return found[0]


def not_ok(report: LiveReport) -> list[dict[str, Any]]:
    return [c.to_dict() for c in report.checks if c.status != "ok"]


def keep_subscriptions(app: App, file: PolicyFile) -> None:
    async def go() -> None:
        graph = app.graph()
        try:
            await SubscriptionKeeper(
                app.storage, graph, app.clock, file.policies, PUBLIC_URL, CLIENT_STATE
            ).keep()
        finally:
            await graph.aclose()

    asyncio.run(go())


# --- a correct setup ---------------------------------------------------------------------------


def test_a_correct_setup_is_all_ok_with_counts_and_sync_state_and_few_calls(
    start: Callable[..., Sandbox], azurite: str, table_prefix: str
) -> None:
    sb = start()
    app = app_with_storage(sb, azurite, table_prefix, SEATWARDEN_MAIL_SENDER="seatwarden@example.com")
    file = demo_policies(sb)  # confluence entitled from Entra, the others from synced mirrors
    keep_subscriptions(app, file)
    sb.reset_counts()

    report = asyncio.run(run_live_check(app, file))

    assert report.ok and not_ok(report) == []
    access = only(report, "access_group", policy="confluence")
    assert access.found["members"] == len(sb.org.members("confluence-users"))
    assert access.found["synced"] is False and access.field == "policies[0].access_group"
    mirror = only(report, "entitlement_group", policy="jira-software")
    assert mirror.found["synced"] is True
    assert mirror.found["members"] == len(sb.org.members("jira-software-user-role"))
    gid = sb.org.entra_group_id("confluence")
    entra = only(report, "entitlement_group", policy="confluence")
    assert entra.subject == "permission GroupMember.Read.All"
    assert entra.found == {"entra_group_id": gid, "members": len(sb.org.entra_members(gid))}
    subscription = only(report, "subscription")
    assert subscription.found["resource"] == f"groups/{gid}"
    assert subscription.found["notification_url"] == f"{PUBLIC_URL}/api/webhooks/graph"
    assert "without scopes" in (only(report, "atlassian.writes").note or "")
    assert only(report, "mail").subject == "permission Mail.Send"
    # The fewest calls: one groups search for every group, one users search, one events page.
    counts = sb.request_counts()
    assert (counts.get("groups"), counts.get("users-search"), counts.get("events")) == (1, 1, 1)
    assert counts.get("last-active", 0) == 0, "the users search carries activity: no lookup"
    json.dumps(report.to_dict())  # serialisable as it is


def test_where_the_users_search_carries_no_activity_one_lookup_proves_the_key_may_make_them(
    start: Callable[..., Sandbox],
) -> None:
    sb = start(activity_in_search=False)
    report = check(sb, policies(policy("confluence")), with_graph=False)
    assert report.ok, not_ok(report)
    lookup = only(report, "atlassian.last_active")
    assert lookup.found["activity_in_users_search"] is False
    assert sb.request_counts().get("last-active") == 1


def test_groups_named_by_id_resolve_too(start: Callable[..., Sandbox]) -> None:
    sb = start()
    access_id = sb.org.group_by_name("confluence-users").id
    report = check(sb, policies(policy("confluence", access_group=access_id)), with_graph=False)
    access = only(report, "access_group")
    assert access.status == "ok" and access.found["name"] == "confluence-users"


# --- groups ------------------------------------------------------------------------------------


def test_a_policy_naming_a_group_that_does_not_exist_is_an_error_naming_the_group_and_the_field(
    start: Callable[..., Sandbox],
) -> None:
    sb = start()
    file = policies(
        policy("confluence", marker_group="no-such-marker", exclusions={"groups": ["executives", "ghosts"]})
    )
    report = check(sb, file, with_graph=False)
    assert not report.ok
    marker = only(report, "marker_group")
    assert marker.status == "error" and marker.field == "policies[0].marker_group"
    assert "no-such-marker" in marker.subject and "policies[0].marker_group" in (marker.fix or "")
    ghost = only(report, "excluded_group", field="policies[0].exclusions.groups[1]")
    assert ghost.status == "error" and "'ghosts'" in ghost.subject
    assert only(report, "excluded_group", field="policies[0].exclusions.groups[0]").status == "ok"
    assert only(report, "access_group").status == "ok"


def test_a_marker_group_synced_from_the_idp_is_an_error(start: Callable[..., Sandbox]) -> None:
    sb = start()
    file = policies(
        policy("confluence", marker_group="jira-software-user-role"),
        policy("jira-software", marker_group="contractors"),
    )
    report = check(sb, file, with_graph=False)
    synced = only(report, "marker_group", policy="confluence")
    assert synced.status == "error" and synced.found["synced"] is True
    assert "policies[0].marker_group" in (synced.fix or "") and "local group" in (synced.fix or "")
    assert only(report, "marker_group", policy="jira-software").status == "ok"


def test_a_product_guest_group_as_the_marker_keeps_the_guest_terms_warning(
    start: Callable[..., Sandbox], tmp_path: Path
) -> None:
    org = json.loads((Path(__file__).parents[2] / "sandbox/examples/small-org.json").read_text())
    org["groups"].append({"name": "confluence-guests"})
    org_file = tmp_path / "org.json"
    org_file.write_text(json.dumps(org))
    sb = start(org_file=org_file)
    report = check(sb, policies(policy("confluence", marker_group="confluence-guests")), with_graph=False)
    guest = only(report, "marker_group")
    assert guest.status == "warning" and "guest terms" in (guest.fix or "")
    assert report.ok, "a warning stops nothing"


def test_an_entitlement_mirror_that_is_a_local_group_is_a_warning(start: Callable[..., Sandbox]) -> None:
    sb = start()
    report = check(sb, policies(policy("confluence", entitlement={"atlassian_group": "contractors"})))
    mirror = only(report, "entitlement_group")
    assert mirror.status == "warning" and mirror.found["synced"] is False
    assert "entra_group_id" in (mirror.fix or "")


def test_an_access_group_synced_from_entra_needs_entra_write_with_its_group_or_csv(
    start: Callable[..., Sandbox],
) -> None:
    sb = start(synced_access_groups=True)
    jira_access = sb.org.group_by_name("jira-software-users")
    file = policies(
        policy("confluence", synced_access_group="entra_write"),
        policy(
            "jira-software", synced_access_group="entra_write", access_entra_group_id=jira_access.synced_from
        ),
        policy("jira-servicedesk", synced_access_group="csv"),
    )
    report = check(sb, file)

    unset = only(report, "synced_access_group", policy="confluence")
    assert unset.status == "error" and unset.field == "policies[0].access_entra_group_id"
    assert "policies[0].access_entra_group_id" in (unset.fix or "") and "csv" in (unset.fix or "")
    assert only(report, "access_group", policy="confluence").found["synced"] is True

    write = only(report, "synced_access_group", policy="jira-software")
    assert write.status == "ok" and write.subject == "permission GroupMember.ReadWrite.All"
    assert write.found["entra_members"] == len(sb.org.entra_members(jira_access.synced_from or ""))
    assert "Not tried" in (write.note or "")

    assert only(report, "synced_access_group", policy="jira-servicedesk").status == "ok"

    no_graph = check(
        sb,
        policies(
            policy(
                "jira-software",
                synced_access_group="entra_write",
                access_entra_group_id=jira_access.synced_from,
            )
        ),
        with_graph=False,
    )
    refused = only(no_graph, "synced_access_group")
    assert refused.status == "error" and "ENTRA_CLIENT_ID" in (refused.fix or "")
    assert "GroupMember.ReadWrite.All" in (refused.fix or "")


# --- the Atlassian key ---------------------------------------------------------------------------


def test_an_api_key_the_sandbox_refuses_is_an_error_naming_the_setting_and_no_more_calls_are_made(
    start: Callable[..., Sandbox],
) -> None:
    sb = start()
    report = check(sb, policies(policy("confluence")), api_key="not-the-key", with_graph=False)
    refused = only(report, "atlassian.groups_search")
    assert refused.status == "error" and refused.subject == "setting ATLASSIAN_API_KEY"
    assert refused.found["http_status"] == 401 and "ATLASSIAN_API_KEY" in (refused.fix or "")
    assert [c.name for c in report.checks] == ["atlassian.groups_search"]
    assert sb.request_counts().get("users-search", 0) == 0


def test_a_key_missing_a_scope_is_an_error_naming_the_scope(start: Callable[..., Sandbox]) -> None:
    sb = start()
    sb.set_api_key_scopes(["read:directories:admin"])
    file = policies(policy("confluence", mode="enforce"))
    report = check(sb, file, with_graph=False)
    events = only(report, "atlassian.events")
    assert events.status == "error" and events.subject.startswith("scope read:events:admin")
    assert "read:events:admin" in (events.fix or "")
    writes = only(report, "atlassian.writes")
    assert writes.status == "error" and writes.subject == "a key without scopes"
    assert only(report, "access_group").status == "ok", "the directory reads still work"

    sb.set_api_key_scopes([])
    bare = check(sb, policies(policy("confluence")), with_graph=False)
    groups = only(bare, "atlassian.groups_search")
    assert groups.status == "error" and groups.subject == "scope read:directories:admin"
    assert only(bare, "atlassian.users_search").subject == "scope read:directories:admin"


def test_in_report_mode_the_writes_enforcing_needs_are_named_not_tried(start: Callable[..., Sandbox]) -> None:
    sb = start()
    sb.set_api_key_scopes(["read:directories:admin", "read:events:admin"])
    before = len(sb.changes())
    report = check(sb, policies(policy("confluence")), with_graph=False)
    writes = only(report, "atlassian.writes")
    assert writes.status == "ok" and "report mode" in (writes.note or "")
    assert len(sb.changes()) == before and sb.request_counts().get("memberships", 0) == 0


def test_a_disabled_events_poller_is_not_asked_about(start: Callable[..., Sandbox]) -> None:
    sb = start()
    settings = Settings.from_env({"AzureWebJobs.poll_org_events.Disabled": "true"})
    assert settings.function_disabled("poll_org_events")
    report = check(sb, policies(policy("confluence")), with_graph=False, settings=settings)
    assert only(report, "atlassian.events").found["poller"] == "disabled"
    assert sb.request_counts().get("events", 0) == 0


# --- Graph ------------------------------------------------------------------------------------


def entra_policy(sb: Sandbox, **fields: Any) -> dict[str, Any]:
    return policy("confluence", entitlement={"entra_group_id": sb.org.entra_group_id("confluence")}, **fields)


def test_a_graph_permission_refused_is_an_error_naming_the_permission(start: Callable[..., Sandbox]) -> None:
    sb = start()
    sb.set_graph_permissions(["User.ReadBasic.All"])
    report = check(sb, policies(entra_policy(sb)))
    assert only(report, "graph.token").status == "ok"
    members = only(report, "entitlement_group")
    assert members.status == "error" and members.subject == "permission GroupMember.Read.All"
    assert members.field == "policies[0].entitlement.entra_group_id"
    assert "ENTRA_CLIENT_ID" in (members.fix or "") and "admin consent" in (members.fix or "")
    subscriptions = only(report, "subscription")
    assert subscriptions.status == "error" and "Group.Read.All" in subscriptions.subject


def test_an_entra_group_that_does_not_exist_is_an_error_naming_the_field(
    start: Callable[..., Sandbox],
) -> None:
    sb = start()
    file = policies(
        policy("confluence", entitlement={"entra_group_id": "00000000-0000-0000-0000-000000000000"})
    )
    members = only(check(sb, file), "entitlement_group")
    assert members.status == "error" and "policies[0].entitlement.entra_group_id" in (members.fix or "")


def test_entitlement_from_entra_without_graph_names_the_settings_to_set(
    start: Callable[..., Sandbox],
) -> None:
    sb = start()
    members = only(check(sb, policies(entra_policy(sb)), with_graph=False), "entitlement_group")
    assert members.status == "error" and "ENTRA_TENANT_ID" in (members.fix or "")
    assert "entitlement.atlassian_group" in (members.fix or "")


def test_a_missing_subscription_says_the_keeper_creates_it_and_which_settings_it_needs(
    start: Callable[..., Sandbox],
) -> None:
    sb = start()
    file = policies(entra_policy(sb))
    unset = only(check(sb, file, settings=Settings()), "subscription")
    assert unset.status == "error" and unset.found["exists"] is False
    for name in ("keep_subscriptions", "SEATWARDEN_PUBLIC_URL", "GRAPH_CLIENT_STATE", "not set"):
        assert name in (unset.fix or "")

    ready = Settings(public_base_url=PUBLIC_URL, graph_client_state=CLIENT_STATE)
    pending = only(check(sb, file, settings=ready), "subscription")
    assert pending.status == "warning" and "keep_subscriptions" in (pending.fix or "")
    assert "not set" not in (pending.fix or "")


def test_a_subscription_expiring_within_a_day_is_a_warning(start: Callable[..., Sandbox]) -> None:
    sb = start()
    gid = sb.org.entra_group_id("confluence")
    app = App(Settings.from_env(env_of(sb)), clock=sb.clock.now)

    async def subscribe() -> None:
        graph = app.graph()
        try:
            await graph.create_subscription(
                f"groups/{gid}",
                f"{PUBLIC_URL}/api/webhooks/graph",
                f"{PUBLIC_URL}/api/webhooks/graph/lifecycle",
                CLIENT_STATE,
                sb.clock.now() + timedelta(hours=3),
            )
        finally:
            await graph.aclose()

    asyncio.run(subscribe())
    soon = only(check(sb, policies(entra_policy(sb))), "subscription")
    assert soon.status == "warning" and "within a day" in (soon.fix or "")


def test_a_subscription_seatwarden_recorded_that_graph_no_longer_has_is_a_warning(
    start: Callable[..., Sandbox], azurite: str, table_prefix: str
) -> None:
    sb = start()
    app = app_with_storage(sb, azurite, table_prefix)
    file = policies(entra_policy(sb))
    keep_subscriptions(app, file)
    gid = sb.org.entra_group_id("confluence")
    app.storage.subscriptions.upsert(
        Subscription("gone-1", f"groups/{gid}", gid, sb.clock.now() + timedelta(days=3), "ref")
    )

    report = asyncio.run(run_live_check(app, file))

    gone = only(report, "subscription", status="warning")
    assert gone.found == {"subscription_id": "gone-1", "resource": f"groups/{gid}", "in_graph": False}
    live = only(report, "subscription", status="ok")
    assert live.found["recorded"] is True  # the one the keeper made, and recorded


# --- settings and mail -----------------------------------------------------------------------------


def test_missing_settings_are_reported_by_name_not_raised() -> None:
    app = App(Settings.from_env({"ENTRA_TENANT_ID": "t"}))
    file = policies({**policy("confluence"), "entitlement": {"entra_group_id": "g"}})

    report = asyncio.run(run_live_check(app, file))

    assert not report.ok
    names = {c.found.get("setting") for c in report.checks if c.name == "setting"}
    assert {"ATLASSIAN_ORG_ID", "ATLASSIAN_API_KEY", "AzureWebJobsStorage"} <= names
    graph = next(c for c in report.checks if c.name == "setting" and "missing" in c.found)
    assert graph.found["missing"] == ["ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERT_PATH"]
    assert only(report, "entitlement_group").status == "error"


def test_warning_mail_needs_a_sender_and_a_sender_needs_graph() -> None:
    def run(settings: Settings, file: PolicyFile) -> LiveReport:
        return asyncio.run(LiveCheck(file, None, None, utc_now, settings=settings).run())

    warned = policies(policy("confluence", warn_before_days=7))
    silent = only(run(Settings(), warned), "warning_mail")
    assert silent.status == "warning" and "SEATWARDEN_MAIL_SENDER" in (silent.fix or "")
    assert silent.field == "policies[0].warn_before_days"

    no_graph = only(run(Settings(mail_sender="seatwarden@example.com"), warned), "mail")
    assert no_graph.status == "error" and "Mail.Send" in (no_graph.fix or "")
