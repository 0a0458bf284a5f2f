"""Several nodes on one PostgreSQL database (issue 13): three ``sesame serve --node-id …`` processes,
each with its own data directory and the same ``SESAME_SECRET_KEY``, take mail by API and by SMTP and
deliver it to one sink; then the same while one node after another is SIGKILLed and started again.

What is counted, by MessageId: the mail the sink received (the Message-ID field Sesame writes), the
event records in the Firehose files of every node (a Firehose destination with no AWS endpoint writes
JSON lines under ``DATA_DIR/firehose``), and the ``events`` table. PostgreSQL only: SQLite is one
machine's database, and its multi-process case is ``--workers``.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sesame.testing.databases import POSTGRES, temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.smtp import SinkServer
from tests.e2e.cluster import (
    PRODUCTION,
    Cluster,
    Sender,
    cluster,
    generate_secret_key,
    sent_twice,
    sink_message_ids,
    start_with_sender,
    wait_until_settled,
)
from tests.e2e.servers import serve_env

NODE_IDS = ("node-a", "node-b", "node-c")
#: Kills in the kill test, each node in turn, one every KILL_EVERY seconds (or once the node to kill
#: is up again, if its last start takes longer).
KILLS = 20
KILL_EVERY = 2.0
#: Seconds a lease lasts in the kill test (delivery, events, SNS, jobs).
LEASE = 5


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database; the test is skipped when there is no server to make it on."""
    import asyncpg

    async def reachable() -> None:
        conn = await asyncpg.connect(f"{POSTGRES}/postgres", timeout=5)
        await conn.close()

    try:
        asyncio.run(reachable())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES}: {exc}")
    with temporary_database("postgresql", tmp_path) as url:
        yield url


def event_counts(nodes: Cluster) -> Counter[tuple[str, str]]:
    """The ``events`` table's records, counted by (MessageId, event type)."""
    rows = nodes.query(
        "SELECT message_id, event_type, count(*) AS n FROM events GROUP BY message_id, event_type"
    )
    return Counter({(r["message_id"], r["event_type"]): r["n"] for r in rows})


