"""Who is using the console: sessions, sign-in and the CSRF token of every form.

Three kinds of session:

- ``dev``: ``sesame dev`` has no sign-in. The first visit starts a session for the default account, so
  that forms there carry a CSRF token like everywhere else (a page on another site must not be able to
  post "delete all" to a developer's localhost).
- ``account``: signed in with an access key id and its secret, checked here once. The session lasts
  ``console.session_hours`` and ends at once if its key is disabled or deleted.
- ``operator``: signed in with the admin token (``sesame queue`` uses the same one).

The cookie carries a random token; the database keeps only its SHA-256 (``console_sessions``), so every
node knows every session and signing out ends it everywhere. The CSRF token is an HMAC of the session
token: it needs no storage and is worthless without the cookie that SameSite=Strict already guards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from sesame.config import Settings
from sesame.domain.accounts import Accounts
from sesame.storage.db import Database
from sesame.storage.models import ConsoleSession, utcnow

Kind = Literal["dev", "account", "operator"]
COOKIE = "sesame_console"
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Principal:
    """The signed-in side of one request."""

    kind: Kind
    token: str
    account_id: str | None
    region: str
    access_key_id: str | None

    @property
    def csrf(self) -> str:
        return hmac.new(self.token.encode(), b"sesame console csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), given.encode())

    @property
    def sees_accounts(self) -> bool:
        """Account pages: the signed-in account's, or in dev mode the one chosen."""
        return self.account_id is not None

    @property
    def operates(self) -> bool:
        """Operator pages: every account, the queue, publishing."""
        return self.kind in ("dev", "operator")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, db: Database, settings: Settings, accounts: Accounts, admin_token: str) -> None:
        self.db = db
        self.settings = settings
        self.accounts = accounts
        self._admin_token = admin_token

    @property
    def lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.settings.console.session_hours)

    async def start(
        self, kind: Kind, account_id: str | None = None, access_key_id: str | None = None
    ) -> Principal:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        region = self.settings.default_region
        async with self.db.write() as s:
            await s.execute(sa.delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            s.add(
                ConsoleSession(
                    id=_digest(token),
                    kind=kind,
                    account_id=account_id,
                    region=region,
                    access_key_id=access_key_id,
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return Principal(kind, token, account_id, region, access_key_id)

    async def resolve(self, token: str) -> Principal | None:
        """The session a cookie names, if it is live (and its key, for an account session, still is)."""
        if not token or len(token) > 128:
            return None
        async with self.db.read() as s:
            row = await s.get(ConsoleSession, _digest(token))
        if row is None or row.expires_at <= utcnow():
            return None
        if row.kind == "dev" and self.settings.mode != "dev":
            return None  # a dev session must not outlive a restart in serve mode
        if row.kind == "account":
            found = await self.accounts.credentials(row.access_key_id or "")
            if found is None or found[0] != row.account_id:
                await self.end(token)
                return None
        return Principal(row.kind, token, row.account_id, row.region, row.access_key_id)  # type: ignore[arg-type]

    async def end(self, token: str) -> None:
        async with self.db.write() as s:
            await s.execute(sa.delete(ConsoleSession).where(ConsoleSession.id == _digest(token)))

    async def choose(self, principal: Principal, account_id: str | None, region: str | None) -> None:
        """Dev mode's account and region switch (an account user's account is their key's)."""
        changes: dict[str, str] = {}
        if account_id and principal.kind == "dev":
            changes["account_id"] = account_id
        if region:
            changes["region"] = region
        if changes:
            async with self.db.write() as s:
                await s.execute(
                    sa.update(ConsoleSession)
                    .where(ConsoleSession.id == _digest(principal.token))
                    .values(**changes)
                )

    async def sign_in_account(self, access_key_id: str, secret: str) -> Principal | None:
        """A session for the key's account if ``secret`` is the key's, else None (the same answer for an
        unknown key and a wrong secret)."""
        found = await self.accounts.credentials(access_key_id.strip())
        expected = found[1] if found else secrets.token_urlsafe(30)  # compare anyway: equal timing
        if not hmac.compare_digest(expected.encode(), secret.strip().encode()) or found is None:
            return None
        return await self.start("account", found[0], access_key_id.strip())

    async def sign_in_operator(self, token: str) -> Principal | None:
        if not hmac.compare_digest(self._admin_token.encode(), token.strip().encode()):
            return None
        return await self.start("operator")
