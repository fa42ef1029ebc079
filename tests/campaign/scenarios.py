"""Seeded scenarios: a script of what happens to an org, and the chaos laid over it.

A scenario's seed picks its script by `seed // VARIANTS`, so every `VARIANTS` consecutive
seeds share one script (one org, one sequence of Entra changes, uses, days and nights) under
different chaos, and share the fault-free reference run of that script. The script is what
the world does; the chaos is what the network, the vendors and the Functions host do to
Seatwarden meanwhile: faults, crashes, duplicated and reordered deliveries.

Scripts stay within 30 days: the idle clocks that depend on when Seatwarden first saw
someone (never-active people, fresh grants) need 90 days and more to run out, so a delay
caused by a fault can shift them but never flip a decision within the scenario, and the
licenses after the closing fault-free run must equal the reference's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sandbox.faults import FAULT_KINDS

#: Scripts per seed block: seeds s*VARIANTS .. s*VARIANTS+VARIANTS-1 share script s.
VARIANTS = 10
#: The sandbox's products. A script's one policy covers one of them: Confluence entitled from
#: Entra through Graph (with its change notifications), or Jira entitled from the group SCIM
#: mirrors into Atlassian. One policy a night keeps a scenario under half a second.
PRODUCTS = ("confluence", "jira-software")

#: Request targets the faults aim at: every Atlassian and Graph call Seatwarden makes.
FAULT_TARGETS = (
    "",  # everything
    "/users/search",
    "/memberships",
    "/groups/search",
    "/directories",
    "/v1.0/groups",
    "/delta",
)


@dataclass(frozen=True)
class Step:
    """One thing that happens. `kind` is one of:

    - ``night``: the nightly reconcile timer fires;
    - ``drain``: the host works through every queue;
    - ``days``: `days` days pass (no one uses anything unless a ``use`` says so);
    - ``use``: person `person` uses every product they are entitled to, and their login
      reaches Seatwarden (an org audit-log webhook, or a Jira one);
    - ``entra``: an Entra admin adds person `person` to the product's entitlement group, or
      removes them if a member; Graph notifies Seatwarden.
    """

    kind: str
    person: int = 0
    product: str = ""
    days: int = 0
    jira: bool = False


@dataclass(frozen=True)
class Script:
    seed: int
    users: int
    product: str
    inactive_after_days: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class FaultRule:
    """Keyword arguments for `sandbox.faults.Faults.inject`."""

    kind: str
    path_contains: str
    count: int | None
    probability: float | None


@dataclass
class Chaos:
    """What goes wrong, drawn as the scenario runs from the scenario's own seed."""

    seed: int
    #: step index -> the fault rules active while that step runs
    faults: dict[int, list[FaultRule]] = field(default_factory=dict)
    duplicate: float = 0.0  # a delivered queue message is delivered again later
    defer: float = 0.0  # a message waits for the next drain (out of order)
    crash: float = 0.0  # the executor dies at a chosen point while applying a message
    replay_webhook: float = 0.0  # a webhook is delivered twice
    rng: random.Random = field(default_factory=random.Random)

    @property
    def quiet(self) -> bool:
        return not (self.faults or self.duplicate or self.defer or self.crash or self.replay_webhook)


def quiet() -> Chaos:
    """No chaos: the fault-free run."""
    return Chaos(seed=0)


def make_script(script_seed: int, rounds: int = 1) -> Script:
    """The script of a seed block: an org of 5 to 12 people, a first night, then `rounds`
    rounds (up to `rounds`, at random, for more than one) of events and a night."""
    rng = random.Random(f"script:{script_seed}")
    users = rng.randint(5, 12)
    product = rng.choice(PRODUCTS)
    steps: list[Step] = [Step("night"), Step("drain")]
    days_left = 30
    for _ in range(rng.randint(1, rounds)):
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.4:
                steps.append(Step("entra", person=rng.randrange(users), product=product))
            elif roll < 0.7:
                steps.append(Step("use", person=rng.randrange(users), jira=rng.random() < 0.3))
            elif days_left > 0:
                days = rng.randint(1, min(10, days_left))
                days_left -= days
                steps.append(Step("days", days=days))
            if rng.random() < 0.3:
                steps.append(Step("drain"))  # events handled between nights
        steps += [Step("night"), Step("drain")]
    return Script(script_seed, users, product, rng.choice((60, 90)), tuple(steps))


def make_chaos(seed: int, script: Script) -> Chaos:
    rng = random.Random(f"chaos:{seed}")
    chaos = Chaos(
        seed=seed,
        duplicate=rng.choice((0.0, 0.1, 0.3)),
        defer=rng.choice((0.0, 0.1, 0.3)),
        crash=rng.choice((0.0, 0.1, 0.3)),
        replay_webhook=rng.choice((0.0, 0.5)),
        rng=random.Random(f"chaos-run:{seed}"),
    )
    for index, step in enumerate(script.steps):
        if step.kind == "days" or rng.random() < 0.5:
            continue
        chaos.faults[index] = [_fault(rng) for _ in range(rng.randint(1, 2))]
    return chaos


def _fault(rng: random.Random) -> FaultRule:
    kind = rng.choice(FAULT_KINDS)
    target = rng.choice(FAULT_TARGETS)
    if kind == "timeout":  # each costs the client's whole timeout: a few, counted
        return FaultRule(kind, target, 1, None)
    if rng.random() < 0.5:
        storm = 12 if kind == "429" else 4  # a 429 storm outlasts the client's retries
        return FaultRule(kind, target, rng.randint(1, storm), None)
    return FaultRule(kind, target, rng.randint(3, 20), rng.choice((0.1, 0.25, 0.5)))
