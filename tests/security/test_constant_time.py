"""Every comparison of a secret is constant-time (`hmac.compare_digest`).

An `==` on a signature or a shared secret returns as soon as a byte differs, so its timing
tells an attacker how much of a guess was right. The scan reads the source of the app (shared/,
functions/, function_app.py) and flags `==`, `!=`, `in` and `not in` where one side is named
like a secret (secret, signature, token, client_state, authorization, api_key, password…) and
the other is not a literal: comparing a secret with a literal (`token is None`, `kind ==
"token"`) reveals nothing. What the scan flags but compares no secret is listed in
`NOT_SECRETS`, each with its reason. The sandbox (sandbox/) stands in for the vendors in tests
and is never deployed, so it is not scanned.
"""

from __future__ import annotations

import ast
import hmac
import re
from pathlib import Path

import pytest

from shared.services import webhooks

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [ROOT / "function_app.py", *(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
)

SECRET_NAME = re.compile(
    r"secret|signature|(?<!skip)(?<!delta)token|client_?state|authori[sz]ation|api_?key|password|credential|"
    r"\bsig\b|hmac|digest",
    re.IGNORECASE,
)

#: (file, the comparison's source text) flagged by the scan that compares no secret, and why.
NOT_SECRETS: dict[tuple[str, str], str] = {
    ("shared/graph.py", "has_secret == has_cert"): "two booleans: which credentials are configured",
    ("shared/http.py", "secret not in self._secrets"): (
        "the redaction list checks whether it already holds one of Seatwarden's own secrets; "
        "no caller's guess is compared, so no timing answers one"
    ),
    ("shared/http.py", "secret not in self._recent_secrets"): "the same, for the recent tokens",
    ("shared/store/leases.py", 'entity.get("token") == lease.token'): (
        "a lease's acquisition id (a uuid4 Seatwarden made) read back from its own table: "
        "an ownership check, not a credential anyone outside supplies"
    ),
}


def name_of(node: ast.AST) -> str | None:
    """The name an expression is known by: a variable, an attribute, a subscript or .get() key,
    or the function called."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if isinstance(node, ast.Call):
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getattr") and args:
            return args[0]
        if isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(args) == 1:
            return args[0]
        return name_of(node.func)
    return None


def is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(is_literal(e) for e in node.elts)
    return False


def _checks_a_credential(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Named like a secret, or a `verify…` that takes one (or the `expected` value of one)."""
    if SECRET_NAME.search(function.name):
        return True
    params = [a.arg for a in function.args.args + function.args.kwonlyargs]
    return "verify" in function.name and any(SECRET_NAME.search(a) or a == "expected" for a in params)


def _in_checks(tree: ast.AST) -> set[int]:
    """ids of the comparisons inside a function that checks a credential, whose values may be
    called `given` and `expected` (shared/services/webhooks.py)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _checks_a_credential(node):
            inside.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Compare))
    return inside


def secret_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, text) of each comparison of a secret-named value with a non-literal, and of any
    two non-literals inside a function that checks a credential."""
    found = []
    tree = ast.parse(source)
    in_checks = _in_checks(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            if not isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
                continue
            if is_literal(left) or is_literal(right):
                continue
            names = [n for n in (name_of(left), name_of(right)) if n]
            if id(node) in in_checks or any(SECRET_NAME.search(n) for n in names):
                found.append((node.lineno, ast.get_source_segment(source, node) or ast.dump(node)))
    return found


def test_no_secret_in_the_app_is_compared_with_equality() -> None:
    flagged = []
    for path in SOURCES:
        relative = str(path.relative_to(ROOT))
        for line, text in secret_comparisons(path.read_text(encoding="utf-8")):
            if (relative, text) not in NOT_SECRETS:
                flagged.append(f"{relative}:{line}: {text}")
    assert flagged == [], "compare secrets with hmac.compare_digest:\n" + "\n".join(flagged)


def test_every_exemption_is_still_in_the_code() -> None:
    texts = {(str(p.relative_to(ROOT)), t) for p in SOURCES for _, t in secret_comparisons(p.read_text())}
    assert set(NOT_SECRETS) <= texts


@pytest.mark.parametrize(
    "source",
    [
        "if given_signature == expected: pass",
        "ok = headers.get('x-hub-signature') != jira_signature(secret, body)",
        "if settings.graph_client_state == item['clientState']: pass",
        "if request.headers['Authorization'] in allowed: pass",
        "same = api_key == other",
        "valid = a == b == token",
        "def verify_authorization(headers, expected):\n    return headers.get('x') == expected",
    ],
)
def test_the_scan_flags_a_secret_compared_with_equality(source: str) -> None:
    assert secret_comparisons(source), source


@pytest.mark.parametrize(
    "source",
    [
        "if hmac.compare_digest(given_signature, expected): pass",
        "if token is None: pass",
        "if kind == 'token': pass",
        "if not given.startswith('sha256='): pass",
        "if len(signature) != 71: pass",
        "if status == expected_status: pass",
        "if skiptoken == previous: pass",
        "def verify_authorization(headers, expected):\n    return len(expected) == 0",
    ],
)
def test_the_scan_passes_constant_time_and_literal_comparisons(source: str) -> None:
    assert not secret_comparisons(source), source


def test_the_webhook_checks_reach_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the source: each check of a signature, Authorization or clientState calls it."""
    calls: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", recording)
    body = b'{"webhookEvent": "user_updated"}'
    webhooks.verify_jira({"x-hub-signature": webhooks.jira_signature("s3cret", body)}, body, "s3cret")
    webhooks.verify_authorization({"authorization": "Bearer abc"}, "Bearer abc")
    webhooks.parse_graph({"value": [{"clientState": "state-1", "resource": "groups/g"}]}, "state-1")
    assert len(calls) == 3
