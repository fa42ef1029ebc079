"""The values a plan is made of: immutable, and written out field by field.

`Action` and `Facts` are named tuples for speed (see `Facts`); these pin what that must not
change: nobody can alter a decision once made, and its dict form carries it whole.
"""

from __future__ import annotations

from datetime import date

import pytest

from shared.model import Action, Facts, GroupRole, Op, OpKind, Reason, action_id

FACTS = Facts(True, True, False, date(2026, 1, 2), 59, 30, "fay@example.com", "seat cap 10")
ACTION = Action(
    action_id("confluence", "fay", Reason.INACTIVE, date(2026, 3, 2)),
    "confluence",
    "confluence",
    "fay",
    Reason.INACTIVE,
    (Op(OpKind.REMOVE, GroupRole.ACCESS, "gid-1"), Op(OpKind.ADD, GroupRole.MARKER, "gid-2")),
    FACTS,
)


@pytest.mark.parametrize(("value", "field"), [(ACTION, "reason"), (ACTION, "facts"), (FACTS, "licensed")])
def test_a_decision_and_its_facts_cannot_be_changed_once_made(value: object, field: str) -> None:
    with pytest.raises(AttributeError):
        setattr(value, field, None)


def test_facts_survive_their_dict_form_whole() -> None:
    assert Facts.from_dict(FACTS.to_dict()) == FACTS
    assert Facts.from_dict(Facts(False, True, True).to_dict()) == Facts(False, True, True)
