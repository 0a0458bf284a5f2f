"""What an SMTP session asks of Sesame, in SES's terms: whose credentials these are, and accept this mail.

A message submitted over SMTP is a SendRawEmail: MAIL FROM is its Source, the RCPT TO addresses its
Destinations, the DATA its raw message (with the X-SES-* header fields honoured and removed). It goes
through ``compose.raw`` and ``Sending.send``, the very path of the API, so every check, quota and the
durable group commit are the same; only the refusals are worded as SES's SMTP endpoint words them.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from sesame.config import Settings
from sesame.domain import compose
from sesame.domain.accounts import AccountNotFound, Accounts
from sesame.domain.addresses import IllegalAddress
from sesame.domain.sending import MAX_RECIPIENTS, SendError, Sending
from sesame.errors import ConfigError
from sesame.smtp.credentials import password_matches
from sesame.smtp.door import OK, TEMPORARY_FAILURE, Envelope, Reply

log = logging.getLogger(__name__)

#: SES takes messages of up to 40 MB over SMTP, as in v2 (reference §2.4), as received.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
_ACCOUNT_ID = re.compile(r"\d{12}")


#: SES's words for each refusal of a send (reference §2.5), by SendError kind.
_REFUSALS = {
    "rate": (454, "Throttling failure: {}"),
    "daily": (454, "Throttling failure: {}"),
    "rejected": (554, "Message rejected: {}"),
    "denied": (554, "Access denied: {}"),
    "paused": (554, "Message rejected: {}"),
    "mail-from": (554, "Message rejected: {}"),
    "config-paused": (554, "Message rejected: {}"),
    "config-missing": (554, "Transaction failed: {}"),
    "list-missing": (554, "Transaction failed: {}"),
    "invalid": (554, "Transaction failed: {}"),
    "tenant-missing": (554, "Transaction failed: {}"),
    "tenant-rejected": (554, "Message rejected: {}"),
    "tenant-paused": (554, "Message rejected: {}"),
}


class Submission:
    """The submission door: clients authenticate (or are trusted) and send as an account."""

    requires_account = True
    max_recipients = MAX_RECIPIENTS  # SES's 50 per message

    def __init__(self, settings: Settings, accounts: Accounts, sending: Sending) -> None:
        self.accounts = accounts
        self.sending = sending
        self.region = settings.smtp_region
        self.dev = settings.mode == "dev"
        self.default_account = settings.default_account
        self.trusted: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
        for network, account_id in settings.smtp.trusted_networks.items():
            try:
                parsed = ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"smtp.trusted_networks: {network!r} is not a network") from None
            if not _ACCOUNT_ID.fullmatch(account_id):
                raise ConfigError(f"smtp.trusted_networks: {account_id!r} is not a 12-digit account id")
            self.trusted.append((parsed, account_id))

    def first_account(self, peer: str) -> str | None:
        """Who a new session sends as before any AUTH: a trusted network's account, or in ``dev`` the
        default account (AUTH is optional there)."""
        trusted = self.trusted_account(peer)
        if trusted is None and self.dev:
            return self.default_account
        return trusted

    def trusted_account(self, address: str) -> str | None:
        """The account a client at ``address`` sends as without AUTH (``smtp.trusted_networks``)."""
        if not self.trusted:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        return next((account for network, account in self.trusted if ip in network), None)

    async def authenticate(self, username: str, password: str) -> str | None:
        """The account whose access key id is ``username`` when ``password`` is that key's SMTP password
        for this listener's region; None otherwise (wrong, another region's, a legacy one, a disabled
        or deleted key). ``dev`` takes any credentials, a 12-digit user name being that account."""
        if self.dev:
            return username if _ACCOUNT_ID.fullmatch(username) else self.default_account
        found = await self.accounts.credentials(username)
        if found is None:
            return None
        account_id, secret = found
        return account_id if password_matches(password, secret, self.region) else None

    async def connect(self, peer: str) -> Reply | None:
        return None

    async def recipient(self, envelope: Envelope, address: str) -> Reply:
        return OK  # the checks of SendRawEmail (sandbox, suppression…) run at DATA, as in SES

    async def accept(self, envelope: Envelope, data: bytes) -> Reply:
        e, account = envelope, envelope.account
        assert account is not None  # the session let MAIL through only with an account
        return await self.submit(account, e.mail_from, e.recipients, data, e.peer)

    async def submit(
        self, account_id: str, mail_from: str, recipients: list[str], data: bytes, peer: str = ""
    ) -> Reply:
        """Accept one message as SendRawEmail; ``250 Ok <MessageId>`` once it is committed."""
        try:
            out = compose.raw(
                "SendRawEmail",
                self.region,
                data,
                source=mail_from,
                destinations=recipients,
                from_arn=None,
                source_arn=None,
                return_path_arn=None,
                configuration_set=None,
                tags={},
                limit=(MAX_MESSAGE_BYTES + 2) // 3 * 4,  # compose counts the size as base64, as the API does
            )
            out.summary["Source"] = mail_from
            try:
                message_id = await self.sending.send(account_id, self.region, out, source_ip=peer)
            except AccountNotFound:
                if not self.dev:
                    raise
                await self.accounts.ensure(account_id)  # dev: an account exists once it is used
                message_id = await self.sending.send(account_id, self.region, out, source_ip=peer)
        except (SendError, IllegalAddress) as exc:
            code, text = _REFUSALS[exc.kind]
            return Reply(code, text.format(exc.message))
        except Exception:  # the database, most likely: nothing was committed, and the client retries
            log.exception("an SMTP submission of account %s failed", account_id)
            return TEMPORARY_FAILURE
        return Reply(250, f"Ok {message_id}")
