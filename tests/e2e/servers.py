"""What the end-to-end tests' `sesame serve` processes share: settings that make a delivering server
resolve through the test DNS server, make small DKIM keys (2048-bit ones take seconds each) and poll
often, and the module-scoped process itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from tests.conftest import Serve


def serve_env(dns_server: DnsServer, **settings: str) -> dict[str, str]:
    """The shared settings, then the test's own as environment variables (``DELIVERY__MX_PORT="2525"``
    is ``SESAME_DELIVERY__MX_PORT``), which win."""
    return {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_DNS__TIMEOUT": "2",
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
        "SESAME_DELIVERY__POLL_INTERVAL": "0.2",
        **{f"SESAME_{name}": value for name, value in settings.items()},
    }


@contextmanager
def serving(
    module_database: str, tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]
) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp(name)
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)
