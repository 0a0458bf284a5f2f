"""URLs of the files jobs write (export files, failed-records files) that their owner can fetch:
ExportDestination.S3Url and FailureInfo.FailedRecordsS3Url, pre-signed URLs at SES.

On an external S3-compatible store: S3's own pre-signed URL. On the local store: a URL of this server,
``{public_url}/_sesame/objects/{bucket}/{key}?Expires=…&Signature=…``, an HMAC of bucket, key and
expiry under a key derived from the secret key (so every node sharing the secret key accepts the others'
URLs, and the URL cannot be guessed or changed to reach another object). Either kind lasts
``jobs.url_expiry`` seconds; GetExportJob and GetImportJob give a fresh one each time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from sesame.config import Settings
from sesame.domain.secrets import SecretBox
from sesame.integrations.objects import ObjectStore

PATH = "/_sesame/objects"
_KEY_LABEL = b"sesame object links"
_SIGNATURE_BYTES = 16  # 128 bits


class ObjectLinks:
    def __init__(self, settings: Settings, box: SecretBox, objects: ObjectStore) -> None:
        self.settings = settings
        self.box = box
        self.objects = objects
        self._derived: tuple[list[bytes], list[bytes]] = ([], [])

    def url(self, bucket: str, key: str, *, region: str) -> str:
        expires = int(time.time()) + self.settings.jobs.url_expiry
        if self.objects.external:
            return self.objects.presigned_url(bucket, key, self.settings.jobs.url_expiry, region=region)
        base = (self.settings.public_url or f"http://{self.settings.http}").rstrip("/")
        signature = self._mac(self._keys()[0], bucket, key, expires)
        return f"{base}{PATH}/{quote(bucket, safe='')}/{quote(key)}?Expires={expires}&Signature={signature}"

    def verify(self, bucket: str, key: str, expires: str, signature: str) -> bool:
        """Whether a local URL's signature holds and it has not expired."""
        if not expires.isdigit() or int(expires) < time.time():
            return False
        given = signature.encode()
        return any(
            hmac.compare_digest(self._mac(k, bucket, key, int(expires)).encode(), given) for k in self._keys()
        )

    def _keys(self) -> list[bytes]:
        """The HMAC keys, newest first, one per secret key (derived: the link key is never the one that
        encrypts)."""
        keys = self.box.keys
        if self._derived[0] is not keys:
            derived = [
                hmac.new(base64.urlsafe_b64decode(k), _KEY_LABEL, hashlib.sha256).digest() for k in keys
            ]
            self._derived = (keys, derived)
        return self._derived[1]

    @staticmethod
    def _mac(key: bytes, bucket: str, key_name: str, expires: int) -> str:
        message = "\0".join((bucket, key_name, str(expires))).encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
