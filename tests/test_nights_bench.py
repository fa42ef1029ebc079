"""The nights benchmark itself, at a size that runs in seconds: what it counts and bounds."""

from __future__ import annotations

from bench import nights_bench


def test_the_nights_benchmark_makes_no_call_beyond_the_bound_in_either_mode() -> None:
    args = nights_bench.parse_args(
        ["--users", "300", "--nights", "1", "--rate-scale", "500", "--latency-ms", "0", "--no-write"]
    )
    results = nights_bench.run_all(args, args.mode_list)

    for mode in ("activity_in_read", "lookups"):
        nights = results[mode]["nights"]
        assert len(nights) == 2
        for night in nights:
            assert night["calls"] == night["bound"], (mode, night)
            assert night["user_pages"] == 3 and night["time_bound"] > 0 and night["wall_seconds"] > 0
            assert 0 <= night["steal_percent"] <= 100  # /proc/stat: these machines are Linux
    activity, lookups = results["activity_in_read"]["nights"], results["lookups"]["nights"]
    assert all(n["lookups"] == 0 for n in activity)
    assert lookups[0]["lookups"] > lookups[1]["lookups"]
    assert lookups[0]["calls_by_class"]["last-active"] == lookups[0]["lookups"]
    # The same org, looked up the naive way: every licensed person, once.
    assert results["naive"]["lookups"] == lookups[0]["licensed_people"]


def test_steal_is_the_share_of_all_cpu_time_the_hypervisor_took() -> None:
    assert nights_bench.steal_percent((100, 1_000), (150, 1_200)) == 25.0
    assert nights_bench.steal_percent((5, 10), (5, 10)) is None  # no time passed
    steal, total = nights_bench.machine_jiffies()
    assert 0 <= steal < total


def test_the_client_spreads_over_as_many_pools_as_asked() -> None:
    """`--pools` is how the one-pool and four-pool figures are reproduced."""
    import asyncio
    from types import SimpleNamespace

    from shared.http import POOLS

    sandbox = SimpleNamespace(atlassian_base="http://127.0.0.1:9", org_id="org", api_key="placeholder-key")
    for asked, pools in ((["--pools", "1"], 1), ([], POOLS)):
        client = nights_bench.client_for(sandbox, nights_bench.parse_args(asked))
        assert len(client._client._transport.pools) == pools
        asyncio.run(client.aclose())
