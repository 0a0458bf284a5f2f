"""Fixtures the end-to-end tests share (a test module may define its own of the same name)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sesame.testing.smtp import SinkServer


@pytest.fixture(scope="module")
def sink(module_database: str) -> Iterator[SinkServer]:
    """An SMTP server on loopback that keeps what it is sent: the recipients' MX."""
    with SinkServer("127.0.0.1") as server:
        yield server
