"""The submission listeners' TLS: the configured certificate, or a self-signed one kept in the data dir.

SES's endpoints present a public certificate; a self-hosted server often has none at first. Clients
that verify certificates then need ``smtp.tls_cert`` (or to trust the generated one, whose PEM file
is in the data dir); the many SMTP clients that encrypt without verifying work at once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from sesame.config import Settings
from sesame.errors import ConfigError
from sesame.storage.files import write_private

log = logging.getLogger(__name__)

CERT_FILE, KEY_FILE = "smtp-tls-cert.pem", "smtp-tls-key.pem"


def server_context(settings: Settings, hostname: str) -> ssl.SSLContext:
    """The server-side TLS context of the submission listeners (TLS 1.2 and later)."""
    cert, key = settings.smtp.tls_cert, settings.smtp.tls_key
    if bool(cert) != bool(key):
        raise ConfigError("smtp.tls_cert and smtp.tls_key go together: set both or neither")
    if not cert:
        cert, key = (str(p) for p in self_signed(settings.data_dir, hostname))
        if settings.mode == "serve":
            log.warning(
                "SMTP TLS uses a self-signed certificate (%s); set smtp.tls_cert and smtp.tls_key "
                "for one that clients can verify",
                cert,
            )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the SMTP certificate {cert} / key {key}: {exc}") from exc
    return context


def self_signed(data_dir: Path, hostname: str) -> tuple[Path, Path]:
    """The generated certificate and key, made once (RSA 2048, ten years, the host name and loopback
    as subject alternative names) and reused by later runs."""
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    cert_pem, key_pem = self_signed_pem(
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        [hostname, "localhost"],
        ["127.0.0.1", "::1"],
        days=3650,
    )
    write_private(key_path, key_pem)
    write_private(cert_path, cert_pem)
    return cert_path, key_path


def self_signed_pem(
    key: CertificateIssuerPrivateKeyTypes,
    names: list[str],
    addresses: list[str],
    *,
    days: int,
    ca: bool = False,
) -> tuple[bytes, bytes]:
    """A certificate for ``names`` (the first is its subject) and IP ``addresses``, signed with its own
    ``key``, and the key: both PEM. ``ca``: it may also serve as a client's trust anchor."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
