"""The management commands, on both databases, beside and without a running server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sesame.smtp.credentials import smtp_password
from sesame.testing.servers import SesameProcess, sesame_cli
from tests.conftest import client


def test_accounts_create_list_update(database: str, tmp_path: Path) -> None:
    created = json.loads(sesame_cli("accounts", "create", "acme", data_dir=tmp_path, database=database))
    assert set(created) >= {"AccountId", "AccessKeyId", "SecretAccessKey"}
    assert created["AccessKeyId"].startswith("AKIA") and len(created["AccessKeyId"]) == 20
    assert len(created["SecretAccessKey"]) == 40
    fixed = json.loads(
        sesame_cli(
            "accounts", "create", "fixed", "--id", "123456789012", data_dir=tmp_path, database=database
        )
    )
    assert fixed["AccountId"] == "123456789012"
    listed = json.loads(sesame_cli("accounts", "list", data_dir=tmp_path, database=database))
    assert [a["AccountId"] for a in listed] == [created["AccountId"], "123456789012"]
    assert listed[0]["AccessKeyIds"] == [created["AccessKeyId"]]
    assert listed[0]["Sandbox"] is True
    updated = json.loads(
        sesame_cli(
            "accounts",
            "update",
            "123456789012",
            "--production",
            "--max-send-rate",
            "50",
            data_dir=tmp_path,
            database=database,
        )
    )
    assert updated["Sandbox"] is False and updated["MaxSendRate"] == 50.0
    # Secrets are encrypted at rest: the plaintext is nowhere in a SQLite file.
    if database.startswith("sqlite"):
        assert created["SecretAccessKey"].encode() not in Path(database[len("sqlite:///") :]).read_bytes()


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sesame",
            "accounts",
            "update",
            "999999999999",
            "--production",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "no account 999999999999" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sesame",
            "accounts",
            "create",
            "x",
            "--id",
            "12",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "12 digits" in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("htp = '127.0.0.1:1'\n")
    done = subprocess.run(
        [sys.executable, "-m", "sesame", "dev", "--config", str(bad)], capture_output=True, text=True
    )
    assert done.returncode != 0 and "unknown setting 'htp'" in done.stderr


def test_config_file_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "sesame.toml"
    cfg.write_text('default_account = "222233334444"\ndefault_region = "eu-west-1"\n')
    with SesameProcess(
        "dev", data_dir=tmp_path / "d", config_file=cfg, env={"SESAME_ACCOUNTS__SANDBOX": "false"}
    ) as proc:
        arn = "arn:aws:ses:eu-west-1:222233334444:identity/example.com"
        ses = client("sesv2", proc.endpoint, "not-an-account-id", "x", region="eu-west-1")
        ses.create_email_identity(EmailIdentity="example.com")
        ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
        assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    proc = SesameProcess("dev", data_dir=tmp_path).start()
    assert proc.proc is not None
    proc.proc.send_signal(sig)
    assert proc.proc.wait(15) == 0
    assert proc.stop() == 0


def test_db_commands(database: str, tmp_path: Path) -> None:
    sesame_cli("db", "upgrade", data_dir=tmp_path, database=database)
    sesame_cli("db", "downgrade", "base", data_dir=tmp_path, database=database)
    sesame_cli("db", "upgrade", data_dir=tmp_path, database=database)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sesame",
            "db",
            "current",
            "--data-dir",
            str(tmp_path),
            "--database",
            database,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "(head)" in done.stdout + done.stderr


def test_secret_key_and_admin_token_from_the_environment(tmp_path: Path) -> None:
    """The README's SESAME_SECRET_KEY and SESAME_ADMIN_TOKEN work for every command, not only as files."""
    from cryptography.fernet import Fernet

    env = {"SESAME_SECRET_KEY": Fernet.generate_key().decode(), "SESAME_ADMIN_TOKEN": "t0ken-from-env"}
    created = json.loads(sesame_cli("accounts", "create", "envkey", data_dir=tmp_path, env=env))
    assert json.loads(sesame_cli("accounts", "list", data_dir=tmp_path, env=env))[0]["Name"] == "envkey"
    assert not (tmp_path / "secret.key").exists() and not (tmp_path / "admin.token").exists()
    with SesameProcess("serve", data_dir=tmp_path, env=env) as proc:
        ses = client("sesv2", proc.endpoint, created["AccessKeyId"], created["SecretAccessKey"])
        assert ses.get_account()["SendQuota"]["Max24HourSend"] == 200.0
        url = ["--url", proc.endpoint]
        assert "The queue is empty." in sesame_cli("queue", *url, data_dir=tmp_path, env=env)


def test_smtp_password_of_an_access_key(tmp_path: Path) -> None:
    """The SMTP credentials SES's console would show for a key: its id, and the password derived from
    its secret for one region."""
    created = json.loads(sesame_cli("accounts", "create", "smtp", data_dir=tmp_path))
    key, secret = created["AccessKeyId"], created["SecretAccessKey"]
    for region in ("us-east-1", "eu-west-1"):
        got = json.loads(sesame_cli("accounts", "smtp-password", key, "--region", region, data_dir=tmp_path))
        assert got == {"SmtpUsername": key, "SmtpPassword": smtp_password(secret, region), "Region": region}
    default = json.loads(sesame_cli("accounts", "smtp-password", key, data_dir=tmp_path))
    assert default["Region"] == "us-east-1" and default["SmtpPassword"].startswith("B")
    with pytest.raises(RuntimeError, match="not one of the regions"):
        sesame_cli("accounts", "smtp-password", key, "--region", "mars-north-1", data_dir=tmp_path)
    sesame_cli("accounts", "disable-key", key, data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no active access key"):
        sesame_cli("accounts", "smtp-password", key, data_dir=tmp_path)
