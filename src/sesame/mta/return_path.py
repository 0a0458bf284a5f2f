"""The return path (envelope sender) of outgoing mail, and recognising it when feedback comes back.

A message leaves with ``MAIL FROM:<message id>@<domain>`` (VERP): the identity's verified custom MAIL
FROM domain, else ``delivery.return_path_domain``, else (neither set) the sender's own address. A
bounce (RFC 3464 DSN) or complaint (RFC 5965 ARF) that comes back later is addressed to that return path
(RFC 5321 §4.5.5: reports go to the reverse-path), so its local part names the message it is about, as
SES's ``<id>@amazonses.com`` does, whatever the report itself still carries of the original.

The MX asks ``ReturnPaths.is_return_path`` at RCPT: the local part's shape (a Sesame message id) is
checked first, for free; the domain is the configured return-path domain or one of the verified custom
MAIL FROM domains, which are read in one statement and cached for ``CACHE_SECONDS``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Container

import sqlalchemy as sa

from sesame.domain.identities import SUCCESS
from sesame.storage.db import Database
from sesame.storage.models import Identity

#: A Sesame message id (domain/sending.py new_message_id): 16 hex digits of time, a UUID, "-000000".
MESSAGE_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-000000")
#: How long the set of verified custom MAIL FROM domains is trusted before it is read again. A domain
#: verified meanwhile is found sooner: an unknown domain behind a well-formed id re-reads it (at most
#: every ``MISS_SECONDS``).
CACHE_SECONDS = 60.0
MISS_SECONDS = 5.0


def envelope_sender(
    message_id: str, source: str, mail_from_domain: str | None, return_path_domain: str = ""
) -> str:
    """MAIL FROM of a message: ``<id>@<verified custom MAIL FROM domain>``, else
    ``<id>@<return_path_domain>``, else the sender's own address (``source``). A report (a DSN, a
    forwarded bounce) keeps its null reverse-path: nothing may bounce back to it (RFC 5321 §4.5.5)."""
    if not source:
        return ""
    if mail_from_domain:
        return f"{message_id}@{mail_from_domain}"
    if return_path_domain:
        return f"{message_id}@{return_path_domain}"
    return source


def message_id_of(address: str, domains: Container[str] | None = None) -> str | None:
    """The message id an address names when it is a return path: its local part is a message id (case
    folded: some relays upper-case addresses) and, when ``domains`` is given, its domain (lower case) is
    one of them. None otherwise."""
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not domain:
        return None
    local = local.lower()
    if not MESSAGE_ID.fullmatch(local):
        return None
    if domains is not None and domain.lower().rstrip(".") not in domains:
        return None
    return local


class ReturnPaths:
    """Which addresses are return paths of this installation's mail (for the MX's RCPT check)."""

    def __init__(self, db: Database, return_path_domain: str = "") -> None:
        self.db = db
        self.return_path_domain = return_path_domain.lower().rstrip(".")
        self._domains: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def is_return_path(self, address: str) -> bool:
        """Whether ``address`` is ``<message id>@<a return-path domain>``. No query for most calls: the
        shape decides most addresses, the configured domain others, the cached domains the rest."""
        if message_id_of(address) is None:
            return False
        domain = address.strip().strip("<>").rpartition("@")[2].lower().rstrip(".")
        if domain and domain == self.return_path_domain:
            return True
        now = time.monotonic()
        age = now - self._read_at
        if age > CACHE_SECONDS or (domain not in self._domains and age > MISS_SECONDS):
            await self._read(now)
        return domain in self._domains

    async def _read(self, now: float) -> None:
        async with self.db.read() as s:
            found = await s.scalars(
                sa.select(Identity.mail_from_domain)
                .where(Identity.mail_from_status == SUCCESS, Identity.mail_from_domain.is_not(None))
                .distinct()
            )
            self._domains = frozenset(d.lower().rstrip(".") for d in found if d)
        self._read_at = now
