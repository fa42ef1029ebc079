"""The snapshot's questions about people: by email domain, suspended or closed, admins.

The snapshot answers them with passes in C rather than a loop per person (planning a million
people has to take seconds); these pin that the answers are the plain ones, `Person.domain`
and `Person.status` read person by person.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.model import AccountStatus, Person, Snapshot
from tests.rules.conftest import PROPERTY_SETTINGS
from tests.rules.orgs import NOW


def snapshot_of(people: list[Person]) -> Snapshot:
    return Snapshot.build(NOW, people, [], {})


def test_people_are_found_by_email_domain_whatever_its_case() -> None:
    people = [
        Person("ann", "ann@example.com"),
        Person("bo", "Bo@Example.COM"),
        Person("cy", "cy@eu.example.com"),
        Person("di", "di@partner.io"),
        Person("ed", "ed@example.com.partner.io"),
        Person("fay", "fay@x@Example.com"),
    ]
    snapshot = snapshot_of(people)

    assert snapshot.in_domains(["Example.com"]) == {"ann", "bo", "fay"}
    assert snapshot.in_domains(["example.com", "partner.io"]) == {"ann", "bo", "fay", "di"}
    assert snapshot.outside_domains(["example.com", "EU.example.com"]) == {"di", "ed"}
    assert snapshot.in_domains([]) == frozenset()
    assert snapshot.outside_domains([]) == {p.account_id for p in people}


emails = st.builds(
    lambda user, domain: f"{user}{domain}",
    st.sampled_from(["a", "B", "x@y", ""]),
    st.sampled_from(
        ["@example.com", "@Example.COM", "@eu.example.com", "@partner.io", "", "@", "example.com"]
    ),
)
asked = st.lists(
    st.sampled_from(["example.com", "EXAMPLE.com", "partner.io", "eu.example.com", "y@example.com"])
)


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(emails, st.sampled_from(list(AccountStatus)), st.booleans()), max_size=30), asked)
def test_domain_status_and_admin_answers_are_those_of_each_person(
    rows: list[tuple[str, AccountStatus, bool]], domains: list[str]
) -> None:
    people = [Person(f"p{i}", email, status, admin) for i, (email, status, admin) in enumerate(rows)]
    snapshot = snapshot_of(people)
    wanted = {d.lower() for d in domains}

    assert snapshot.in_domains(domains) == {p.account_id for p in people if p.domain in wanted}
    assert snapshot.outside_domains(domains) == {p.account_id for p in people if p.domain not in wanted}
    assert snapshot.unmanaged == {p.account_id for p in people if p.status is not AccountStatus.ACTIVE}
    assert snapshot.admins == {p.account_id for p in people if p.is_admin}
