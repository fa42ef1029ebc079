"""The fault campaign (issue 6): seeded scenarios of faults, crashes and duplicates.

Each scenario plays a script on a fresh org under chaos, then one fault-free run, and must
leave: the licenses of the fault-free run of the same script from the same start; no
entitled person, active within the threshold, without a license at any moment; exactly one
audit entry per change and a change per audit entry; an audit chain that verifies.

`SEATWARDEN_CAMPAIGN_SCENARIOS` sets how many (default 200; `make soak`: 3,000);
`SEATWARDEN_CAMPAIGN_SEED=N` replays scenario N alone, as a failure names it.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from tests.campaign.harness import Campaign, Outcome
from tests.campaign.invariants import license_differences, unaudited_or_unmade, wrongful_removals
from tests.campaign.scenarios import VARIANTS, Script, make_chaos, make_script, quiet

DEFAULT_SCENARIOS = 200
SOAK_SCENARIOS = 3000
#: `make soak` scripts have up to three rounds of events and nights; `make test`'s one.
SOAK = os.environ.get("HYPOTHESIS_PROFILE") == "soak"
ROUNDS = 3 if SOAK else 1


def scenario_seeds() -> list[int]:
    replay = os.environ.get("SEATWARDEN_CAMPAIGN_SEED")
    if replay:
        return [int(replay)]
    default = SOAK_SCENARIOS if SOAK else DEFAULT_SCENARIOS
    return list(range(int(os.environ.get("SEATWARDEN_CAMPAIGN_SCENARIOS", default))))


def replay_command(seed: int) -> str:
    profile = "HYPOTHESIS_PROFILE=soak " if SOAK else ""
    return f"{profile}SEATWARDEN_CAMPAIGN_SEED={seed} .venv/bin/python -m pytest tests/campaign -k campaign"


def violations(outcome: Outcome, reference: Outcome) -> list[str]:
    found = [f"audit chain: {p}" for p in outcome.audit_problems]
    found += [f"fault-free run failed: {f}" for f in outcome.final_failures]
    found += wrongful_removals(outcome.changes, outcome.timeline)
    found += unaudited_or_unmade(outcome.changes, outcome.audit)
    found += license_differences(outcome.licenses, reference.licenses)
    return found


@pytest.mark.slow
def test_fault_campaign_keeps_every_invariant(campaign: Campaign) -> None:
    references: dict[int, Outcome] = {}
    failures: list[str] = []
    struck: Counter[str] = Counter()
    started = time.monotonic()
    seeds = scenario_seeds()
    for seed in seeds:
        script: Script = make_script(seed // VARIANTS, ROUNDS)
        if script.seed not in references:
            reference = campaign.run(script, quiet())
            bad = violations(reference, reference)
            assert not bad, f"the fault-free run of script {script.seed} itself: {bad}"
            references[script.seed] = reference
        outcome = campaign.run(script, make_chaos(seed, script))
        struck.update(outcome.struck)
        bad = violations(outcome, references[script.seed])
        if bad:
            failures.append(
                f"scenario {seed} (script {script.seed}; replay: {replay_command(seed)}):\n  "
                + "\n  ".join(bad)
                + "\n  steps: "
                + " ".join(f"{i}:{s.kind}" for i, s in enumerate(script.steps))
                + "\n  what happened:\n    "
                + "\n    ".join(outcome.notes[-30:])
            )
    elapsed = time.monotonic() - started
    print(
        f"fault campaign: {len(seeds)} scenarios, {len(references)} scripts, {elapsed:.1f} s; {dict(struck)}"
    )
    assert not failures, f"{len(failures)} of {len(seeds)} scenarios broke an invariant:\n" + "\n".join(
        failures[:10]
    )
    if len(seeds) >= 100:  # a campaign whose chaos never struck would prove nothing
        for kind in (
            "crash",
            "failed delivery",
            "failed night",
            "duplicated",
            "deferred",
            "webhook replayed",
        ):
            assert struck[kind] > 0, f"no {kind} in {len(seeds)} scenarios: {dict(struck)}"
