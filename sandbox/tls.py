"""Certificates made at start: a private CA and the TLS server certificate it signs, and
the app-registration certificate a confidential client signs its assertions with.

MSAL insists on an ``https`` authority (WIRE.md §11), so the Microsoft side must speak
TLS. A CA plus a leaf, rather than one self-signed leaf, keeps strict verifiers (OpenSSL's
X509_STRICT, which newer Pythons and urllib3 turn on) happy: the file clients trust is a
proper CA certificate, and the leaf names 127.0.0.1 and localhost in its SAN.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .timeutil import UTC

VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class ServerTls:
    ca_cert_path: Path  # what clients trust (e.g. SEATWARDEN_CA_BUNDLE)
    cert_path: Path
    key_path: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


@dataclass(frozen=True)
class ClientCertificate:
    """The app registration's certificate credential (RSA: MSAL signs RS256 or PS256)."""

    pem_path: Path  # private key and certificate in one PEM file
    private_key_pem: str
    certificate_pem: str
    thumbprint: str  # SHA-1, hex upper-case, as the Entra portal shows it
    sha256_thumbprint: str
    certificate: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Seatwarden sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return pem


def make_server_tls(directory: Path) -> ServerTls:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost, written to ``directory``."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Seatwarden sandbox CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "sandbox-ca.pem"
    cert_path = directory / "server-cert.pem"
    key_path = directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, leaf_key)
    return ServerTls(ca_path, cert_path, key_path)


def make_client_certificate(directory: Path, client_id: str) -> ClientCertificate:
    """A self-signed RSA certificate, as uploaded to an Entra app registration."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(f"seatwarden-{client_id[:8]}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .sign(key, hashes.SHA256())
    )
    path = directory / "client-cert.pem"
    key_pem = _write_key(path, key)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(key_pem + cert_pem)
    return ClientCertificate(
        pem_path=path,
        private_key_pem=key_pem.decode(),
        certificate_pem=cert_pem.decode(),
        thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Entra's x5t
        sha256_thumbprint=cert.fingerprint(hashes.SHA256()).hex().upper(),
        certificate=cert,
    )
