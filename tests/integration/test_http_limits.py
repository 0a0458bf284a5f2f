"""The HTTP listener's limits on connections and slow clients, over raw connections to ``sesame serve``
run with small limits so that reaching them is cheap."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesame.testing.servers import SesameProcess

PER_ADDRESS = 3


@pytest.fixture(scope="module")
def sesame(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SesameProcess]:
    env = {"SESAME_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS)}
    data_dir: Path = tmp_path_factory.mktemp("limits")
    with SesameProcess("serve", data_dir=data_dir, env=env) as proc:
        yield proc


def _connect(sesame: SesameProcess) -> http.client.HTTPConnection:
    host, port = sesame.listeners["http"]
    return http.client.HTTPConnection(host, port, timeout=5)


def _health(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("GET", "/health")
    response = conn.getresponse()
    response.read()
    return response


def test_connections_past_the_per_address_limit_get_503_and_are_closed(sesame: SesameProcess) -> None:
    held = [_connect(sesame) for _ in range(PER_ADDRESS)]
    try:
        for conn in held:  # each answered, and kept open (keep-alive)
            assert _health(conn).status == 200
        extra = _connect(sesame)
        refused = _health(extra)
        assert refused.status == 503
        assert refused.getheader("connection") == "close"
        extra.close()
        assert _health(held[0]).status == 200  # the connections within the limit still work
    finally:
        for conn in held:
            conn.close()
    # Once they are gone, the address may connect again (the server notices the close at once).
    deadline = time.monotonic() + 5
    while (status := _health(fresh := _connect(sesame)).status) != 200 and time.monotonic() < deadline:
        fresh.close()
        time.sleep(0.05)
    fresh.close()
    assert status == 200
