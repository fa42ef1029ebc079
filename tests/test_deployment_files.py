"""The deployment files, checked on paper: host.json, azure.yaml, local.settings.json.example,
.funcignore and the Bicep under infra/.

Nothing here reaches Azure. The Bicep is read as text (no Bicep compiler is installed here); the
app settings it sets are taken from the block between `// app-settings:begin` and
`// app-settings:end` in infra/modules/function.bicep and compared with the settings the code
reads (shared/settings.py `Settings.from_env`, shared/config.py `load_policy_from_settings`).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from shared.store import QUEUE_KINDS

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
FUNCTION_BICEP = INFRA / "modules" / "function.bicep"

# Settings read by the Functions host or the Azure SDK, not by Seatwarden's code.
#  - AzureWebJobsStorage__*: identity-based host storage,
#    https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
#  - APPLICATIONINSIGHTS_*: https://learn.microsoft.com/azure/azure-functions/configure-monitoring#enable-microsoft-entra-authentication
#  - AZURE_CLIENT_ID: the user-assigned identity for azure-identity's DefaultAzureCredential.
#  - MICROSOFT_PROVIDER_AUTHENTICATION_SECRET: the sign-in app's client secret, read by App Service
#    authentication (authsettingsV2 clientSecretSettingName),
#    https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad
HOST_SETTINGS = frozenset(
    {
        "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "AZURE_CLIENT_ID",
    }
)

# Timer schedules, read by the timer triggers as %NAME% binding expressions.
SCHEDULE_SETTINGS = {
    "RECONCILE_SCHEDULE": "0 0 2 * * *",
    "EVENTS_POLL_SCHEDULE": "0 */1 * * * *",
    "SUBSCRIPTION_KEEPER_SCHEDULE": "0 0 */6 * * *",
}

# Settings that hold secrets: in Azure they must be Key Vault references.
SECRET_SETTINGS = frozenset(
    {
        "ATLASSIAN_API_KEY",
        "ENTRA_CLIENT_SECRET",
        "JIRA_WEBHOOK_SECRET",
        "ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION",
        "GRAPH_CLIENT_STATE",
    }
)

# Settings Flex Consumption does not take (they conflict with functionAppConfig or are ignored):
# https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
FLEX_DEPRECATED_SETTINGS = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_PROCESS_COUNT",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTOVERVNET",
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "WEBSITE_TIME_ZONE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
    }
)

# Built-in role definition IDs (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
ALLOWED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
}

TABLES = ("users", "runs", "results", "audit", "deliveries", "leases", "cursors", "subscriptions")
QUEUES = tuple(f"seatwarden-{kind}" for kind in QUEUE_KINDS)


def _json(name: str) -> dict:
    return json.loads((ROOT / name).read_text(encoding="utf-8"))


def _timespan(value: str) -> timedelta:
    match = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})", value)
    assert match, f"{value!r} is not an hh:mm:ss TimeSpan"
    hours, minutes, seconds = (int(g) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _strip_bicep_comments(text: str) -> str:
    """Drops // line comments, leaving '...' strings (and the URLs in them) alone."""
    out = []
    for line in text.splitlines():
        in_string = escaped = False
        cut = len(line)
        for i, ch in enumerate(line):
            if escaped:
                escaped = False
            elif in_string and ch == "\\":
                escaped = True
            elif ch == "'":
                in_string = not in_string
            elif not in_string and line.startswith("//", i):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def _bicep_app_settings() -> dict[str, str]:
    """Setting name -> the Bicep expression of its value, from the marked block."""
    text = FUNCTION_BICEP.read_text(encoding="utf-8")
    begin, end = "// app-settings:begin", "// app-settings:end"
    assert text.count(begin) == 1 and text.count(end) == 1, f"{FUNCTION_BICEP} lost its markers"
    block = _strip_bicep_comments(text.split(begin, 1)[1].split(end, 1)[0])
    # Every app setting name has an underscore; Bicep identifiers in this block are camelCase.
    pairs = re.findall(r"\b([A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+)\s*:\s*([^\n]*)", block)
    settings = {name: value.strip() for name, value in pairs}
    assert settings, "no app settings found between the markers"
    return settings


