"""The object store that receipt rules' S3 actions write to, and that bulk jobs read their sources from
and write their files to: any S3-compatible endpoint when one is configured (``aws.endpoints.s3`` or
``aws.endpoint_url``), else files under ``DATA_DIR/objects``. Jobs stream (``open_read`` from an
offset, ``put_file``): their sources may be far larger than memory.

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
import io
import os
import secrets
import shutil
from pathlib import Path
from typing import IO, Any

import botocore.exceptions

from sesame.integrations.aws import AwsClients
from sesame.storage.files import PRIVATE_DIR, PRIVATE_FILE, write_private

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

    # -- streams, for bulk jobs: sources of any size, read and written without holding them whole -----

    def open_read(self, bucket: str, key: str, offset: int = 0, *, region: str = "us-east-1") -> IO[bytes]:
        """A binary stream of the object from byte ``offset`` on. Blocking: call it (and read the stream)
        on a worker thread. An offset at or past the end gives an empty stream."""
        if self.external:
            params: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if offset:
                params["Range"] = f"bytes={offset}-"
            try:
                result = self._s3_sync(region, "get_object", **params)
            except ObjectStoreError as exc:
                if offset and "InvalidRange" in str(exc):  # nothing left past the offset
                    return io.BytesIO(b"")
                raise
            return io.BufferedReader(_Body(result["Body"]), buffer_size=256 * 1024)
        path = self.path(bucket, key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NoSuchKey(f"no object {key!r} in bucket {bucket!r}") from None
        f.seek(offset)
        return f

    def size(self, bucket: str, key: str, *, region: str = "us-east-1") -> int:
        """The object's size in bytes (blocking, like ``open_read``)."""
        if self.external:
            return int(self._s3_sync(region, "head_object", Bucket=bucket, Key=key)["ContentLength"])
        try:
            return self.path(bucket, key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchKey(f"no object {key!r} in bucket {bucket!r}") from None

    async def put_file(self, bucket: str, key: str, source: Path, *, region: str) -> None:
        """Store the file ``source`` as object ``key`` of ``bucket``, streamed, not read whole. On an
        external store a missing bucket is created first: the jobs bucket is Sesame's own."""
        if self.external:

            def upload() -> None:
                for attempt in (1, 2):
                    try:
                        with source.open("rb") as body:
                            self._s3_sync(region, "put_object", Bucket=bucket, Key=key, Body=body)
                        return
                    except NoSuchBucket:
                        if attempt == 2:
                            raise
                        self._s3_sync(region, "create_bucket", Bucket=bucket, **_location(region))

            await asyncio.to_thread(upload)
            return

        def copy() -> None:
            path = self.path(bucket, key)
            self._directories(path)
            # Whole at once, owner-only, as put's objects: a copy aside, then renamed over.
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
                shutil.copyfile(source, tmp)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        await asyncio.to_thread(copy)

    def presigned_url(self, bucket: str, key: str, expires: int, *, region: str = "us-east-1") -> str:
        """A URL of the object on the external store that anyone holding it may GET for ``expires``
        seconds (S3's query-string authentication)."""
        url: str = self.aws.client("s3", region).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )
        return url

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
        self._directories(path)
        try:
            write_private(path, body)
        except OSError as exc:
            raise ObjectStoreError(f"writing {path} failed: {exc}") from exc
        return path

    def _directories(self, path: Path) -> None:
        """Make the directories of an object's path, each 0700, refusing a prefix that is an object."""
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

    async def _s3(self, region: str, operation: str, **params: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            result = self._s3_sync(region, operation, **params)
            if "Body" in result:  # read the stream here, on the thread, not on the event loop
                result["Body"] = result["Body"].read()
            return result

        return await asyncio.to_thread(run)

    def _s3_sync(self, region: str, operation: str, **params: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.aws.client("s3", region), operation)(**params)
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


class _Body(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so that io.BufferedReader can buffer its lines."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()


def _location(region: str) -> dict[str, Any]:
    """CreateBucket's location: none for us-east-1 (S3 refuses it there), the region elsewhere."""
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}


def objects_root(data_dir: Path) -> Path:
    return data_dir / "objects"
