"""Wires one Sesame process together from its settings: database, domain services, providers."""

from __future__ import annotations

import sqlalchemy as sa

from sesame.awsapi.auth import Authenticator
from sesame.awsapi.dispatch import Dispatcher
from sesame.config import Settings
from sesame.domain.accounts import Accounts
from sesame.domain.secrets import SecretBox
from sesame.domain.tags import Tags
from sesame.providers.ses_v1 import SesV1Provider
from sesame.providers.ses_v2 import SesV2Provider
from sesame.storage import migrate
from sesame.storage.db import Database
from sesame.storage.models import Base


class Sesame:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.accounts = Accounts(self.db, settings, SecretBox.from_data_dir(settings.data_dir))
        self.tags = Tags(self.db)
        self.providers = {
            "ses": SesV1Provider(self.accounts),
            "sesv2": SesV2Provider(self.accounts, self.tags),
        }
        self.authenticator = Authenticator(self.accounts, settings)
        self.dispatch = Dispatcher(self.providers, self.authenticator)

    def migrate(self) -> None:
        migrate.upgrade(self.settings.database_url)

    async def reset(self) -> None:
        """Dev mode: forget everything (LocalStack/moto test suites reset between tests)."""
        async with self.db.write() as s:
            for table in reversed(Base.metadata.sorted_tables):
                await s.execute(sa.delete(table))
        self.authenticator.forget()
        self.accounts._key_cache.clear()

    async def close(self) -> None:
        await self.db.close()
