"""The campaign's world: one sandbox, the session's Azurite, the HTTP functions served.

Built once for the campaign and reused by every scenario (each loads a fresh org and table
prefix). Test-only seams, undone when the campaign test ends (before any other test runs:
they would leak the campaign's clock into it):

- the functions' clock is the sandbox's (`App.from_env`), so days pass for Seatwarden as they
  pass for the org;
- the clients retry fast and time out after 0.2 s, so a timeout fault costs 0.2 s instead of
  thirty; the retry rules themselves are unchanged;
- an event's recovery copy of an action (`shared.services.returns.RECOVERY_DELAY`) is
  visible at once instead of after two minutes, so the host model's drains see it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import Sandbox, SandboxConfig
from tests.campaign.harness import START, Campaign, settings_secrets
from tests.campaign.scenarios import PRODUCTS

CLIENT_TIMEOUT_S = 0.2


@pytest.fixture
def campaign(azurite: str) -> Iterator[Campaign]:
    import function_app
    import shared.atlassian
    import shared.graph
    import shared.services.returns
    from sandbox.funcserver import serving
    from shared.bootstrap import App
    from shared.http import RetryPolicy
    from shared.settings import Settings

    mp = pytest.MonkeyPatch()
    config = SandboxConfig(
        users=10,
        seed=1,
        start=START,
        frozen_clock=True,
        products=PRODUCTS,
        rate_scale=1000.0,  # hundreds of orgs a minute: the sandbox's own limits stay out of it
        fault_timeout_s=2 * CLIENT_TIMEOUT_S,
    )
    with Sandbox.start(config) as sb, serving(function_app.app) as base_url:
        fast = functools.partial(RetryPolicy, base_delay=0.01, max_delay=0.05, timeout=CLIENT_TIMEOUT_S)
        mp.setattr(shared.atlassian, "RetryPolicy", fast)
        mp.setattr(shared.graph, "RetryPolicy", fast)
        mp.setattr(shared.services.returns, "RECOVERY_DELAY", None)

        def from_env(cls: Any) -> App:
            return cls(Settings.from_env(), clock=sb.clock.now)

        mp.setattr(App, "from_env", classmethod(from_env))
        try:
            yield Campaign(sb, azurite, base_url, settings_secrets())
        finally:
            mp.undo()
