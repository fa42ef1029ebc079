"""Bad policies: the loader names every problem, and `seatwarden config check` never shows a traceback.

Three doors, one loader (shared/config.py): a decoded document (`parse_policy`), text in YAML
or JSON (`decode_policy_text`, the app setting SEATWARDEN_POLICY), and a file
(`config check FILE`). Each input either loads or raises `PolicyError`; nothing else.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from shared.cli import app as cli
from shared.config import PolicyError, PolicyFile, load_policy_from_settings, parse_policy, printable
from tests.fuzz import strategies as s
from tests.fuzz.conftest import fuzz_settings, tried
from tests.test_config import VALID_YAML

VALID = yaml.safe_load(VALID_YAML)

Path_ = tuple[str | int, ...]


def field_path(path: Path_) -> str:
    """A path as `config check` names it: policies[0].targeting.domains."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def node_paths(value: Any, here: Path_ = ()) -> list[Path_]:
    paths = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += node_paths(child, (*here, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            paths += node_paths(child, (*here, i))
    return paths


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """The valid example with one to three places changed: a value replaced, a key dropped, an
    unknown key added. Returns the document and the field paths of the places changed."""
    document = copy.deepcopy(VALID)
    changed: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(node_paths(document)))
        if not path:
            return draw(s.json_values), ["(document)"]
        *parent_path, last = path
        parent = document
        for part in parent_path:
            parent = parent[part]
        operation = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if operation == "replace":
            parent[last] = draw(
                s.json_values | st.sampled_from(["", "CONFLUENCE", -1, 0, 10**9, "report ", None])
            )
        elif operation == "drop" and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent[last], dict):
            key = draw(st.sampled_from(["nmae", "Mode", "extra", ""]))
            parent[last][key] = 1
            path = (*path, key)
        changed.append(field_path(tuple(path)))
    return document, changed


def related(field: str, changed: list[str]) -> bool:
    """Whether a problem at `field` can come from a change at one of `changed`: the place itself,
    a parent (a check across fields), a child (a type error inside), or the whole document."""
    if field == "(document)" or "(document)" in changed:
        return True
    return any(c.startswith(field) or field.startswith(c) for c in changed)


def assert_named(error: PolicyError) -> None:
    """Every problem names a field and what is allowed, and the message lists each one."""
    assert error.problems
    for problem in error.problems:
        assert problem.field and problem.allowed
        assert problem.field_text in str(error) and printable(problem.allowed) in str(error)
    assert all(line.isprintable() for line in str(error).splitlines()), str(error)


@fuzz_settings(500)
@given(case=mutated())
def test_a_changed_policy_loads_or_each_problem_names_the_field_that_changed(
    case: tuple[Any, list[str]],
) -> None:
    document, changed = case
    try:
        parse_policy(document, "fuzzed")
    except PolicyError as error:
        tried("policy loader: changed documents", "refused")
        assert_named(error)
        unrelated = [p.field for p in error.problems if not related(p.field, changed)]
        assert not unrelated, f"problems at {unrelated}, but only {changed} changed"
    else:
        tried("policy loader: changed documents", "loaded")


#: YAML that breaks naive loaders: tags that construct objects, alias bombs, deep nesting.
HOSTILE_YAML = (
    "!!python/object/apply:os.system ['true']",
    "policies: !!binary aGVsbG8=",
    "a: &a [1]\nb: *a\n"
    + "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "*a"] * 9) + "]\n" for i in range(9)),
    "[" * 400 + "]" * 400,  # decodes, and is refused before validation walks it
    "- " * 3000 + "x",
    "{" * 1200,  # past PyYAML's recursion
    "policies:\n\t- name: x",
    "version: 1\nversion: 2\npolicies: []",
    "\ufeffversion: 1",
    "policies: [{name: x}]\n...\n---\npolicies: []",
    "%YAML 9.9\n---\n{}",
    "key: \x00",
    "",
    "~",
    "0x10",
)


@fuzz_settings(200)
@given(text=st.text(max_size=300) | st.sampled_from(HOSTILE_YAML) | st.builds(json.dumps, s.json_values))
def test_any_text_in_the_policy_setting_loads_or_is_a_policy_error(text: str) -> None:
    try:
        load_policy_from_settings({"SEATWARDEN_POLICY": text})
    except PolicyError as error:
        tried("policy loader: SEATWARDEN_POLICY text", "refused")
        assert_named(error)
    else:
        tried("policy loader: SEATWARDEN_POLICY text", "loaded")


def config_check(path: Path, *options: str) -> Any:
    result = CliRunner().invoke(cli, ["config", "check", str(path), *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


@fuzz_settings(40)
@given(
    content=st.one_of(
        st.builds(lambda case: yaml.safe_dump(case[0]).encode(), mutated()),
        s.bodies(s.json_values),
        st.sampled_from(HOSTILE_YAML).map(lambda t: t.encode("utf-8", errors="replace")),
        st.sampled_from(
            [VALID_YAML.encode("utf-16"), VALID_YAML.encode("utf-8-sig"), VALID_YAML.encode("latin-1")]
        ),
    )
)
def test_config_check_exits_1_naming_every_problem_and_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_bytes(content)
    plain = config_check(path)
    as_json = config_check(path, "--json")
    tried("seatwarden config check FILE", plain.exit_code)
    report = json.loads(as_json.stdout)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert plain.exit_code == as_json.exit_code == (1 if errors else 0)
    assert report["ok"] is (not errors)
    squashed = "".join(plain.output.split())
    assert all(c.isprintable() for c in squashed), plain.output  # no key steers the terminal
    for problem in report["problems"]:
        assert problem["field"] and problem["allowed"], problem
        shown = "".join(printable(problem["field"]).split())
        assert shown in squashed, (problem["field"], plain.output)


@pytest.mark.parametrize(
    "content",
    [*s.HOSTILE_BODIES, *(text.encode("utf-8", errors="replace") for text in HOSTILE_YAML)],
    ids=repr,
)
def test_every_hostile_document_is_refused_or_loaded_without_a_traceback(
    tmp_path: Path, content: bytes
) -> None:
    """The random draw above reaches each of these only sometimes; a 5,000-digit integer once
    escaped as a ValueError (PyYAML's int() past Python's digit limit) in one CI run of many."""
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    result = config_check(path, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    try:
        load_policy_from_settings({"SEATWARDEN_POLICY": content.decode("utf-8", errors="replace")})
    except PolicyError as error:
        assert_named(error)


@pytest.mark.parametrize("setting", ["SEATWARDEN_POLICY_FILE"])
def test_a_policy_file_setting_that_is_no_readable_file_is_a_policy_error(
    tmp_path: Path, setting: str
) -> None:
    for value in (str(tmp_path), str(tmp_path / "missing.yaml"), "bad\x00path", "/" + "x" * 5000):
        tried("policy loader: SEATWARDEN_POLICY_FILE paths", "refused")
        with pytest.raises(PolicyError) as caught:
            load_policy_from_settings({setting: value})
        assert_named(caught.value)


def test_the_valid_example_loads() -> None:
    """The mutations start from a policy that loads, so every problem comes from a change."""
    assert isinstance(parse_policy(VALID), PolicyFile)
