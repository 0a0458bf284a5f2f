"""Secrets never reach the logs or an error message (issue 14): a server is used with every secret it
knows, right and wrong (SigV4 with the secret access key, SMTP AUTH with the SMTP password, console
sign-in with either, the admin token on the admin API), then its whole log is searched for them."""

from __future__ import annotations

import base64
import json
import secrets
import smtplib
import ssl
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from cryptography.fernet import Fernet

from sesame.cli.main import main as cli_main
from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client


def test_no_secret_in_the_log_or_in_an_answer(database: str, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    admin = secrets.token_urlsafe(32)
    env = {"SESAME_SECRET_KEY": key, "SESAME_ADMIN_TOKEN": admin, "SESAME_DELIVERY__ENABLED": "false"}
    answers: list[str] = []
    with SesameProcess("serve", data_dir=tmp_path / "data", database=database, env=env) as proc:
        serve = Serve(proc, tmp_path / "data", database)
        # As an operator runs the CLI beside the server: the same data dir, database and secret key.
        argv = [
            "accounts",
            "create",
            "secretive",
            "--data-dir",
            str(tmp_path / "data"),
            "--database",
            database,
        ]
        account = json.loads(CliRunner().invoke(cli_main, argv, env=env, catch_exceptions=False).stdout)
        access_key, secret, password = (
            account["AccessKeyId"],
            account["SecretAccessKey"],
            account["SmtpPassword"],
        )

        v2 = serve.client("sesv2", account)
        v2.create_email_identity(EmailIdentity="secretive.test")
        with pytest.raises(ClientError) as refused:  # an error path: the sender is not verified
            v2.send_email(
                FromEmailAddress="me@secretive.test",
                Destination={"ToAddresses": ["you@example.net"]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
            )
        answers.append(json.dumps(refused.value.response, default=str))
        wrong = client("sesv2", proc.endpoint, access_key, secret[:-4] + "AAAA")
        with pytest.raises(ClientError) as mismatch:
            wrong.get_account()
        assert mismatch.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        answers.append(json.dumps(mismatch.value.response, default=str))

        host, port = proc.listeners["smtp"]
        context = ssl._create_unverified_context()  # the generated certificate is self-signed
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.starttls(context=context)
            with pytest.raises(smtplib.SMTPAuthenticationError) as bad_login:
                smtp.login(access_key, password[:-4] + "AAAA")
            answers.append(repr(bad_login.value))
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login(access_key, password)
            with pytest.raises(smtplib.SMTPException) as rejected:  # the sender is not verified
                smtp.sendmail("me@secretive.test", ["you@example.net"], b"Subject: s\r\n\r\nb\r\n")
            answers.append(repr(rejected.value))

        with httpx.Client(base_url=proc.endpoint, timeout=10) as http:
            for form in (
                {"access_key_id": access_key, "secret_access_key": secret + "x"},
                {"access_key_id": access_key, "secret_access_key": secret},
                {"admin_token": admin + "x"},
                {"admin_token": admin},
            ):
                answers.append(http.post("/console/sign-in", data=form).text)
                http.cookies.clear()
            for token in (admin + "x", admin):
                answers.append(
                    http.get("/_sesame/admin/events", headers={"Authorization": f"Bearer {token}"}).text
                )
    log = "\n".join(proc.stderr_lines)
    assert "ready" in proc.stderr_lines and len(log) > 200  # the log was kept
    plain_auth = base64.b64encode(f"\0{access_key}\0{password}".encode()).decode()
    for name, value in {
        "secret access key": secret,
        "SMTP password": password,
        "AUTH PLAIN string": plain_auth,
        "secret key": key,
        "admin token": admin,
    }.items():
        assert value not in log, f"the {name} is in the log"
        assert not any(value in answer for answer in answers), f"the {name} is in an answer"
