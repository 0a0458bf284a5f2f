"""Signing SNS messages with Sesame's own key, and the certificate that verifies them.

An HTTP(S) or email-json subscriber checks each message against the certificate at its
``SigningCertURL`` (AWS's SDK validators and hand-written checks alike). The key and a self-signed
certificate are made once, on first use, in the data directory (``sns-signing.pem``, 0600, the key
then the certificate), and kept: a subscriber that cached the certificate keeps verifying.

The string to sign is AWS's (see "Verifying the signatures of Amazon SNS messages"): for each of the
type's fields in this fixed (alphabetical) order that the message carries, the field's name, a newline,
its value, a newline. Notification: Message, MessageId, Subject (only if present), Timestamp, TopicArn,
Type. SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId, SubscribeURL,
Timestamp, Token, TopicArn, Type. SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA (PKCS#1 v1.5),
base64-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sesame.smtp.tls import self_signed_pem
from sesame.storage.files import private_file, write_private

#: The private key and the certificate, in this order, in one file (0600).
KEY_FILE = "sns-signing.pem"
#: The certificate's subject, as AWS names its own signing certificates.
CERT_NAME = "sns.amazonaws.com"

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def string_to_sign(message: dict[str, Any]) -> bytes:
    """AWS's string to sign for an SNS message (a Notification or a (Un)SubscriptionConfirmation)."""
    names = NOTIFICATION_FIELDS if message["Type"] == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{n}\n{message[n]}\n" for n in names if message.get(n) is not None).encode("utf-8")


class Signer:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEY_FILE
        self._key: rsa.RSAPrivateKey | None = None
        self._cert_pem = b""
        self._cert_name = ""

    def _load(self) -> rsa.RSAPrivateKey:
        if self._key is not None:
            return self._key
        if not self.path.exists():
            self._create()
        private_file(self.path)
        text = self.path.read_bytes()
        at = text.index(b"-----BEGIN CERTIFICATE-----")
        key = serialization.load_pem_private_key(text[:at], password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{self.path} does not hold an RSA key")
        cert_pem = text[at:]
        der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
        self._cert_name = f"SimpleNotificationService-{hashlib.sha256(der).hexdigest()[:32]}.pem"
        self._key, self._cert_pem = key, cert_pem
        return key

    def _create(self) -> None:
        """Make the key and its certificate, in one file published with a hard link that fails if the
        file exists: processes sharing the data dir that start together all end up with one pair."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert_pem, key_pem = self_signed_pem(key, [CERT_NAME], [], days=3650)
        staged = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        write_private(staged, key_pem + cert_pem)
        try:
            os.link(staged, self.path)
        except FileExistsError:
            pass  # another process made it first: theirs it is
        finally:
            staged.unlink(missing_ok=True)

    @property
    def cert_pem(self) -> bytes:
        self._load()
        return self._cert_pem

    @property
    def cert_name(self) -> str:
        """The certificate's file name in SigningCertURL: AWS's form, with a digest of the certificate, so
        that a replaced certificate gets a new URL and cached copies of the old one are never misused."""
        self._load()
        return self._cert_name

    def sign(self, message: dict[str, Any], version: str) -> str:
        signature = self._load().sign(string_to_sign(message), padding.PKCS1v15(), HASHES[version]())
        return base64.b64encode(signature).decode("ascii")