def check_nodes_table(nodes: Cluster, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The ``nodes`` table names the three nodes, each with the process running now (a node started
    again after SIGKILL takes over its row)."""
    want = {node_id: proc.proc.pid for node_id, proc in nodes.up() if proc.proc is not None}
    deadline = time.monotonic() + timeout
    while True:
        rows = nodes.query("SELECT id, pid, roles, listeners FROM nodes ORDER BY id")
        if {r["id"]: r["pid"] for r in rows} == want or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {r["id"]: r["pid"] for r in rows} == want
    return rows


def test_three_nodes_take_and_deliver_every_message_once(postgres: str, tmp_path: Path) -> None:
    hole = socket.create_server(("127.0.0.1", 0))  # accepts, never greets: a delivery waits there
    with hole, DnsServer() as dns_server, SinkServer("127.0.0.1") as sink:
        env = serve_env(
            dns_server,
            **PRODUCTION,
            SECRET_KEY=generate_secret_key(),
            DELIVERY__ROUTES=f"dest.test=127.0.0.1:{sink.port},hole.test=127.0.0.1:{hole.getsockname()[1]}",
            EVENTS__POLL_INTERVAL="0.1",
            EVENTS__DELIVERY_SHARE="1",
        )
        with cluster(postgres, tmp_path, env, NODE_IDS) as nodes:
            sender = start_with_sender(nodes, dns_server)
            up = nodes.up()
            apis = {node_id: sender.api(proc.endpoint) for node_id, proc in up}
            smtps = {node_id: sender.smtp(proc) for node_id, proc in up}
            try:
                for i in range(60):  # every node, by API and by SMTP
                    node_id, _ = up[i % 3]
                    if i % 2:
                        sender.send_api(apis[node_id], node_id, f"m{i}@dest.test")
                    else:
                        sender.send_smtp(smtps[node_id], node_id, f"m{i}@dest.test")
                # One message that waits at the hole: its queue entry's lease names the node holding it.
                held = sender.send_api(apis["node-b"], "node-b", "x@hole.test").message_id
            finally:
                for client in smtps.values():
                    client.quit()
                for v2 in apis.values():
                    v2.close()
            assert [s for s in sender.results if not s.message_id] == []
            accepted = sender.accepted
            assert held is not None
            assert Counter((s.kind, s.node) for m, s in accepted.items() if m != held) == {
                (kind, node_id): 10 for kind in ("api", "smtp") for node_id in NODE_IDS
            }

            deadline = time.monotonic() + 10
            query = "SELECT locked_by FROM queue WHERE message_id = :m"
            while not (owner := nodes.query(query, m=held)[0]["locked_by"]):
                assert time.monotonic() < deadline, "the message for the hole was never claimed"
                time.sleep(0.02)
            assert owner.split("/")[0] in NODE_IDS
            hole.close()  # the delivery waiting there fails (deferred): its node can stop at once

            wait_until_settled(nodes, sink, set(accepted) - {held}, timeout=60)
            delivered = sink_message_ids(sink.messages)
            assert delivered == Counter({m: 1 for m in accepted if m != held})  # each once, nothing else
            published = Counter((r["mail"]["messageId"], r["eventType"]) for r in nodes.published())
            expected = Counter({(m, "Send"): 1 for m in accepted})  # and a Delivery for all but the held
            expected.update((m, "Delivery") for m in accepted if m != held)
            assert published == expected
            stored = event_counts(nodes)
            assert all(stored[key] == 1 for key in expected)

            rows = check_nodes_table(nodes)
            assert all({"api", "smtp", "delivery", "events"} <= set(r["roles"]) for r in rows)
            assert operator_nodes_page(nodes, "node-b") == [
                ("node-a", "", "alive"),
                ("node-b", " (this one)", "alive"),
                ("node-c", "", "alive"),
            ]
            # Any node delivers any node's mail; each, woken by what it accepts, delivers some.
            delivering = Counter(m.helo for m in sink.messages)
            assert set(delivering) == set(NODE_IDS)
            by_node = {
                node.id: sum(f.read_text().count("\n") for f in node.data_dir.glob("firehose/*/*.jsonl"))
                for node in nodes.nodes.values()
            }
            print(f"\ndelivered by node: {dict(delivering)}, records published by node: {by_node}")


def operator_nodes_page(nodes: Cluster, node_id: str) -> list[tuple[str, str, str]]:
    """The operator's Nodes page on one node, signed in with that node's admin token: each listed
    node's id, whether the page says it is the one serving it, and its state."""
    data_dir = nodes.nodes[node_id].data_dir
    with httpx.Client(base_url=dict(nodes.up())[node_id].endpoint, follow_redirects=True, timeout=30) as web:
        signed_in = web.post("/console/sign-in", data={"admin_token": (data_dir / "admin.token").read_text()})
        assert signed_in.status_code == 200
        page = web.get("/console/operator/nodes").text
    row = r"<td><code>([^<]+)</code>( \(this one\))?</td>\s*<td><span class=\"badge \w+\">(\w+)</span>"
    return sorted(re.findall(row, page))


def submit(sender: Sender, nodes: Cluster, kind: str, stop: threading.Event, limit: int) -> None:
    """Submit to the nodes that are up, in turn, until ``stop`` or ``limit`` submissions; a submission
    to a node that dies under it fails and counts as not accepted. A thread of its own."""
    apis: dict[str, Any] = {}  # by endpoint: a node started again has new ports
    smtps: dict[tuple[str, int], Any] = {}  # by listener
    n = 0
    try:
        while not stop.is_set() and n < limit:
            up = nodes.up()
            if not up:
                time.sleep(0.05)
                continue
            node_id, proc = up[n % len(up)]
            recipient = f"{kind}{n}@dest.test"
            n += 1
            if kind == "api":
                if proc.endpoint not in apis:
                    apis[proc.endpoint] = sender.api(proc.endpoint)
                sender.send_api(apis[proc.endpoint], node_id, recipient)
            else:
                listener = proc.listeners["smtp"]
                client = smtps.get(listener)
                if client is None:
                    try:
                        client = smtps[listener] = sender.smtp(proc)
                    except (OSError, smtplib.SMTPException):
                        time.sleep(0.05)  # the node has just died: the next one
                        continue
                if sender.send_smtp(client, node_id, recipient).message_id is None:
                    smtps.pop(listener).close()  # the connection is in no known state
            time.sleep(0.05)
    finally:
        for v2 in apis.values():
            v2.close()
        for client in smtps.values():
            client.close()


def test_nodes_killed_and_started_again_lose_no_mail_and_no_event(postgres: str, tmp_path: Path) -> None:
    with DnsServer() as dns_server, SinkServer("127.0.0.1") as sink:
        env = serve_env(
            dns_server,
            **PRODUCTION,
            SECRET_KEY=generate_secret_key(),
            DELIVERY__ROUTES=f"dest.test=127.0.0.1:{sink.port}",
            # A dead node's claims come free after LEASE seconds, so that the test takes minutes.
            DELIVERY__LEASE_SECONDS=str(LEASE),
            DELIVERY__RETRY_BASE="1",
            EVENTS__LEASE_SECONDS=str(LEASE),
            EVENTS__POLL_INTERVAL="0.1",
            EVENTS__DELIVERY_SHARE="1",
            SNS__LEASE_SECONDS=str(LEASE),
            JOBS__LEASE_SECONDS=str(LEASE),
        )
        with cluster(postgres, tmp_path, env, NODE_IDS) as nodes:
            sender = start_with_sender(nodes, dns_server)
            stop = threading.Event()
            threads = [
                threading.Thread(target=submit, args=(sender, nodes, kind, stop, 1000), name=f"submit-{kind}")
                for kind in ("api", "smtp")
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            try:
                for i in range(KILLS):
                    time.sleep(KILL_EVERY)
                    victim = NODE_IDS[i % len(NODE_IDS)]
                    # The victim is back from its last kill, and another node takes mail meanwhile.
                    nodes.wait_up(victim, at_least=2)
                    nodes.kill_and_restart(victim)
                killing = time.monotonic() - started
                nodes.wait_up(*NODE_IDS)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            assert not any(t.is_alive() for t in threads)
            accepted = sender.accepted
            wait_until_settled(nodes, sink, set(accepted), timeout=90)

            delivered = sink_message_ids(sink.messages)
            twice = sent_twice(nodes, sink.messages)
            published = Counter((r["mail"]["messageId"], r["eventType"]) for r in nodes.published())
            expected = {(m, t) for m in accepted for t in ("Send", "Delivery")}
            refused = Counter(s.kind for s in sender.results if not s.message_id)
            print(
                f"\n{KILLS} kills in {killing:.0f}s; {len(accepted)} messages accepted"
                f" ({dict(Counter(s.kind for s in accepted.values()))}), {sum(refused.values())} not"
                f" ({dict(refused)}); {len(delivered)} delivered, {len(twice)} of them twice;"
                f" {sum(published.values())} records published, {sum(published.values()) - len(published)}"
                " of them again"
            )
            by_kill = Counter(t.kill for t in twice)
            for t in twice:
                print(f"  sent again: {t.message_id} by {t.senders}, each killed {t.after} s later")
            print(f"  second copies by kill: {sorted(by_kill.values(), reverse=True)}")
            assert len(accepted) >= 100  # enough mail went through the kills to count
            assert set(accepted) - set(delivered) == set()  # no accepted message lost
            assert expected - set(published) == set()  # no event record lost
            # A node killed between the sink's 250 and the commit of that outcome: the next holder of
            # the lease sends the message again; SMTP cannot close that window. A kill opens it for
            # each delivery the node had finished but not yet committed (outcomes are group-committed:
            # several, on a busy machine). Any other second copy (a lease that ran out under a node
            # still alive, say) is a bug.
            # (Two kills in a row may make a third copy: each sender killed in that window in turn.)
            for t in twice:
                assert all(after is not None and after < LEASE for after in t.after), t
            assert len(twice) <= 3 * KILLS  # 11 to 21 measured for 20 kills on a loaded 2-core machine
            # Behind the records: one Send and one Delivery each, whatever was sent twice.
            stored = event_counts(nodes)
            assert all(stored[key] == 1 for key in expected)
            check_nodes_table(nodes)
