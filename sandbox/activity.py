"""Days passing in the simulated org: licensed people use what they hold, a few return.

Each person has a seeded daily-use probability; on each simulated day every licensed,
active person uses each product they hold with that probability, which moves the
product's last-active date (activity is not a change: it is not in the change log). A
few people whose license was taken for inactivity come back each day and leave audit-log
events (a login, sometimes an access request), so the event stream and the webhooks have
something to carry. A few others log in as on any working day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import actions
from .org import MARKER_SUFFIX, Org, UnknownGroup

RETURNS_PER_DAY_CAP = 25
PEOPLE_PER_RETURN = 2_000  # one return a day per this many people, at least one
ACCESS_REQUEST_SHARE = 0.5  # of returns that also request the product


@dataclass
class AdvanceResult:
    """What ``advance`` did: how many product uses, and who came back for what."""

    days: int = 0
    uses: int = 0
    returns: list[tuple[str, str]] = field(default_factory=list)  # (accountId, product)


def simulate_days(org: Org, days: int, rng: random.Random) -> AdvanceResult:
    """Move the org's clock forward ``days`` days, simulating each day in turn."""
    if days < 0:
        raise ValueError("days must not be negative")
    result = AdvanceResult()
    for _ in range(days):
        with org.lock:
            day_start = org.clock.now()
            day_end = org.clock.advance(timedelta(days=1))
            result.uses += _use_products(org, rng, day_start, day_end)
            result.returns.extend(_come_back(org, rng, day_start, day_end))
            result.days += 1
    return result


def _use_products(org: Org, rng: random.Random, start: datetime, end: datetime) -> int:
    users = org.users
    first = start.timestamp()
    span = (end - start).total_seconds()
    uses = 0
    for product_index, product in enumerate(org.products):
        holders = org.sorted_member_indices([g.id for g in org.access_groups(product.key)])
        for index in holders:
            person = users[index]
            if person.status != "active":
                continue  # suspended and deactivated people cannot get in
            if rng.random() < person.daily_use_probability:
                org.record_activity(person, product_index, int(first + rng.random() * span))
                uses += 1
    return uses


def _come_back(org: Org, rng: random.Random, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """Emit the day's return events in time order; return who came back for what."""
    users = org.users
    wanted = min(RETURNS_PER_DAY_CAP, max(1, len(users) // PEOPLE_PER_RETURN))
    candidates: list[tuple[int, str]] = []
    for held in org.products:
        try:
            marker = org.group_by_name(f"{held.key}{MARKER_SUFFIX}")
        except UnknownGroup:
            continue
        candidates.extend(
            (i, held.key) for i in org.sorted_member_indices([marker.id]) if users[i].status == "active"
        )
    returners = rng.sample(candidates, min(wanted, len(candidates)))
    span = (end - start).total_seconds()
    planned: list[tuple[datetime, str, str, str | None]] = []
    for index, product in returners:
        moment = start + timedelta(seconds=rng.random() * span)
        account_id = users[index].account_id
        planned.append((moment, account_id, actions.USER_LOGGED_IN, None))
        if rng.random() < ACCESS_REQUEST_SHARE:
            planned.append(
                (moment + timedelta(minutes=2), account_id, actions.PRODUCT_ACCESS_REQUESTED, product)
            )
    for _ in range(wanted):  # everyday logins: noise a classifier must ignore
        person = users[int(rng.random() * len(users))]
        if person.status == "active":
            planned.append(
                (
                    start + timedelta(seconds=rng.random() * span),
                    person.account_id,
                    actions.USER_LOGGED_IN,
                    None,
                )
            )
    for moment, account_id, action, about in sorted(planned, key=lambda p: (p[0], p[1])):
        org.user_event(account_id, action, product=about, at=min(moment, end))
    return [(users[i].account_id, product) for i, product in returners]
