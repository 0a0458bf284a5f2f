"""The object store S3 actions write to: files under DATA_DIR/objects, or moto's S3 as the external AWS."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from sesame.config import AwsSettings
from sesame.integrations.aws import AwsClients
from sesame.integrations.objects import (
    InvalidObjectName,
    NoSuchBucket,
    NoSuchKey,
    ObjectStore,
    objects_root,
)
from sesame.testing.moto import moto_server

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def local(tmp_path: Path) -> ObjectStore:
    return ObjectStore(objects_root(tmp_path), AwsClients(AwsSettings()))


def test_local_put_writes_the_file_owner_only(local: ObjectStore, tmp_path: Path) -> None:
    where = asyncio.run(local.put("inbox", "mail/2026/abc123", MESSAGE, region="us-east-1"))
    path = tmp_path / "objects" / "inbox" / "mail" / "2026" / "abc123"
    assert where == str(path)
    assert path.read_bytes() == MESSAGE
    assert mode(path) == 0o600
    for directory in (tmp_path / "objects", path.parents[2], path.parents[1], path.parent):
        assert mode(directory) == 0o700, directory
    assert asyncio.run(local.get("inbox", "mail/2026/abc123")) == MESSAGE


def test_local_put_replaces_whole_and_leaves_no_temporary_files(local: ObjectStore, tmp_path: Path) -> None:
    bodies = [bytes([65 + i]) * (200_000 + i) for i in range(8)]

    async def race() -> None:
        await asyncio.gather(*(local.put("b", "k", body, region="us-east-1") for body in bodies))

    asyncio.run(race())
    final = (tmp_path / "objects" / "b" / "k").read_bytes()
    assert final in bodies  # one writer's body, never a mix or a part
    assert [p.name for p in (tmp_path / "objects" / "b").iterdir()] == ["k"]


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("b", "../escape"),
        ("b", "a/../../escape"),
        ("b", "/etc/passwd"),
        ("b", "a//b"),
        ("b", "a/./b"),
        ("b", "dir/"),
        ("b", ""),
        ("b", "x" * 1025),
        ("..", "k"),
        ("a/b", "k"),
        (".hidden", "k"),
        ("", "k"),
    ],
)
def test_local_store_refuses_names_leaving_the_bucket(
    local: ObjectStore, tmp_path: Path, bucket: str, key: str
) -> None:
    with pytest.raises(InvalidObjectName) as caught:
        asyncio.run(local.put(bucket, key, MESSAGE, region="us-east-1"))
    assert caught.value.retryable is False
    assert not any(tmp_path.rglob("escape"))


def test_local_store_refuses_a_symbolic_link_out_of_the_bucket(local: ObjectStore, tmp_path: Path) -> None:
    (tmp_path / "objects" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "objects" / "b" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidObjectName):
        asyncio.run(local.put("b", "link/k", MESSAGE, region="us-east-1"))
    assert not (tmp_path / "outside" / "k").exists()


def test_local_object_and_prefix_of_one_name_conflict(local: ObjectStore) -> None:
    asyncio.run(local.put("b", "a", MESSAGE, region="us-east-1"))
    with pytest.raises(InvalidObjectName):
        asyncio.run(local.put("b", "a/b", MESSAGE, region="us-east-1"))
    asyncio.run(local.put("b", "c/d", MESSAGE, region="us-east-1"))
    with pytest.raises(InvalidObjectName):
        asyncio.run(local.put("b", "c", MESSAGE, region="us-east-1"))


def test_local_get_of_a_missing_object(local: ObjectStore) -> None:
    with pytest.raises(NoSuchKey):
        asyncio.run(local.get("nobucket", "nokey"))


# -- the external store: moto's S3 ----------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def s3(moto: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_external_put_lands_in_the_bucket(moto: str, tmp_path: Path) -> None:
    s3(moto).create_bucket(Bucket="received-mail")
    store = ObjectStore(objects_root(tmp_path), AwsClients(AwsSettings(endpoints={"s3": moto})))
    assert store.external
    where = asyncio.run(store.put("received-mail", "inbox/abc123", MESSAGE, region="us-east-1"))
    assert where == f"{moto}/received-mail/inbox/abc123"
    got = s3(moto).get_object(Bucket="received-mail", Key="inbox/abc123")["Body"].read()
    assert got == MESSAGE
    assert asyncio.run(store.get("received-mail", "inbox/abc123")) == MESSAGE
    assert not (tmp_path / "objects").exists()  # nothing written locally


def test_external_endpoint_url_serves_s3_too(moto: str, tmp_path: Path) -> None:
    s3(moto).create_bucket(Bucket="via-endpoint-url")
    store = ObjectStore(objects_root(tmp_path), AwsClients(AwsSettings(endpoint_url=moto)))
    asyncio.run(store.put("via-endpoint-url", "k", MESSAGE, region="eu-west-1"))
    assert s3(moto).get_object(Bucket="via-endpoint-url", Key="k")["Body"].read() == MESSAGE


def test_external_missing_bucket_is_a_retryable_failure(moto: str, tmp_path: Path) -> None:
    store = ObjectStore(objects_root(tmp_path), AwsClients(AwsSettings(endpoints={"s3": moto})))
    with pytest.raises(NoSuchBucket) as caught:
        asyncio.run(store.put("no-such-bucket", "k", MESSAGE, region="us-east-1"))
    assert caught.value.retryable is True
    with pytest.raises(NoSuchKey):
        s3(moto).create_bucket(Bucket="empty-bucket")
        asyncio.run(store.get("empty-bucket", "missing"))
