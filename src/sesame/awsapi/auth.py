"""Who is calling: SigV4-verified access keys in ``serve`` mode, any key in ``dev`` mode.

The region is the one the request was signed for (its credential scope), as in SES where every
resource is regional; an unsigned dev request gets the default region.
"""

from __future__ import annotations

from sesame.awsapi import errors, sigv4
from sesame.awsapi.messages import AwsRequest
from sesame.config import Settings
from sesame.domain.accounts import Accounts, is_account_id


class Authenticator:
    def __init__(self, accounts: Accounts, settings: Settings) -> None:
        self.accounts = accounts
        self.settings = settings
        self._known_dev_accounts: set[str] = set()

    def forget(self) -> None:
        """After a reset: dev accounts will be re-created on their next request."""
        self._known_dev_accounts.clear()

    async def __call__(self, req: AwsRequest) -> tuple[str, str, str | None]:
        if self.settings.mode == "dev":
            return await self._dev(req)
        signed = sigv4.parse(req)
        found = await self.accounts.credentials(signed.access_key_id)
        if found is None:
            raise errors.InvalidClientTokenId("The security token included in the request is invalid.")
        account_id, secret = found
        sigv4.verify(req, signed, secret)
        return account_id, signed.region, signed.access_key_id

    async def _dev(self, req: AwsRequest) -> tuple[str, str, str | None]:
        key_id = sigv4.access_key_id(req)
        region = self.settings.default_region
        if key_id is not None:
            try:
                region = sigv4.parse(req).region
            except errors.ServiceError:
                pass  # dev mode takes unsigned or half-signed requests too
        account_id = key_id if key_id and is_account_id(key_id) else self.settings.default_account
        if account_id not in self._known_dev_accounts:
            await self.accounts.ensure(account_id)
            self._known_dev_accounts.add(account_id)
        return account_id, region, key_id
