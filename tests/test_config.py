"""Policy files: what loads, what is refused, and what a person reads when it is refused.

`config check` must show every problem at once, each with the field path, the value given
and what is allowed, and never a Python traceback.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import (
    GUEST_TERMS_URL,
    PolicyError,
    PolicyFile,
    load_policy_file,
    load_policy_from_settings,
    parse_policy,
    policy_warnings,
)

VALID_YAML = textwrap.dedent(
    """\
    version: 1
    policies:
      - name: confluence
        product: confluence
        entitlement:
          entra_group_id: 5f1c2d3e-0000-4000-8000-000000000001
        access_group: confluence-users
        marker_group: confluence-unlicensed-users
        inactive_after_days: 60
        grace_days: 7
        warn_before_days: 7
        internal_domains: [example.com]
        external_inactive_after_days: 30
        targeting:
          domains: ["@Example.com", partner.io]
        exclusions:
          accounts: [557058:svc-backup]
          groups: [service-accounts]
          domains: [svc.example.com]
        seat_cap: 500
        blast_radius: {max_revocations: 25, max_revocation_percent: 5}
        mode: enforce
      - name: jira
        product: jira-software
        entitlement:
          atlassian_group: jira-software-user-role
        access_group: jira-software-users
        marker_group: jira-software-unlicensed-users
        on_inactive: suspend
        synced_access_group: entra_write
        access_entra_group_id: 5f1c2d3e-0000-4000-8000-000000000002
    """
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def minimal(**overrides: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "name": "confluence",
        "product": "confluence",
        "entitlement": {"atlassian_group": "confluence-user-role"},
        "access_group": "confluence-users",
        "marker_group": "confluence-unlicensed-users",
    }
    policy.update(overrides)
    return {"policies": [policy]}


def problems_of(document: Any) -> list[tuple[str, Any, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document, "test")
    return [(p.field, p.given, p.allowed) for p in caught.value.problems]


def assert_reads_like_a_person_wrote_it(error: PolicyError) -> None:
    text = str(error)
    assert "Traceback" not in text
    assert 'File "' not in text
    assert "ValidationError" not in text
    assert "errors.pydantic.dev" not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


# --- what loads -------------------------------------------------------------------------------


def test_a_valid_yaml_policy_file_loads(tmp_path: Path) -> None:
    policies = load_policy_file(write(tmp_path, "policy.yaml", VALID_YAML))

    confluence = policies.policy("confluence")
    assert confluence.entitlement.entra_group_id == "5f1c2d3e-0000-4000-8000-000000000001"
    assert confluence.targeting.domains == ["example.com", "partner.io"]
    assert confluence.threshold_for("partner.io") == 30
    assert confluence.threshold_for("example.com") == 60
    assert policies.policy("jira").on_inactive == "suspend"
    assert policy_warnings(policies) == []


def test_the_same_policy_in_json_loads_equally(tmp_path: Path) -> None:
    as_json = json.dumps(yaml.safe_load(VALID_YAML), indent=2)

    from_yaml = load_policy_file(write(tmp_path, "policy.yaml", VALID_YAML))
    from_json = load_policy_file(write(tmp_path, "policy.json", as_json))

    assert from_json == from_yaml


def test_defaults_are_the_safe_ones() -> None:
    policy = parse_policy(minimal()).policies[0]

    assert (policy.mode, policy.on_inactive, policy.synced_access_group) == ("report", "remove_access", "csv")
    assert (policy.inactive_after_days, policy.grace_days, policy.seat_cap) == (90, 14, None)


def test_the_policy_can_come_inline_from_seatwarden_policy() -> None:
    inline = json.dumps(yaml.safe_load(VALID_YAML))

    policies = load_policy_from_settings({"SEATWARDEN_POLICY": inline})

    assert [p.name for p in policies.policies] == ["confluence", "jira"]


def test_the_policy_can_come_from_the_file_named_by_seatwarden_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", VALID_YAML)

    policies = load_policy_from_settings({"SEATWARDEN_POLICY_FILE": str(path)})

    assert policies == load_policy_file(path)


def test_inline_policy_wins_over_the_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", VALID_YAML)
    env = {"SEATWARDEN_POLICY": json.dumps(minimal()), "SEATWARDEN_POLICY_FILE": str(path)}

    assert [p.name for p in load_policy_from_settings(env).policies] == ["confluence"]


def test_no_policy_setting_at_all_names_both_settings() -> None:
    with pytest.raises(PolicyError, match="SEATWARDEN_POLICY / SEATWARDEN_POLICY_FILE"):
        load_policy_from_settings({})


def test_an_inline_policy_with_a_problem_names_the_setting_as_its_source() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_from_settings({"SEATWARDEN_POLICY": json.dumps(minimal(grace_days=-1))})

    assert caught.value.source == "SEATWARDEN_POLICY"
    assert str(caught.value).startswith("SEATWARDEN_POLICY: 1 problem(s)")


# --- what is refused, all at once -------------------------------------------------------------


def test_an_invalid_file_reports_every_problem_at_once(tmp_path: Path) -> None:
    text = VALID_YAML.replace("product: confluence", "product: confluense").replace(
        "inactive_after_days: 60", "inactive_after_days: 0\n    inactve_days: 30"
    )
    path = write(tmp_path, "policy.yaml", text)

    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)

    problems = {p.field: p for p in caught.value.problems}
    assert len(caught.value.problems) == 3
    assert set(problems) == {
        "policies[0].product",
        "policies[0].inactive_after_days",
        "policies[0].inactve_days",
    }
    assert problems["policies[0].product"].given == "confluense"
    assert "jira-software" in problems["policies[0].product"].allowed
    assert problems["policies[0].inactive_after_days"].given == 0
    assert "greater than or equal to 1" in problems["policies[0].inactive_after_days"].allowed
    assert problems["policies[0].inactve_days"].given == 30
    assert problems["policies[0].inactve_days"].allowed == "unknown field (check its spelling)"
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 problem(s) in the policy")
    assert 'error: policies[0].product: given "confluense": unknown product; allowed: ' in message
    assert_reads_like_a_person_wrote_it(caught.value)


def test_problems_in_several_policies_are_all_reported() -> None:
    document = minimal(seat_cap=-5)
    document["policies"].append({**minimal()["policies"][0], "name": "Bad Name", "product": "jira-software"})

    fields = [f for f, _, _ in problems_of(document)]

    assert fields == ["policies[0].seat_cap", "policies[1].name"]


def test_an_unknown_product_is_named_with_the_allowed_ones() -> None:
    [(field, given, allowed)] = problems_of(minimal(product="jira-work-management"))

    assert (field, given) == ("policies[0].product", "jira-work-management")
    assert allowed.startswith("unknown product; allowed: ")
    assert "confluence" in allowed and "jira-servicedesk" in allowed


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (minimal(inactive_days=30), "policies[0].inactive_days"),
        ({**minimal(), "polices": []}, "polices"),
        (minimal(exclusions={"acounts": ["x"]}), "policies[0].exclusions.acounts"),
    ],
    ids=["policy", "document", "nested"],
)
def test_an_unknown_field_is_named(document: dict[str, Any], field: str) -> None:
    found = {f: allowed for f, _, allowed in problems_of(document)}

    assert found[field] == "unknown field (check its spelling)"


def test_a_missing_field_is_named_and_shown_as_missing() -> None:
    document = minimal()
    del document["policies"][0]["marker_group"]

    with pytest.raises(PolicyError) as caught:
        parse_policy(document)

    [problem] = caught.value.problems
    assert problem.field == "policies[0].marker_group"
    assert "given (missing)" in str(problem)


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = "policies:\n  - name: confluence\n    product: [confluence\n    access_group: x\n"
    path = write(tmp_path, "policy.yaml", text)

    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)

    [problem] = caught.value.problems
    assert problem.field.startswith("(syntax at line 4, column")
    assert_reads_like_a_person_wrote_it(caught.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(PolicyError) as caught:
        load_policy_file(missing)

    assert caught.value.problems[0].field == "(file)"
    assert str(missing) in str(caught.value)
    assert_reads_like_a_person_wrote_it(caught.value)


def test_duplicate_products_are_refused() -> None:
    document = minimal()
    document["policies"].append({**document["policies"][0], "name": "confluence-2"})

    [(field, _, allowed)] = problems_of(document)

    assert field == "(document)"
    assert allowed == "one policy per product (one writer per product); repeated: confluence"


def test_duplicate_policy_names_are_refused() -> None:
    document = minimal()
    document["policies"].append({**document["policies"][0], "product": "jira-software"})

    [(_, _, allowed)] = problems_of(document)

    assert allowed == "policy names must be unique; repeated: confluence"


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just a string\n", "42\n", ""], ids=["list", "str", "int", "empty"]
)
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_file(write(tmp_path, "policy.yaml", text))

    [problem] = caught.value.problems
    assert problem.field == "(document)"
    assert problem.allowed == "expected a mapping with 'policies'"


def test_an_empty_policy_list_is_refused() -> None:
    [(field, _, _)] = problems_of({"policies": []})

    assert field == "policies"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"marker_group": "Confluence-Users"}, "access_group and marker_group must be different groups"),
        ({"entitlement": {"atlassian_group": "confluence-users"}}, "entitlement group must differ"),
        ({"entitlement": {}}, "give exactly one of entra_group_id or atlassian_group"),
        ({"warn_before_days": 90}, "warn_before_days must be less than inactive_after_days"),
        ({"targeting": {"external_only": True}}, "external_only needs internal_domains"),
        ({"external_inactive_after_days": 30}, "external_inactive_after_days needs internal_domains"),
        ({"internal_domains": ["not a domain"]}, "not an email domain: not a domain"),
        ({"mode": "apply"}, "'report' or 'enforce'"),
    ],
    ids=[
        "access=marker",
        "entitlement=access",
        "no entitlement",
        "warn",
        "external_only",
        "external",
        "domain",
        "mode",
    ],
)
def test_incoherent_policies_are_refused_with_a_reason(overrides: dict[str, Any], needle: str) -> None:
    found = problems_of(minimal(**overrides))

    assert any(needle in allowed for _, _, allowed in found), found


def test_a_policy_error_message_never_contains_a_traceback() -> None:
    broken = [
        minimal(product=None, inactive_after_days="soon", seat_cap=[1]),
        {"policies": "all of them"},
        {"policies": [None, 3]},
    ]
    for document in broken:
        with pytest.raises(PolicyError) as caught:
            parse_policy(document)
        assert_reads_like_a_person_wrote_it(caught.value)
        assert all(str(p).startswith("error: ") for p in caught.value.problems)


# --- warnings ---------------------------------------------------------------------------------


def test_a_guest_looking_marker_group_draws_a_warning_citing_the_guest_terms() -> None:
    policies = parse_policy(minimal(marker_group="confluence-guests"))

    [warning] = policy_warnings(policies)

    assert (warning.field, warning.given, warning.severity) == (
        "policies[0].marker_group",
        "confluence-guests",
        "warning",
    )
    assert GUEST_TERMS_URL in warning.allowed
    assert str(warning).startswith("warning: policies[0].marker_group")


def test_a_longer_external_threshold_draws_a_warning() -> None:
    policies = parse_policy(
        minimal(inactive_after_days=30, external_inactive_after_days=60, internal_domains=["example.com"])
    )

    assert [w.field for w in policy_warnings(policies)] == ["policies[0].external_inactive_after_days"]


def test_enforcing_with_a_zero_revocation_limit_draws_a_warning() -> None:
    policies = parse_policy(minimal(mode="enforce", blast_radius={"max_revocations": 0}))

    assert [w.field for w in policy_warnings(policies)] == ["policies[0].blast_radius.max_revocations"]


def test_a_policy_file_is_looked_up_by_name() -> None:
    policies: PolicyFile = parse_policy(minimal())

    with pytest.raises(KeyError, match="no policy named 'jira'; known: confluence"):
        policies.policy("jira")


ALIAS_BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "*a"] * 9) + "]\n" for i in range(9)
)


@pytest.mark.parametrize(
    "text, reason",
    [
        (ALIAS_BOMB, "more than"),
        ("{" * 1200, "nested"),
        ("- " * 3000 + "x", "nested"),
        ("[" * 400 + "]" * 400, "nested"),
    ],
    ids=["alias-bomb", "past-the-stack", "list-past-the-stack", "too-deep"],
)
def test_a_document_nested_or_aliased_past_any_policy_is_refused_at_once(text: str, reason: str) -> None:
    # Regression (fuzzing): nesting past PyYAML's recursion was a RecursionError traceback, and
    # ten lines of aliases took validation minutes to refuse.
    with pytest.raises(PolicyError, match=reason) as caught:
        load_policy_from_settings({"SEATWARDEN_POLICY": text})
    assert [p.field for p in caught.value.problems] == ["(document)"]


def test_a_policy_file_path_with_a_nul_byte_is_a_problem_not_a_traceback() -> None:
    # Regression (fuzzing): Path.read_text raised ValueError for it, which nothing caught.
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy_from_settings({"SEATWARDEN_POLICY_FILE": "policy\x00.yaml"})
