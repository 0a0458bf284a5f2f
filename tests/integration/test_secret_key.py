"""The key that encrypts stored secrets: a wrong or missing one stops every command before it serves,
and a rotation moves every secret to a new key without breaking a request (both databases).

Management commands run in this process (click's runner: same arguments, output and exit status as
the shell, without a second of interpreter start each); servers run as the user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from sesame.cli.main import main
from sesame.testing.servers import SesameProcess
from tests.conftest import client

ENV = {"SESAME_IDENTITIES__DKIM_KEY_BITS": "1024", "SESAME_DELIVERY__ENABLED": "false"}


def _cli(*args: str, node: Path, database: str, env: dict[str, str] | None = None) -> Result:
    argv = [*args, "--data-dir", str(node), "--database", database]
    return CliRunner().invoke(
        main, argv, env={"SESAME_SECRET_KEY": None, **(env or {})}, catch_exceptions=False
    )


def _ok(*args: str, node: Path, database: str, env: dict[str, str] | None = None) -> str:
    result = _cli(*args, node=node, database=database, env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _refused(*args: str, node: Path, database: str, env: dict[str, str] | None = None) -> str:
    result = _cli(*args, node=node, database=database, env=env)
    assert result.exit_code == 1, result.stdout
    return result.stderr


def _works(account: dict[str, str], node: Path, database: str, env: dict[str, str] | None = None) -> None:
    with SesameProcess("serve", data_dir=node, database=database, env={**ENV, **(env or {})}) as proc:
        ses = client("sesv2", proc.endpoint, account["AccessKeyId"], account["SecretAccessKey"])
        assert ses.get_account()["SendQuota"]["Max24HourSend"] == 200.0


def test_a_missing_or_different_key_refuses_to_start(database: str, tmp_path: Path) -> None:
    node = tmp_path / "node"
    account = json.loads(_ok("accounts", "create", "acme", node=node, database=database))
    key_file = node / "secret.key"
    original = key_file.read_bytes()

    key_file.write_bytes(Fernet.generate_key())  # another node's key, or a regenerated one
    serve = [sys.executable, "-m", "sesame", "serve", "--http", "127.0.0.1:0", "--data-dir", str(node)]
    done = subprocess.run([*serve, "--database", database], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "ready" not in done.stderr.splitlines()
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"Error: {key_file} does not decrypt the secrets stored in this database")
    assert "does not decrypt" in _refused("accounts", "list", node=node, database=database)

    key_file.unlink()  # lost: no new key may be made for a database that holds secrets
    assert f"{key_file} is missing" in _refused("accounts", "list", node=node, database=database)
    assert not key_file.exists()

    wrong = {"SESAME_SECRET_KEY": Fernet.generate_key().decode()}
    err = _refused("accounts", "list", node=node, database=database, env=wrong)
    assert "SESAME_SECRET_KEY does not decrypt" in err

    key_file.write_bytes(original)  # the right key back: everything works again
    _works(account, node, database)


def test_rotation_keeps_every_secret_readable(database: str, tmp_path: Path) -> None:
    node = tmp_path / "node"
    old = json.loads(_ok("accounts", "create", "old", node=node, database=database))
    with SesameProcess("serve", data_dir=node, database=database, env=ENV) as proc:
        ses = client("sesv2", proc.endpoint, old["AccessKeyId"], old["SecretAccessKey"])
        ses.create_email_identity(EmailIdentity="rotate.test")  # an encrypted DKIM key
        key_file = node / "secret.key"
        old_key = key_file.read_text().strip()

        out = json.loads(_ok("secret-key", "rotate", node=node, database=database))
        assert out == {"Reencrypted": 3, "Keys": 2}  # the access key, the DKIM key, the canary
        keys = key_file.read_text().split()
        assert len(keys) == 2 and keys[1] == old_key  # newest first; the old one still reads
        # The running server re-reads the changed key file: the re-encrypted secret still verifies.
        assert ses.get_account()["SendQuota"]["Max24HourSend"] == 200.0
    records = ["identities", "records", "rotate.test", "--account", old["AccountId"]]
    dns = _ok(*records, node=node, database=database)
    assert "p=" in dns

    key_file.write_text(old_key)  # the old key alone no longer reads the database: all moved
    assert "does not decrypt" in _refused("accounts", "list", node=node, database=database)
    key_file.write_text("\n".join(keys))
    assert "not encrypted with the newest key" not in _ok(
        "secret-key", "retire", node=node, database=database
    )
    assert key_file.read_text().split() == [keys[0]]

    new = json.loads(_ok("accounts", "create", "new", node=node, database=database))
    assert _ok(*records, node=node, database=database) == dns
    _works(old, node, database)
    _works(new, node, database)


def test_rotation_with_the_key_in_the_environment(database: str, tmp_path: Path) -> None:
    """SESAME_SECRET_KEY holds several keys, newest first: the first encrypts, all decrypt."""
    node = tmp_path / "node"
    first = Fernet.generate_key().decode()
    env = {"SESAME_SECRET_KEY": first}
    account = json.loads(_ok("accounts", "create", "env", node=node, database=database, env=env))
    err = _refused("secret-key", "rotate", node=node, database=database, env=env)
    assert "sesame secret-key generate" in err  # one key: nothing to rotate to
    second = CliRunner().invoke(main, ["secret-key", "generate"]).stdout.strip()
    assert Fernet(second.encode())
    both = {"SESAME_SECRET_KEY": f"{second}, {first}"}
    _ok("secret-key", "rotate", node=node, database=database, env=both)
    assert "drop the others" in _cli("secret-key", "retire", node=node, database=database, env=both).stderr
    _works(account, node, database, env={"SESAME_SECRET_KEY": second})
    assert not (node / "secret.key").exists()
    assert os.environ.get("SESAME_SECRET_KEY") is None
