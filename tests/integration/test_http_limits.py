"""The HTTP listener's limits on connections and slow clients, over raw connections to a Sesame run
with small limits so that reaching them is cheap (dev mode, which reads any caller's body)."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesame.testing.servers import SesameProcess

PER_ADDRESS = 3
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MIN_BODY_RATE = 100  # bytes per second


@pytest.fixture(scope="module")
def sesame(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SesameProcess]:
    env = {
        "SESAME_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
        "SESAME_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
        "SESAME_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "SESAME_MIN_BODY_RATE": str(MIN_BODY_RATE),
    }
    data_dir: Path = tmp_path_factory.mktemp("limits")
    with SesameProcess("dev", data_dir=data_dir, env=env) as proc:
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


def _trickle(sesame: SesameProcess, start: bytes, byte: bytes, interval: float = 0.1) -> tuple[bytes, float]:
    """Send ``start``, then ``byte`` every ``interval`` seconds until the server answers or closes;
    return what it answered and after how many seconds. A server that waits forever fails the test."""
    began = time.monotonic()
    with socket.create_connection(sesame.listeners["http"], timeout=interval) as sock:
        sock.sendall(start)
        answer = b""
        while time.monotonic() - began < 10:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                try:
                    sock.sendall(byte)
                except (BrokenPipeError, ConnectionResetError):
                    break
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        else:
            pytest.fail(f"still open after 10 s, answered {answer!r}")
    return answer, time.monotonic() - began


def test_idle_connection_is_closed_after_the_head_timeout(sesame: SesameProcess) -> None:
    began = time.monotonic()
    with socket.create_connection(sesame.listeners["http"], timeout=10) as sock:
        assert sock.recv(1024) == b""  # closed, without a word: no request had begun
    assert HEAD_TIMEOUT * 0.8 < time.monotonic() - began < HEAD_TIMEOUT + 2


def test_head_trickling_in_is_cut_at_the_deadline_though_bytes_keep_coming(sesame: SesameProcess) -> None:
    answer, took = _trickle(sesame, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert HEAD_TIMEOUT * 0.8 < took < HEAD_TIMEOUT + 2


def test_head_deadline_restarts_after_each_response(sesame: SesameProcess) -> None:
    conn = _connect(sesame)
    try:
        for _ in range(3):  # more than HEAD_TIMEOUT in all on one connection, each head in time
            assert _health(conn).status == 200
            time.sleep(HEAD_TIMEOUT / 2)
    finally:
        conn.close()


def test_body_trickling_in_is_answered_request_timeout(sesame: SesameProcess) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000\r\n\r\nAction=GetSendQuota&Pad="
    )
    answer, took = _trickle(sesame, head, b"x")  # 10 bytes a second, far below MIN_BODY_RATE
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"<Code>RequestTimeout</Code>" in answer
    assert b"connection: close\r\n" in answer.lower()
    assert BODY_TIMEOUT * 0.8 < took < BODY_TIMEOUT + 2


def test_body_arriving_at_the_minimum_rate_is_read(sesame: SesameProcess) -> None:
    body = b"Action=GetSendQuota&Version=2010-12-01&Pad=" + b"x" * 157  # 200 bytes
    host, port = sesame.listeners["http"]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for i in range(0, len(body), 50):  # 50 bytes every 0.25 s: 200 bytes a second in 1 s
            sock.sendall(body[i : i + 50])
            time.sleep(0.25)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
