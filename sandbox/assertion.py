"""Checking a client assertion (a JWT signed with the app's certificate), as Entra does.

MSAL signs with RS256 and puts the certificate's SHA-1 thumbprint in ``x5t`` when given
a thumbprint, or PS256 with ``x5t#S256`` when given only the public certificate
(msal 1.39 ``application.py`` ``_build_client``; WIRE.md §11). Claims: ``aud`` is the token
endpoint from discovery, ``iss`` = ``sub`` = client id, ``exp`` about ten minutes ahead.
Source: https://learn.microsoft.com/entra/identity-platform/certificate-credentials
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .tls import ClientCertificate

CLOCK_SKEW_S = 300


@dataclass(frozen=True)
class AssertionRejection:
    """Why the assertion was refused, as an AADSTS code and message."""

    code: int
    message: str


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def check_client_assertion(
    assertion: str,
    *,
    certificate: ClientCertificate,
    client_id: str,
    audiences: Collection[str],
    now: float | None = None,
) -> AssertionRejection | None:
    """None when the assertion is good; otherwise the reason Entra would give."""
    malformed = AssertionRejection(50027, "JWT token is invalid or malformed.")
    parts = assertion.split(".")
    if len(parts) != 3:
        return malformed
    try:
        header: Any = json.loads(_b64url_decode(parts[0]))
        claims: Any = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return malformed
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return malformed
    der = certificate.certificate.public_bytes(serialization.Encoding.DER)
    known = {
        ("x5t", _b64url(_digest(hashes.SHA1(), der))),  # noqa: S303 - x5t is SHA-1
        ("x5t#S256", _b64url(_digest(hashes.SHA256(), der))),
    }
    # msal keeps base64 padding on thumbprints; the JWS spec drops it. Accept both.
    presented = {(name, str(header[name]).rstrip("=")) for name in ("x5t", "x5t#S256") if name in header}
    if not presented & known:
        return AssertionRejection(
            700027,
            "The certificate with identifier used to sign the "
            "client assertion is not registered on application.",
        )
    public_key = certificate.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    signed = f"{parts[0]}.{parts[1]}".encode()
    try:
        if header.get("alg") == "RS256":
            public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif header.get("alg") == "PS256":
            public_key.verify(
                signature,
                signed,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                hashes.SHA256(),
            )
        else:
            return malformed
    except InvalidSignature:
        return AssertionRejection(700027, "Client assertion failed signature validation.")
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return AssertionRejection(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )
    if claims.get("aud") not in audiences:
        return AssertionRejection(
            50013,
            f"Assertion audience does not match the expected "
            f"audience. The audience in the assertion was "
            f"'{claims.get('aud')}'.",
        )
    moment = time.time() if now is None else now
    expires = claims.get("exp")
    not_before = claims.get("nbf", claims.get("iat", 0))
    if not isinstance(expires, (int, float)) or not isinstance(not_before, (int, float)):
        return malformed
    if moment > expires + CLOCK_SKEW_S or moment < not_before - CLOCK_SKEW_S:
        return AssertionRejection(700024, "Client assertion is not within its valid time range.")
    return None


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()