def _names_read_by_code() -> set[str]:
    """App settings the code reads: get("X") in Settings.from_env, env.get("X") in config.py."""
    names: set[str] = set()
    settings_tree = ast.parse((ROOT / "shared" / "settings.py").read_text(encoding="utf-8"))
    from_env = next(
        node
        for node in ast.walk(settings_tree)
        if isinstance(node, ast.FunctionDef) and node.name == "from_env"
    )
    for node in ast.walk(from_env):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    config_tree = ast.parse((ROOT / "shared" / "config.py").read_text(encoding="utf-8"))
    for node in ast.walk(config_tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    # Guard against the parse silently finding nothing.
    assert {"ATLASSIAN_API_KEY", "ATLASSIAN_ORG_ID", "SEATWARDEN_POLICY"} <= names, names
    return names


# --- host.json ----------------------------------------------------------------------------------


def test_host_json_uses_the_bundle_for_the_v2_python_model() -> None:
    host = _json("host.json")
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }


def test_function_timeout_fits_flex_consumption() -> None:
    """Flex Consumption: default 30 min, no enforced maximum
    (https://learn.microsoft.com/azure/azure-functions/functions-scale#timeout). Seatwarden's
    invocations are short queued batches, so the cap sits well under the default."""
    timeout = _timespan(_json("host.json")["functionTimeout"])
    assert timedelta(minutes=1) <= timeout <= timedelta(minutes=30)


def test_queue_trigger_settings() -> None:
    """https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json"""
    queues = _json("host.json")["extensions"]["queues"]
    # The default maxPollingInterval backs off to a minute on an idle queue: a returning person
    # would be re-licensed up to a minute late.
    assert queues["maxPollingInterval"] == "00:00:02"
    # After 5 failed tries the message moves to "<queue>-poison".
    assert queues["maxDequeueCount"] == 5
    assert queues["messageEncoding"] == "base64"
    # The executor calls rate-limited APIs: few messages in parallel per instance.
    assert 1 <= queues["batchSize"] <= 8
    assert 0 <= queues.get("newBatchThreshold", 0) < queues["batchSize"]
    assert _timespan(queues["visibilityTimeout"]) > timedelta(0)


def test_application_insights_never_samples_away_requests() -> None:
    logging = _json("host.json")["logging"]
    sampling = logging["applicationInsights"]["samplingSettings"]
    assert sampling["isEnabled"] is True
    assert "Request" in sampling["excludedTypes"].split(";")
    assert logging["logLevel"]["default"] in {"Information", "Warning"}


# --- azure.yaml ---------------------------------------------------------------------------------


def test_azure_yaml_deploys_one_python_function_service() -> None:
    """https://learn.microsoft.com/azure/developer/azure-developer-cli/azd-schema"""
    project = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert project["infra"]["provider"] == "bicep"
    assert project["infra"]["path"] == "infra"
    assert (ROOT / project["infra"]["path"] / f"{project['infra'].get('module', 'main')}.bicep").is_file()
    assert set(project["services"]) == {"api"}
    assert project["services"]["api"] == {"project": ".", "language": "python", "host": "function"}


def test_the_app_carries_the_azd_service_tag() -> None:
    assert "'azd-service-name': 'api'" in FUNCTION_BICEP.read_text(encoding="utf-8")


# --- local.settings.json.example ----------------------------------------------------------------

_PLACEHOLDER = re.compile(r"^<[^<>\s]+>$")
_SAFE_LITERALS = {
    "python",
    "UseDevelopmentStorage=true",
    "https://api.atlassian.com/admin",
    "https://graph.microsoft.com/v1.0",
    "https://login.microsoftonline.com",
    *SCHEDULE_SETTINGS.values(),
}
_SECRET_LOOKING = [
    re.compile(r"AccountKey=", re.IGNORECASE),
    re.compile(r"SharedAccessSignature|[?&]sig=", re.IGNORECASE),
    re.compile(r"^eyJ[A-Za-z0-9_-]{10,}"),  # a JWT
    re.compile(r"ATATT[A-Za-z0-9_=-]{10,}"),  # an Atlassian API token
    re.compile(r"-----BEGIN"),  # a PEM key or certificate
    # A long run of letters and digits (base64, hex, a GUID without dashes): not hyphenated words.
    re.compile(r"(?=[A-Za-z+/=_~.]*\d)(?=[0-9+/=_~.]*[A-Za-z])[A-Za-z0-9+/=_~.]{24,}"),
]


