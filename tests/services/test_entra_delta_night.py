"""After the first night, Entra entitlement comes from the stored delta link, not whole groups."""

from __future__ import annotations

import asyncio

from sandbox import Sandbox, SandboxConfig
from shared.bootstrap import App
from shared.demo import demo_policies
from shared.model import Reason
from shared.services.reconcile import Reconciler
from shared.settings import Settings


def test_the_second_night_reads_only_the_entra_delta_and_sees_adds_and_removals(
    azurite: str, table_prefix: str
) -> None:
    with Sandbox.start(SandboxConfig(users=150, seed=8, frozen_clock=True)) as sb:
        env = {**sb.env(), "AzureWebJobsStorage": azurite, "SEATWARDEN_TABLE_PREFIX": table_prefix}
        env.pop("ENTRA_CLIENT_CERT_PATH")
        app = App(Settings.from_env(env), clock=sb.clock.now)
        policies = [p for p in demo_policies(sb).policies if p.product == "confluence"]
        gid = sb.org.entra_group_id("confluence")

        def night() -> dict[str, int]:
            async def go() -> dict[str, int]:
                atlassian, graph = app.atlassian(), app.graph()
                try:
                    report = await Reconciler(app.storage, atlassian, graph, app.clock).run(
                        policies, mode="report"
                    )
                    return report.outcomes[0].counts
                finally:
                    await atlassian.aclose()
                    await graph.aclose()

            app.request_log.clear()
            return asyncio.run(go())

        def full_reads() -> int:
            return sum("transitiveMembers" in r.path for r in app.request_log.records())

        night()
        assert full_reads() == 1

        members = sb.org.entra_members(gid)
        joiner = next(
            u
            for u in sb.org.users
            if u.entra_object_id not in members
            and not u.suspended
            and u.account_status == "active"
            and u.account_id not in sb.org.members("confluence-users")
        )
        leaver = next(
            u
            for u in sb.org.users
            if u.entra_object_id in members
            and u.account_id in sb.org.members("confluence-users")
            and not u.suspended
            and "atlassian/org-admin" not in u.platform_roles
        )
        sb.entra_add_member(gid, joiner.entra_object_id)
        sb.entra_remove_member(gid, leaver.entra_object_id)

        counts = night()
        assert full_reads() == 0, "the second night reads the delta only"
        run = app.storage.runs.list(policy="confluence", limit=1)[0]
        rows = {r["account_id"]: r for r in app.storage.results.rows(run.run_id)}
        assert rows[joiner.account_id]["reason"] == Reason.GRANT.value
        assert rows[leaver.account_id]["reason"] == Reason.REVOKE_UNENTITLED.value
        assert counts.get("GRANT", 0) >= 1
