"""SpreadTransport over real HTTP against the sandbox: requests spread over the pools, each
pool keeps its connections for the next call, and every request is counted out again."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from sandbox import Sandbox, SandboxConfig
from shared.atlassian import AtlassianClient
from shared.http import Pacer, SpreadTransport, make_async_client

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    with Sandbox.start(SandboxConfig(users=20, seed=3, frozen_clock=True)) as sandbox:
        yield sandbox


def open_connections(transport: SpreadTransport) -> list[int]:
    return [len(pool._pool.connections) for pool in transport.pools]


async def test_requests_spread_over_the_pools_and_reuse_their_connections(sb: Sandbox) -> None:
    transport = SpreadTransport(pools=4)
    client = AtlassianClient(
        sb.atlassian_base, sb.org_id, sb.api_key, transport=transport, pacer=Pacer.unpaced(concurrency=16)
    )
    sb.set_latency(300)
    try:
        for _batch in range(2):
            calls = asyncio.gather(*(client.search_groups() for _ in range(8)))
            await asyncio.sleep(0.15)  # every request is out, none answered
            assert transport.in_flight == [2, 2, 2, 2]
            await calls
            assert transport.in_flight == [0, 0, 0, 0]
        # The second batch went over the first batch's connections: none was opened anew.
        assert open_connections(transport) == [2, 2, 2, 2]
    finally:
        sb.set_latency(0)
        await client.aclose()


async def test_a_body_read_in_pieces_and_left_early_still_frees_its_pool(sb: Sandbox) -> None:
    transport = SpreadTransport(pools=2)
    async with httpx.AsyncClient(base_url=sb.atlassian_base, transport=transport, trust_env=False) as client:
        async with client.stream("GET", "/no-such-path") as response:
            assert transport.in_flight == [1, 0]
            async for _chunk in response.aiter_raw(1):
                break
        assert transport.in_flight == [0, 0]


async def test_a_request_that_never_connects_is_not_counted_as_in_flight() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SpreadTransport(pools=3)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        for _ in range(4):
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")
    assert transport.in_flight == [0, 0, 0]


async def test_the_default_client_spreads_and_trusts_only_the_given_ca_bundle(sb: Sandbox) -> None:
    path = f"/{sb.tenant_id}/v2.0/.well-known/openid-configuration"
    trusting = make_async_client(sb.authority_host + "/", verify=sb.ca_cert_path)
    default = make_async_client(sb.authority_host + "/")
    try:
        assert isinstance(trusting._transport, SpreadTransport)
        assert (await trusting.get(path)).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await default.get(path)
    finally:
        await trusting.aclose()
        await default.aclose()


def test_a_transport_needs_a_pool() -> None:
    with pytest.raises(ValueError, match="at least one pool"):
        SpreadTransport(pools=0)


def test_every_pool_and_every_client_shares_one_tls_context_per_setting(sb: Sandbox) -> None:
    """Loading a CA bundle takes tens of milliseconds; a function invocation must not pay it
    once a pool for every client it opens."""
    first = make_async_client("https://vendor.invalid/")
    second = make_async_client("https://vendor.invalid/")
    bundle = make_async_client(sb.authority_host + "/", verify=sb.ca_cert_path)
    contexts = {
        name: {id(pool._pool._ssl_context) for pool in client._transport.pools}
        for name, client in (("first", first), ("second", second), ("bundle", bundle))
    }
    assert len(contexts["first"]) == 1 and contexts["first"] == contexts["second"]
    assert contexts["bundle"] != contexts["first"] and len(contexts["bundle"]) == 1