def test_local_settings_example_runs_on_azurite_with_the_python_worker() -> None:
    example = _json("local.settings.json.example")
    assert example["IsEncrypted"] is False
    values = example["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    for name, schedule in SCHEDULE_SETTINGS.items():
        assert values[name] == schedule


def test_local_settings_example_lists_every_setting_the_code_reads() -> None:
    values = _json("local.settings.json.example")["Values"]
    # Identity-based storage is for Azure; locally the connection string above is used.
    # WEBSITE_AUTH_ENABLED is set by the platform when App Service authentication is on; there is
    # none locally, so the self-service page answers 503 there.
    expected = _names_read_by_code() - {"AzureWebJobsStorage__accountName", "WEBSITE_AUTH_ENABLED"}
    missing = sorted(expected - set(values))
    assert not missing, f"add to local.settings.json.example (with a placeholder): {missing}"


def test_local_settings_example_holds_only_placeholders() -> None:
    values = _json("local.settings.json.example")["Values"]
    for name, value in values.items():
        assert isinstance(value, str), name
        assert value == "" or value in _SAFE_LITERALS or _PLACEHOLDER.match(value), (
            f"{name}={value!r}: use '' or a <placeholder>"
        )
        if value in _SAFE_LITERALS:
            continue
        for pattern in _SECRET_LOOKING:
            assert not pattern.search(value), f"{name} looks like a real secret"
    for name in SECRET_SETTINGS:
        assert values[name] == "" or _PLACEHOLDER.match(values[name]), name


def test_local_settings_json_itself_stays_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "local.settings.json" in ignored


# --- .funcignore --------------------------------------------------------------------------------


def _funcignore() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def test_funcignore_leaves_development_files_out_of_the_package() -> None:
    patterns = _funcignore()
    for path in (
        "tests",
        "bench",
        "sandbox",
        "infra",
        "docs",
        "node_modules",
        ".venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "local.settings.json",
    ):
        assert any(fnmatch.fnmatch(path, p) for p in patterns), f".funcignore does not exclude {path}"


def test_funcignore_keeps_what_the_app_needs() -> None:
    patterns = _funcignore()
    for path in ("function_app.py", "functions", "shared", "host.json", "requirements.txt"):
        assert not any(fnmatch.fnmatch(path, p) for p in patterns), f".funcignore excludes {path}"


# --- Bicep: app settings ------------------------------------------------------------------------


def test_every_app_setting_in_bicep_is_read_by_the_code_or_the_host() -> None:
    known = _names_read_by_code() | set(SCHEDULE_SETTINGS) | HOST_SETTINGS
    unknown = sorted(set(_bicep_app_settings()) - known)
    assert not unknown, f"infra sets app settings nothing reads: {unknown}"


def test_bicep_sets_identity_based_host_storage_and_the_core_settings() -> None:
    settings = _bicep_app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert "AzureWebJobsStorage" not in settings  # no connection string, no key
    for name in (
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__clientId",
        "AZURE_CLIENT_ID",
        "ATLASSIAN_ORG_ID",
        "ATLASSIAN_API_KEY",
        "SEATWARDEN_PUBLIC_URL",
        *SCHEDULE_SETTINGS,
    ):
        assert name in settings, name
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


def test_secrets_reach_the_app_only_as_key_vault_references() -> None:
    settings = _bicep_app_settings()
    for name in SECRET_SETTINGS & set(settings):
        assert settings[name].startswith("'@Microsoft.KeyVault(SecretUri="), f"{name}: {settings[name]}"
    assert "keyVaultReferenceIdentity: identityId" in FUNCTION_BICEP.read_text(encoding="utf-8")


def test_no_flex_deprecated_setting_and_no_storage_key_anywhere_in_infra() -> None:
    for path in INFRA.rglob("*.bicep"):
        code = _strip_bicep_comments(path.read_text(encoding="utf-8"))
        for name in FLEX_DEPRECATED_SETTINGS:
            assert not re.search(rf"\b{name}\s*:", code), f"{path.name} sets {name}"
        assert "listKeys(" not in code, f"{path.name} reads storage account keys"
        assert "AccountKey=" not in code, path.name


# --- Bicep: App Service authentication --------------------------------------------------------


def _auth_settings_block() -> str:
    code = _strip_bicep_comments(FUNCTION_BICEP.read_text(encoding="utf-8"))
    match = re.search(
        r"^resource authSettings '([^']+)' = if \(signInEnabled\) \{\n(.*?)^\}", code, re.M | re.S
    )
    assert match, "function.bicep has no authsettingsV2 resource guarded by signInEnabled"
    assert match.group(1).startswith("Microsoft.Web/sites/config@")
    return match.group(2)


def _excluded(path: str, patterns: list[str]) -> bool:
    """App Service authentication's excludedPaths: exact, or a subtree with a trailing /*."""
    return any(path == p or (p.endswith("/*") and path.startswith(p[:-1])) for p in patterns)


def test_app_service_authentication_signs_people_in_with_entra_and_keeps_no_tokens() -> None:
    block = _auth_settings_block()
    assert "name: 'authsettingsV2'" in block
    assert "requireAuthentication: true" in block
    assert "unauthenticatedClientAction: 'RedirectToLoginPage'" in block
    assert "requireHttps: true" in block
    assert re.search(r"azureActiveDirectory: \{\s*enabled: true", block)
    assert "clientId: signInClientId" in block
    assert "openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'" in block
    assert "clientSecretSettingName: 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'" in block
    assert re.search(r"tokenStore: \{\s*enabled: false", block)
    secret = _bicep_app_settings()["MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"]
    assert secret == "'@Microsoft.KeyVault(SecretUri=${vaultReferenceUris.signInClientSecret})'"


def test_sign_in_is_required_everywhere_but_on_the_routes_that_authenticate_themselves() -> None:
    """Webhooks (signatures, clientState), the admin API (function keys) and the health probe
    must stay reachable without an Entra sign-in; the self-service page must not."""
    import azure.functions as func

    import function_app
    from sandbox.funcserver import registered

    block = _auth_settings_block()
    listed = re.search(r"excludedPaths: \[(.*?)\]", block, re.S)
    assert listed, "authsettingsV2 lists no excludedPaths"
    patterns = re.findall(r"'([^']+)'", listed.group(1))
    routes = {}
    for function in registered(function_app.app):
        trigger = function.get_trigger()
        if getattr(trigger, "route", None) is not None:
            routes[f"/api/{trigger.route.strip('/')}"] = trigger.auth_level
    assert "/api/relicense" in routes and "/api/webhooks/atlassian" in routes, routes
    for path, level in routes.items():
        if path == "/api/relicense":
            assert not _excluded(path, patterns), "the self-service page must require sign-in"
        else:
            assert _excluded(path, patterns), f"{path} ({level}) would be sent to the Entra sign-in page"
            assert level in (func.AuthLevel.ANONYMOUS, func.AuthLevel.FUNCTION, func.AuthLevel.ADMIN)


def test_sign_in_is_off_until_a_sign_in_app_is_given() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert parameters["signInClientId"] == {"value": "${SEATWARDEN_SIGNIN_CLIENT_ID=}"}
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert "param signInClientId string = ''" in main
    assert "signInClientId: signInClientId" in main
    code = FUNCTION_BICEP.read_text(encoding="utf-8")
    assert "var signInEnabled = !empty(signInClientId)" in code
    assert "var signInSettings = signInEnabled ? {" in code


# --- Bicep: resources ---------------------------------------------------------------------------


def test_function_app_is_flex_consumption_python_311_with_identity_deployment() -> None:
    code = FUNCTION_BICEP.read_text(encoding="utf-8")
    assert "name: 'FC1'" in code and "tier: 'FlexConsumption'" in code
    assert re.search(r"runtime:\s*\{\s*name: 'python'\s*version: '3.11'\s*\}", code)
    assert "type: 'UserAssignedIdentity'" in code
    assert "userAssignedIdentityResourceId: identityId" in code
    assert "httpsOnly: true" in code
    assert "kind: 'functionapp,linux'" in code


def test_storage_account_takes_no_keys_and_no_anonymous_access() -> None:
    code = (INFRA / "modules" / "storage.bicep").read_text(encoding="utf-8")
    assert "allowSharedKeyAccess: false" in code
    assert "allowBlobPublicAccess: false" in code
    assert "minimumTlsVersion: 'TLS1_2'" in code
    assert "publicAccess: 'None'" in code


def test_storage_declares_the_state_tables_and_work_queues() -> None:
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    for name in (*TABLES, *QUEUES):
        assert f"'{name}'" in main, name


def test_key_vault_uses_rbac_soft_delete_and_purge_protection_without_secret_values() -> None:
    code = (INFRA / "modules" / "keyvault.bicep").read_text(encoding="utf-8")
    assert "enableRbacAuthorization: true" in code
    assert "enableSoftDelete: true" in code
    assert "enablePurgeProtection: true" in code
    # Each secret is a placeholder written once, from a seed generated at deployment time.
    values = re.findall(r"^\s*value:\s*(.+)$", code, flags=re.MULTILINE)
    assert values, "no secrets declared"
    for value in values:
        assert value.startswith("'unset-${guid(placeholderSeed,"), value
    assert len(re.findall(r"^@onlyIfNotExists\(\)$", code, flags=re.MULTILINE)) == len(values)
    assert "param placeholderSeed string = newGuid()" in code


def test_role_assignments_are_least_privilege() -> None:
    roles = (INFRA / "modules" / "roles.bicep").read_text(encoding="utf-8")
    code = _strip_bicep_comments(roles)
    guids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", code))
    assert guids == set(ALLOWED_ROLES), {g: ALLOWED_ROLES.get(g, "?") for g in guids ^ set(ALLOWED_ROLES)}
    all_infra = "\n".join(p.read_text(encoding="utf-8") for p in INFRA.rglob("*.bicep"))
    for guid, role in FORBIDDEN_ROLES.items():
        assert guid not in all_infra, role


def test_parameters_file_binds_only_declared_parameters() -> None:
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    declared = dict(re.findall(r"^param (\w+) \w+( =)?", main, flags=re.MULTILINE))
    required = {name for name, default in declared.items() if not default}
    bound = set(json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"])
    assert bound <= set(declared), bound - set(declared)
    assert required <= bound, required - bound


def test_modules_exist_and_outputs_azd_uses_are_there() -> None:
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert main.startswith("//") and "targetScope = 'subscription'" in main
    for module in re.findall(r"^module \w+ '([^']+)'", main, flags=re.MULTILINE):
        assert (INFRA / module).is_file(), module
    for output in (
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_KEY_VAULT_NAME",
    ):
        assert re.search(rf"^output {output} ", main, flags=re.MULTILINE), output


def test_bicep_parses_when_a_bicep_grammar_is_installed() -> None:
    """A syntax check with tree-sitter-bicep, when it is installed (it is not a project
    dependency; no Bicep compiler can be installed here)."""
    tree_sitter = pytest.importorskip("tree_sitter")
    grammar = pytest.importorskip("tree_sitter_bicep")
    parser = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    for path in INFRA.rglob("*.bicep"):
        assert not parser.parse(path.read_bytes()).root_node.has_error, path.name


def test_a_poisoned_action_raises_an_alert_to_the_admins() -> None:
    """DESIGN.md, "Flows": after the last try the message lands in the poison queue and an
    alert is raised. The alert counts the poison handlers' invocations (requests, which
    host.json keeps out of sampling), so it must name them as the app registers them."""
    import function_app
    from sandbox.funcserver import registered

    monitoring = (INFRA / "modules" / "monitoring.bicep").read_text(encoding="utf-8")
    (prefix,) = re.findall(r'requests \| where operation_Name startswith "([^"]+)"', monitoring)
    handlers = [f for f in registered(function_app.app) if f.get_function_name().startswith(prefix)]
    assert "record_poisoned_action" in {f.get_function_name() for f in handlers}
    for handler in handlers:  # and nothing else: only poison handlers raise it
        (trigger,) = [b for b in handler.get_bindings() if b.type == "queueTrigger"]
        assert trigger.queue_name.endswith("-poison")  # type: ignore[attr-defined]
    assert "Request" in json.loads((ROOT / "host.json").read_text())["logging"]["applicationInsights"][
        "samplingSettings"
    ]["excludedTypes"].split(";")
    assert "Microsoft.Insights/scheduledQueryRules@" in monitoring
    assert "actionGroups: empty(alertEmailList) ? [] : [alertRecipients.id]" in monitoring
    main = (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert re.search(r"module monitoring [^}]*alertEmails: adminMail", main, flags=re.DOTALL)
