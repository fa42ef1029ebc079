"""App settings, read when a function needs them and never at import.

The Functions host imports `function_app.py` to index the functions before any setting may be
present, so nothing here runs at import time. A missing setting is reported by name when the
function that needs it runs (`MissingSetting`), and secrets never appear in `repr`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ATLASSIAN_DEFAULT_BASE = "https://api.atlassian.com/admin"
GRAPH_DEFAULT_BASE = "https://graph.microsoft.com/v1.0"
ENTRA_DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


_DISABLED_PREFIX, _DISABLED_SUFFIX = "AzureWebJobs.", ".Disabled"


class MissingSetting(RuntimeError):
    """A setting the running function needs is not set. The message names it."""

    def __init__(self, name: str, why: str):
        self.name = name
        super().__init__(f"app setting {name} is not set: {why}")


class InvalidSetting(ValueError):
    """A setting is set to something Seatwarden cannot use. The message names it and says why."""

    def __init__(self, name: str, value: str, expected: str):
        self.name = name
        super().__init__(f"app setting {name} is {value!r}: {expected}")


@dataclass(frozen=True)
class Settings:
    """Every app setting Seatwarden reads, with the real services as defaults."""

    atlassian_api_base: str = ATLASSIAN_DEFAULT_BASE
    atlassian_org_id: str | None = None
    atlassian_api_key: str | None = field(default=None, repr=False)
    graph_api_base: str = GRAPH_DEFAULT_BASE
    entra_authority_host: str = ENTRA_DEFAULT_AUTHORITY
    entra_tenant_id: str | None = None
    entra_client_id: str | None = None
    entra_client_secret: str | None = field(default=None, repr=False)
    entra_client_cert_path: str | None = None
    entra_client_cert_thumbprint: str | None = None
    ca_bundle: str | None = None
    storage_connection: str | None = field(default=None, repr=False)
    storage_account: str | None = None
    table_prefix: str = ""
    jira_webhook_secret: str | None = field(default=None, repr=False)
    audit_webhook_authorization: str | None = field(default=None, repr=False)
    graph_client_state: str | None = field(default=None, repr=False)
    public_base_url: str | None = None
    mail_sender: str | None = None
    #: Functions switched off with `AzureWebJobs.<FUNCTION_NAME>.Disabled` set to true
    #: (https://learn.microsoft.com/azure/azure-functions/disable-function).
    disabled_functions: frozenset[str] = frozenset()
    #: Whom the self-service page tells people to ask (an address or a team's name).
    help_contact: str | None = None
    #: App Service authentication is in front of the app, so its X-MS-CLIENT-PRINCIPAL headers
    #: can be trusted. The platform sets WEBSITE_AUTH_ENABLED; the Functions host itself reads
    #: the principal only when it is true (Azure/azure-functions-host,
    #: src/WebJobs.Script.WebHost/Security/Authentication/AuthenticationLevelHandler.cs).
    easy_auth_enabled: bool = False
    admin_mail: str | None = None
    mail_per_minute: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            atlassian_api_base=(get("ATLASSIAN_API_BASE") or ATLASSIAN_DEFAULT_BASE).rstrip("/"),
            atlassian_org_id=get("ATLASSIAN_ORG_ID"),
            atlassian_api_key=get("ATLASSIAN_API_KEY"),
            graph_api_base=(get("GRAPH_API_BASE") or GRAPH_DEFAULT_BASE).rstrip("/"),
            entra_authority_host=(get("ENTRA_AUTHORITY_HOST") or ENTRA_DEFAULT_AUTHORITY).rstrip("/"),
            entra_tenant_id=get("ENTRA_TENANT_ID"),
            entra_client_id=get("ENTRA_CLIENT_ID"),
            entra_client_secret=get("ENTRA_CLIENT_SECRET"),
            entra_client_cert_path=get("ENTRA_CLIENT_CERT_PATH"),
            entra_client_cert_thumbprint=get("ENTRA_CLIENT_CERT_THUMBPRINT"),
            ca_bundle=get("SEATWARDEN_CA_BUNDLE"),
            # The Functions host's own storage setting doubles as ours unless one is given.
            storage_connection=get("SEATWARDEN_STORAGE") or get("AzureWebJobsStorage"),
            storage_account=get("AzureWebJobsStorage__accountName"),
            table_prefix=get("SEATWARDEN_TABLE_PREFIX") or "",
            jira_webhook_secret=get("JIRA_WEBHOOK_SECRET"),
            audit_webhook_authorization=get("ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION"),
            graph_client_state=get("GRAPH_CLIENT_STATE"),
            public_base_url=get("SEATWARDEN_PUBLIC_URL"),
            mail_sender=get("SEATWARDEN_MAIL_SENDER"),
            disabled_functions=frozenset(
                name[len(_DISABLED_PREFIX) : -len(_DISABLED_SUFFIX)]
                for name, value in env.items()
                if name.startswith(_DISABLED_PREFIX)
                and name.endswith(_DISABLED_SUFFIX)
                and value.strip().lower() in {"true", "1"}
            ),
            help_contact=get("SEATWARDEN_HELP_CONTACT"),
            easy_auth_enabled=(get("WEBSITE_AUTH_ENABLED") or "").lower() == "true",
            admin_mail=get("SEATWARDEN_ADMIN_MAIL"),
            mail_per_minute=get("SEATWARDEN_MAIL_PER_MINUTE"),
        )

    def require(self, attribute: str, why: str) -> str:
        """The value of a setting, or `MissingSetting` naming the app setting to add."""
        value = getattr(self, attribute)
        if not value:
            raise MissingSetting(_SETTING_NAMES.get(attribute, attribute.upper()), why)
        return str(value)

    def function_disabled(self, name: str) -> bool:
        """Whether the app setting `AzureWebJobs.<name>.Disabled` switches the function off."""
        return name in self.disabled_functions

    @property
    def admin_addresses(self) -> tuple[str, ...]:
        """SEATWARDEN_ADMIN_MAIL: the administrators' addresses, comma-separated; () when unset."""
        found = tuple(a.strip() for a in (self.admin_mail or "").split(",") if a.strip())
        for address in found:
            if "@" not in address or any(c.isspace() for c in address):
                raise InvalidSetting(
                    "SEATWARDEN_ADMIN_MAIL", address, "each address must look like name@domain"
                )
        return found

    @property
    def mail_rate_per_minute(self) -> float | None:
        """SEATWARDEN_MAIL_PER_MINUTE: how many mails a minute the sender mailbox may send."""
        if self.mail_per_minute is None:
            return None
        try:
            rate = float(self.mail_per_minute)
        except ValueError:
            rate = 0.0
        if not rate > 0 or rate == float("inf"):
            raise InvalidSetting(
                "SEATWARDEN_MAIL_PER_MINUTE", self.mail_per_minute, "a number of mails per minute above 0"
            )
        return rate

    @property
    def graph_configured(self) -> bool:
        return bool(
            self.entra_tenant_id
            and self.entra_client_id
            and (self.entra_client_secret or self.entra_client_cert_path)
        )


_SETTING_NAMES = {
    "atlassian_org_id": "ATLASSIAN_ORG_ID",
    "atlassian_api_key": "ATLASSIAN_API_KEY",
    "entra_tenant_id": "ENTRA_TENANT_ID",
    "entra_client_id": "ENTRA_CLIENT_ID",
    "entra_client_secret": "ENTRA_CLIENT_SECRET",
    "storage_connection": "AzureWebJobsStorage",
    "jira_webhook_secret": "JIRA_WEBHOOK_SECRET",
    "audit_webhook_authorization": "ATLASSIAN_AUDIT_WEBHOOK_AUTHORIZATION",
    "graph_client_state": "GRAPH_CLIENT_STATE",
    "public_base_url": "SEATWARDEN_PUBLIC_URL",
}
