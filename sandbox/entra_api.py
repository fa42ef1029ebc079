"""The Entra ID endpoints MSAL calls: OIDC discovery and the v2.0 token endpoint.

Only the client-credentials grant is served, with a client secret or a certificate
assertion (WIRE.md §11). Error bodies follow Entra's shape (``error``,
``error_description`` starting ``AADSTSnnnn:``, ``error_codes``, ``timestamp``,
``trace_id``, ``correlation_id``) because MSAL hands them to the caller as they are.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from .assertion import check_client_assertion
from .org import Org
from .ratelimit import TOKEN
from .routing import ApiRequest, ApiResponse, Router
from .timeutil import UTC
from .tls import ClientCertificate
from .tokens import TokenStore

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's appId
GRAPH_RESOURCES = ("https://graph.microsoft.com", GRAPH_APP_ID)
RESERVED_SCOPES = {"openid", "profile", "offline_access"}


def aad_error(status: int, error: str, code: int, message: str) -> ApiResponse:
    """Entra's token-endpoint error body (WIRE.md §11)."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    return ApiResponse.json(
        status,
        {
            "error": error,
            "error_description": (
                f"AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: "
                f"{correlation_id} Timestamp: {now:%Y-%m-%d %H:%M:%SZ}"
            ),
            "error_codes": [code],
            "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


class EntraApi:
    """OIDC discovery and token issuing for the one app registration the sandbox knows."""

    def __init__(
        self,
        org: Org,
        *,
        client_id: str,
        client_secret: str,
        client_certificate: ClientCertificate,
        tokens: TokenStore,
    ) -> None:
        self._org = org
        self._client_id = client_id
        self._client_secret = client_secret
        self._certificate = client_certificate
        self._tokens = tokens

    def register(self, router: Router) -> None:
        router.add("GET", "/{tenant}/v2.0/.well-known/openid-configuration", TOKEN, self.openid_configuration)
        router.add("GET", "/{tenant}/discovery/v2.0/keys", TOKEN, self.keys)
        router.add("POST", "/{tenant}/oauth2/v2.0/token", TOKEN, self.token)

    def _tenant_error(self, tenant: str) -> ApiResponse | None:
        if tenant.lower() == self._org.identity.tenant_id:
            return None
        return aad_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to "
            "make sure you have the correct tenant ID and are signing into the "
            "correct cloud.",
        )

    # MSAL reads authorization_endpoint, token_endpoint and (optionally)
    # device_authorization_endpoint; the tenant comes from the token_endpoint path.
    # https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
    def openid_configuration(self, req: ApiRequest, tenant: str) -> ApiResponse:
        refused = self._tenant_error(tenant)
        if refused:
            return refused
        root = f"{req.base_url}/{tenant}"
        return ApiResponse.json(
            200,
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{root}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{req.base_url}/oidc/userinfo",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": urlsplit(req.base_url).netloc,
            },
        )

    # https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-signature
    def keys(self, req: ApiRequest, tenant: str) -> ApiResponse:
        # Access tokens here are opaque, so there is no signing key to publish.
        return self._tenant_error(tenant) or ApiResponse.json(200, {"keys": []})

    # Client credentials with a secret or a certificate assertion:
    # https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
    def token(self, req: ApiRequest, tenant: str) -> ApiResponse:
        refused = self._tenant_error(tenant)
        if refused:
            return refused
        try:
            form = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        grant = form.get("grant_type")
        if grant != "client_credentials":
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        if client_id != self._client_id:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        scope_problem = self._scope_problem(form.get("scope", ""), req.base_url)
        if scope_problem:
            return scope_problem
        credential_problem = self._credential_problem(form, req, tenant)
        if credential_problem:
            return credential_problem
        issued = self._tokens.issue(client_id)
        return ApiResponse.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self._tokens.lifetime_s,
                "ext_expires_in": self._tokens.lifetime_s,
                "access_token": issued.value,
            },
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _scope_problem(self, scope: str, base_url: str) -> ApiResponse | None:
        """Client credentials need exactly ``{resource}/.default`` (AADSTS1002012)."""
        requested = [s for s in scope.split() if s not in RESERVED_SCOPES]
        if len(requested) != 1 or not requested[0].endswith("/.default"):
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client "
                "credential flows must have a scope value with /.default "
                "suffixed to the resource identifier (application ID URI).",
            )
        resource = requested[0][: -len("/.default")].rstrip("/")
        accepted = {*GRAPH_RESOURCES, *_loopback_variants(base_url)}
        if resource not in accepted:
            return aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the "
                f"tenant named {self._org.identity.tenant_id}.",
            )
        return None

    def _credential_problem(self, form: dict[str, str], req: ApiRequest, tenant: str) -> ApiResponse | None:
        if "client_secret" in form:
            if secrets.compare_digest(form["client_secret"], self._client_secret):
                return None
            return aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in "
                "the request is the client secret value, not the client secret "
                f"ID, for a secret added to app '{self._client_id}'.",
            )
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER:
                return aad_error(
                    400, "invalid_request", 900023, "Specified client_assertion_type is not supported."
                )
            audiences = {f"{base}/{tenant}/oauth2/v2.0/token" for base in _loopback_variants(req.base_url)}
            rejection = check_client_assertion(
                form["client_assertion"],
                certificate=self._certificate,
                client_id=self._client_id,
                audiences=audiences,
            )
            if rejection is None:
                return None
            return aad_error(401, "invalid_client", rejection.code, rejection.message)
        return aad_error(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for "
            "the 'client_credentials' grant type.",
        )


def _loopback_variants(base_url: str) -> set[str]:
    """The same server named as 127.0.0.1 and as localhost."""
    parts = urlsplit(base_url)
    port = f":{parts.port}" if parts.port else ""
    return {f"{parts.scheme}://{host}{port}" for host in ("127.0.0.1", "localhost")}
