"""Who is calling: SigV4-verified access keys in ``serve`` mode, any key in ``dev`` mode.

Two steps, so that a request's body is read only for a caller worth reading it for: ``identify`` needs
the request line and headers alone (the signature's claims and the key's lookup), ``verify`` needs the
body too (the signature covers its hash). The one key lookup serves both.

The region is the one the request was signed for (its credential scope), as in SES where every
resource is regional; an unsigned dev request gets the default region. Only the configured regions
(by default SES's own) and the default region are accepted, in both modes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import botocore.session

from sesame.awsapi import errors, sigv4
from sesame.awsapi.messages import AwsRequest
from sesame.config import Settings
from sesame.domain.accounts import Accounts, is_account_id


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    region: str
    access_key_id: str | None
    #: The service the request was signed for (its credential scope: "ses", "email" or "sns"), None
    #: for an unsigned dev-mode request. It tells Sesame's SNS from SES v1, which share a protocol.
    scope_service: str | None = None
    #: serve mode: the signature's claims and the key's secret, for ``verify`` once the body is read.
    signed: sigv4.SignedRequest | None = None
    secret: str | None = None


@functools.cache
def ses_regions() -> frozenset[str]:
    """Every region of every partition that SES (v1 or v2) is offered in, per botocore's endpoints."""
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for service in ("ses", "sesv2")
        for region in session.get_available_regions(service, partition_name=partition)
    )


def accepted_regions(settings: Settings) -> frozenset[str]:
    """The regions requests may be signed for: the ``regions`` setting (default SES's), and the default."""
    return (frozenset(settings.regions) or ses_regions()) | {settings.default_region}


class Authenticator:
    def __init__(self, accounts: Accounts, settings: Settings) -> None:
        self.accounts = accounts
        self.settings = settings
        self.regions = accepted_regions(settings)
        self._known_dev_accounts: set[str] = set()

    def forget(self) -> None:
        """After a reset: dev accounts will be re-created on their next request."""
        self._known_dev_accounts.clear()

    async def identify(self, req: AwsRequest) -> Caller:
        """The caller a request claims to be, from its headers (and query) alone; the body is not used.

        serve mode raises MissingAuthenticationToken for an unsigned request and InvalidClientTokenId
        for a key that does not exist or is not active, so their bodies need never be read.
        """
        if self.settings.mode == "dev":
            return await self._dev(req)
        signed = sigv4.parse(req, self.regions)
        found = await self.accounts.credentials(signed.access_key_id)
        if found is None:
            raise errors.InvalidClientTokenId("The security token included in the request is invalid.")
        account_id, secret = found
        return Caller(account_id, signed.region, signed.access_key_id, signed.service, signed, secret)

    def verify(self, req: AwsRequest, caller: Caller) -> None:
        """Check the signature over the whole request, body included (serve mode; dev takes any)."""
        if caller.signed is not None and caller.secret is not None:
            sigv4.verify(req, caller.signed, caller.secret)

    async def _dev(self, req: AwsRequest) -> Caller:
        key_id = sigv4.access_key_id(req)
        region = self.settings.default_region
        service = None
        if key_id is not None:
            try:
                signed = sigv4.parse(req)
                region, service = signed.region, signed.service
            except errors.ServiceError:
                pass  # dev mode takes unsigned or half-signed requests too
            if region not in self.regions:
                raise errors.SignatureDoesNotMatch(sigv4.invalid_region(region))
        account_id = key_id if key_id and is_account_id(key_id) else self.settings.default_account
        if account_id not in self._known_dev_accounts:
            await self.accounts.ensure(account_id)
            self._known_dev_accounts.add(account_id)
        return Caller(account_id, region, key_id, service)
