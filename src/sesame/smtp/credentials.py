"""SES SMTP credentials: the user name is an access key id, the password is derived from its secret.

The derivation is SES's (its developer guide, "Obtaining Amazon SES SMTP credentials"): HMAC-SHA256 keyed
with ``AWS4`` + secret over a fixed date, then chained over the region, the service, the terminator and
the message ``SendRawEmail``, as a SigV4 signing key is; the version byte 0x04 and the 32-byte digest,
base64. The password is therefore regional: one derived for us-east-1 does not open eu-west-1.

Credentials made before 2019 used version 0x02, ``HMAC-SHA256(secret, "SendRawEmail")`` with no region;
they are recognised so that a submission server can answer them as SES does, not accepted as valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The constants of SES's algorithm.
_DATE, _SERVICE, _TERMINAL, _MESSAGE = "11111111", "ses", "aws4_request", "SendRawEmail"
VERSION, LEGACY_VERSION = 0x04, 0x02


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def smtp_password(secret_access_key: str, region: str) -> str:
    """The SMTP password SES derives from ``secret_access_key`` for ``region`` (44 characters)."""
    key = _hmac(("AWS4" + secret_access_key).encode(), _DATE)
    for part in (region, _SERVICE, _TERMINAL, _MESSAGE):
        key = _hmac(key, part)
    return base64.b64encode(bytes([VERSION]) + key).decode("ascii")


def legacy_smtp_password(secret_access_key: str) -> str:
    """The pre-2019 (version 0x02) password: region-independent, no longer accepted by SES."""
    digest = _hmac(secret_access_key.encode(), _MESSAGE)
    return base64.b64encode(bytes([LEGACY_VERSION]) + digest).decode("ascii")


def password_version(password: str) -> int | None:
    """The version byte of a presented password, or None when it is not one SES could have made."""
    try:
        raw = base64.b64decode(password, validate=True)
    except ValueError:
        return None
    return raw[0] if len(raw) == 33 else None


def password_matches(password: str, secret_access_key: str, region: str) -> bool:
    """Whether ``password`` is the current (0x04) SMTP password of the secret for ``region``, compared
    in constant time."""
    expected = smtp_password(secret_access_key, region)
    return hmac.compare_digest(password.encode(), expected.encode())
