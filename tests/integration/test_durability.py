"""A MessageId is a promise: a process killed with SIGKILL right after answering still has the message."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from sesame.testing.servers import SesameProcess
from tests.conftest import client


def test_accepted_messages_survive_sigkill(module_database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    proc = SesameProcess("dev", data_dir=data_dir, database=module_database).start()
    try:
        ses = client("sesv2", proc.endpoint)
        ses.create_email_identity(EmailIdentity="durable.test")

        def send(i: int) -> str:
            return ses.send_email(
                FromEmailAddress="me@durable.test",
                Destination={"ToAddresses": [f"r{i}@example.org"]},
                Content={"Simple": {"Subject": {"Data": f"m{i}"}, "Body": {"Text": {"Data": "x"}}}},
            )["MessageId"]

        # Concurrent sends share group commits; the kill comes the moment the last answer is in.
        with ThreadPoolExecutor(8) as pool:
            accepted = list(pool.map(send, range(40)))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGKILL)
        proc.proc.wait(10)
    finally:
        proc.stop()

    with SesameProcess("dev", data_dir=data_dir, database=module_database) as again:
        kept = {m["Id"] for m in httpx.get(f"{again.endpoint}/_aws/ses").json()["messages"]}
    assert set(accepted) <= kept
