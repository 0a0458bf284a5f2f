"""``sesame serve --roles``, ``--node-id`` and ``--workers``: a deployment splits the work between
processes, and each process is a named node in the ``nodes`` table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, query_url
from tests.e2e.servers import serve_env


def nodes(database: str) -> dict[str, dict[str, Any]]:
    rows = query_url(database, "SELECT id, pid, roles, listeners FROM nodes")
    return {r["id"]: {**r, "roles": _json(r["roles"]), "listeners": _json(r["listeners"])} for r in rows}


def status(url: str) -> int:
    """The HTTP status of a GET (its connection closed, error or not)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def received(sink: SinkServer, rcpt: str) -> list[Any]:
    return [m for m in sink.messages if rcpt in m.rcpt_tos]


def nodes_when(database: str, good: Any) -> dict[str, dict[str, Any]] | None:
    seen = nodes(database)
    return seen if good(seen) else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def wait_for(what: str, check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def test_an_api_node_accepts_and_a_delivery_node_delivers(database: str, tmp_path: Path) -> None:
    postgres = database.startswith("postgresql")
    with DnsServer() as dns_server, SinkServer("127.0.0.1") as sink:
        env = serve_env(dns_server, DELIVERY__ROUTES=f"dest.test=127.0.0.1:{sink.port}")
        data_dir = tmp_path / "data"  # one data dir: the nodes share its secret key
        api_args = ["--roles", "api", "--node-id", "front"]
        with SesameProcess("serve", data_dir=data_dir, database=database, env=env, args=api_args) as api:
            assert set(api.listeners) == {"http"}, "only the api role's listener opens"
            serve = Serve(api, data_dir, database)
            account = serve.new_account("split")
            serve.cli("accounts", "update", account["AccountId"], "--production")
            v2 = serve.client("sesv2", account)
            v2.create_email_identity(EmailIdentity="from.test")
            zone = serve.cli("identities", "records", "from.test", "--account", account["AccountId"])
            dns_server.add_zone_lines(zone)
            assert v2.get_email_identity(EmailIdentity="from.test")["VerificationStatus"] == "SUCCESS"
            message_id = v2.send_email(
                FromEmailAddress="me@from.test",
                Destination={"ToAddresses": ["you@dest.test"]},
                Content={"Simple": {"Subject": {"Data": "split"}, "Body": {"Text": {"Data": "roles"}}}},
            )["MessageId"]
            time.sleep(1.0)  # five of a delivering node's polls: this node has none
            assert sink.messages == []
            assert query_url(database, "SELECT state FROM queue WHERE message_id = :m", m=message_id) == [
                {"state": "queued"}
            ]
            back_args = ["--roles", "delivery", "--node-id", "back"]
            # On PostgreSQL the api node's commit wakes the delivery node (NOTIFY): it need not poll.
            back_env = {**env, "SESAME_DELIVERY__POLL_INTERVAL": "60"} if postgres else env
            with SesameProcess(
                "serve", data_dir=data_dir, database=database, env=back_env, args=back_args
            ) as back:
                assert set(back.listeners) == {"http"}, "a delivery node takes no mail"
                with urllib.request.urlopen(f"{back.endpoint}/health", timeout=5) as reply:
                    assert json.load(reply)["status"] == "ok"
                with urllib.request.urlopen(f"{back.endpoint}/metrics", timeout=5) as reply:
                    assert b"sesame_delivery_outcomes" in reply.read()
                assert status(f"{back.endpoint}/v2/email/account") == 404, "nor any API call"
                got = wait_for("the delivery", lambda: received(sink, "you@dest.test"))
                assert f"<{message_id}@".encode() in got[0].data
                time.sleep(0.5)  # the delivery node is waiting now (on PostgreSQL, for a minute)
                v2.send_email(
                    FromEmailAddress="me@from.test",
                    Destination={"ToAddresses": ["again@dest.test"]},
                    Content={"Simple": {"Subject": {"Data": "split"}, "Body": {"Text": {"Data": "woken"}}}},
                )
                wait_for("the second delivery", lambda: received(sink, "again@dest.test"), timeout=20)
                seen = wait_for(
                    "both nodes", lambda: nodes_when(database, lambda n: {"front", "back"} <= set(n))
                )
                assert seen["front"]["roles"] == ["api"]
                assert seen["back"]["roles"] == ["delivery"]
                assert set(seen["back"]["listeners"]) == {"http"}
            assert "back" not in nodes(database), "a node that stops removes its row"


def test_workers_share_the_listeners_and_a_dead_one_is_restarted(database: str, tmp_path: Path) -> None:
    args = ["--workers", "2", "--node-id", "pool"]
    with SesameProcess("serve", data_dir=tmp_path / "data", database=database, args=args) as proc:
        assert sum(line.startswith("listening http") for line in proc.stderr_lines) == 1
        workers = wait_for("two workers", lambda: nodes_when(database, lambda n: len(n) == 2))
        assert set(workers) == {"pool/1", "pool/2"}
        assert workers["pool/1"]["listeners"] == workers["pool/2"]["listeners"]
        assert workers["pool/1"]["listeners"]["http"] == "{}:{}".format(*proc.listeners["http"])
        for _ in range(20):  # each on a connection of its own, taken by either worker
            assert status(f"{proc.endpoint}/v2/email/account") == 403
        for _ in range(4):  # whichever worker answers a scrape reports both workers' counts
            with urllib.request.urlopen(f"{proc.endpoint}/metrics", timeout=5) as reply:
                assert 'error="MissingAuthenticationToken"' in (text := reply.read().decode())
            counted = [line for line in text.splitlines() if line.startswith("sesame_api_requests_total{")]
            assert [float(line.rsplit(" ", 1)[1]) for line in counted] == [20.0], counted
        first = workers["pool/1"]["pid"]
        os.kill(first, signal.SIGKILL)
        for _ in range(20):  # the other worker keeps answering on the shared port meanwhile
            with urllib.request.urlopen(f"{proc.endpoint}/health", timeout=5) as reply:
                assert reply.status == 200
        again = wait_for(
            "pool/1 again",
            lambda: nodes_when(database, lambda n: n.get("pool/1", {}).get("pid") not in (None, first)),
        )
        assert again["pool/1"]["pid"] not in (first, workers["pool/2"]["pid"])
        pids = [again["pool/1"]["pid"], workers["pool/2"]["pid"]]
        assert proc.stop() == 0, "SIGTERM: every worker stops, then the supervisor, cleanly"
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert nodes(database) == {}


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sesame", "serve", "--data-dir", str(tmp_path), "--roles", "api,mailman"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "unknown role 'mailman'" in done.stderr
    assert "api, smtp, mx, delivery, events, receiving, jobs" in done.stderr


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """SQLite only: what is tested is the processes, not the database."""
    database = f"sqlite:///{tmp_path / 'sesame.db'}"
    args = ["--workers", "2"]
    with SesameProcess("serve", data_dir=tmp_path / "data", database=database, args=args) as proc:
        workers = wait_for("two workers", lambda: nodes_when(database, lambda n: len(n) == 2))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGKILL)
        proc.proc.wait(10)

        def gone() -> bool:
            return not any(Path(f"/proc/{n['pid']}").exists() for n in workers.values())

        wait_for("the workers to stop", gone, timeout=30)
        assert nodes(database) == {}, "each stopped cleanly (SIGTERM), removing its row"
