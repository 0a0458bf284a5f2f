"""The object store that receipt rules' S3 actions write to: any S3-compatible endpoint when one is
configured (``aws.endpoints.s3`` or ``aws.endpoint_url``), else files under ``DATA_DIR/objects``.

Locally, object ``KEY`` of bucket ``BUCKET`` is the file ``DATA_DIR/objects/BUCKET/KEY``, a key's
slashes making directories as S3 consoles show them. Files are the owner's only (0600 in 0700
directories: received mail is private) and appear at once, whole (written aside, then renamed), so a
reader never sees half a message. A local bucket needs no creating: its directory appears with its
first object.

Errors carry ``retryable``. A bucket missing on the external store is retryable: SES keeps retrying a
failing action for four hours (reference §10.3, ``PublishExpired``) and the owner may create the bucket
or fix its policy meanwhile; a key the local store cannot hold is not, since it never will.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import botocore.exceptions

from sesame.integrations.aws import AwsClients
from sesame.storage.files import PRIVATE_DIR, write_private

#: S3's longest object key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


class ObjectStoreError(Exception):
    """Writing or reading an object failed; ``retryable`` says whether trying again may succeed."""

    retryable = True


class NoSuchBucket(ObjectStoreError):
    """The external store has no such bucket (S3 ``NoSuchBucket``)."""


class NoSuchKey(ObjectStoreError):
    retryable = False


class InvalidObjectName(ObjectStoreError, ValueError):
    """A bucket or key the local store refuses: one that would leave its bucket's directory (``..``,
    a leading ``/``), or that a file system cannot hold."""

    retryable = False


class ObjectStore:
    def __init__(self, root: Path, aws: AwsClients) -> None:
        self.root = root  # DATA_DIR/objects
        self.aws = aws

    @property
    def external(self) -> bool:
        return self.aws.configured("s3")

    async def put(self, bucket: str, key: str, body: bytes, *, region: str) -> str:
        """Store ``body`` as object ``key`` of ``bucket``; returns where it went (for logs)."""
        if self.external:
            await self._s3(region, "put_object", Bucket=bucket, Key=key, Body=body)
            return f"{self.aws.settings.endpoint('s3').rstrip('/')}/{bucket}/{key}"
        # The name checks walk the file system (symbolic links): on the thread too, off the event loop.
        return str(await asyncio.to_thread(lambda: self._write(self.path(bucket, key), body)))

    async def get(self, bucket: str, key: str, *, region: str = "us-east-1") -> bytes:
        if self.external:
            result = await self._s3(region, "get_object", Bucket=bucket, Key=key)
            body: bytes = result["Body"]
            return body
        path = self.path(bucket, key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchKey(f"no object {key!r} in bucket {bucket!r}") from None
        except IsADirectoryError:
            raise NoSuchKey(f"no object {key!r} in bucket {bucket!r} (it is a prefix)") from None

    def path(self, bucket: str, key: str) -> Path:
        """The local file of an object, refusing names that would lead out of the bucket's directory."""
        if not bucket or "/" in bucket or bucket in (".", "..") or bucket.startswith(".") or "\0" in bucket:
            raise InvalidObjectName(f"invalid bucket name {bucket!r}")
        if not key or len(key.encode()) > MAX_KEY_BYTES or "\0" in key:
            raise InvalidObjectName(f"invalid object key {key!r}")
        parts = key.split("/")
        # S3 takes any key; a directory tree cannot hold empty, "." or ".." segments without their
        # meaning something else (the parent, the bucket itself), so those keys are refused here.
        if any(part in ("", ".", "..") for part in parts):
            raise InvalidObjectName(f"object key {key!r} cannot be stored locally (empty, '.' or '..' part)")
        base = self.root / bucket
        path = base.joinpath(*parts)
        if base.resolve() not in path.resolve().parents:  # a symbolic link inside the bucket, say
            raise InvalidObjectName(f"object key {key!r} leads out of bucket {bucket!r}")
        return path

    def _write(self, path: Path, body: bytes) -> Path:
        self.root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        # Each level made 0700 on its own: mkdir(parents=True) gives the parents the umask's mode.
        current = self.root
        for part in path.parent.relative_to(self.root).parts:
            current = current / part
            try:
                current.mkdir(mode=PRIVATE_DIR)
            except FileExistsError:
                if not current.is_dir():
                    raise InvalidObjectName(
                        f"{path.relative_to(self.root)}: {current.relative_to(self.root)} is an object, "
                        "so it cannot be a prefix too"
                    ) from None
        if path.is_dir():
            raise InvalidObjectName(f"{path.relative_to(self.root)} is a prefix of other objects")
        try:
            write_private(path, body)
        except OSError as exc:
            raise ObjectStoreError(f"writing {path} failed: {exc}") from exc
        return path

    async def _s3(self, region: str, operation: str, **params: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            try:
                result: dict[str, Any] = getattr(self.aws.client("s3", region), operation)(**params)
                if "Body" in result:  # read the stream here, on the thread, not on the event loop
                    result["Body"] = result["Body"].read()
                return result
            except botocore.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                where = f"s3://{params.get('Bucket')}/{params.get('Key')}"
                if code == "NoSuchBucket":
                    raise NoSuchBucket(f"{where}: no such bucket") from exc
                if code in ("NoSuchKey", "404"):
                    raise NoSuchKey(f"{where}: no such key") from exc
                raise ObjectStoreError(f"{where}: {code or exc}") from exc
            except botocore.exceptions.BotoCoreError as exc:  # unreachable endpoint, timeout
                raise ObjectStoreError(f"S3 endpoint: {exc}") from exc

        return await asyncio.to_thread(run)


def objects_root(data_dir: Path) -> Path:
    return data_dir / "objects"
