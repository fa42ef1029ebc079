"""Paging over real HTTP against the sandbox: the next page is out while this one is handled."""

from __future__ import annotations

import asyncio
import time

from sandbox import Sandbox, SandboxConfig
from shared.atlassian import AtlassianClient


def test_the_next_page_reaches_the_vendor_while_the_caller_is_busy_with_this_one() -> None:
    async def read(sb: Sandbox) -> list[int]:
        client = AtlassianClient(sb.atlassian_base, sb.org_id, sb.api_key)
        asked: list[int] = []
        try:
            async for _users in client.iter_user_pages():
                busy_until = time.perf_counter() + 0.1  # a page that takes the caller a while
                while time.perf_counter() < busy_until:
                    pass
                asked.append(sb.request_counts()["users-search"])
        finally:
            await client.aclose()
        return asked

    with Sandbox.start(SandboxConfig(users=250, seed=7, frozen_clock=True)) as sb:
        # Pages of 100: while the caller works on page 1, page 2 has been asked for.
        assert asyncio.run(read(sb)) == [2, 3, 3]
