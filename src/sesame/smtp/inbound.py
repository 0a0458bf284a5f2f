"""The MX door: what a session that delivers mail *to* Sesame asks of it (reference 10.1).

- At connect, IP filters: a client that the receipt filters block gets 554 and its mail is never read;
  so does one that a DNS blocklist of ``receiving.dnsbl`` lists, unless an account's Allow filter
  covers it (SES consults its own block list the same way, and allow lists override it).
- At RCPT, the active receipt rule sets: a recipient that some account's enabled rule covers is taken,
  and so is a return-path address (a bounce or a complaint coming back); any other is refused with
  ``550 5.1.1``, so the MX never relays. In ``dev`` mode every recipient is taken, to be captured.
- At DATA, the message is committed with the rules that matched (``receiving/inbox.py``) before the
  final 250; verdicts and actions run afterwards, in the background (``receiving/processor.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sesame.config import Settings
from sesame.receiving.inbox import Arrival, Inbox
from sesame.receiving.rules import ReceiptRules
from sesame.receiving.scanners import dnsbl_listed
from sesame.resolver import Lookup
from sesame.smtp.door import OK, TEMPORARY_FAILURE, Envelope, Reply

log = logging.getLogger(__name__)

BLOCKED = Reply(554, "Access denied")
LISTED = "5.7.1 Service unavailable; client host [{ip}] blocked using {zone}"
NO_SUCH_USER = Reply(550, "5.1.1 Requested action not taken: mailbox unavailable")


#: Whether an address is a return path of Sesame's (its mail is a bounce or a complaint report).
IsReturnPath = Callable[[str], Awaitable[bool]]


class Inbound:
    requires_account = False
    max_recipients = 100  # RFC 5321 §4.5.3.1.8: a server must take at least 100

    def __init__(
        self,
        settings: Settings,
        inbox: Inbox,
        rules: ReceiptRules,
        is_return_path: IsReturnPath,
        lookup: Lookup,
    ) -> None:
        self.dev = settings.mode == "dev"
        self.blocklists = list(settings.receiving.dnsbl)
        self.lookup = lookup
        self.inbox = inbox
        self.rules = rules
        self.is_return_path = is_return_path
        #: Called after each commit, to wake the processing loop.
        self.on_accept: Callable[[], None] | None = None

    def first_account(self, peer: str) -> str | None:
        return None

    async def authenticate(self, username: str, password: str) -> str | None:
        return None  # AUTH is never offered on the MX

    async def connect(self, peer: str) -> Reply | None:
        try:
            allowed = await self.rules.connection_allowed(peer)
        except Exception:  # the database: rather than refuse everyone, let mail in and filter later
            log.exception("reading the receipt filters for %s failed", peer)
            return None
        if not allowed:
            return BLOCKED
        return await self._blocklisted(peer)

    async def _blocklisted(self, peer: str) -> Reply | None:
        """554 for a client a DNS blocklist lists (RFC 5782), unless an account allow-lists it. A
        blocklist that cannot be asked lets the client in: mail is not refused for our DNS's trouble."""
        if not self.blocklists or await self.rules.allow_listed(peer):
            return None
        for zone in self.blocklists:
            try:
                listed = await dnsbl_listed(self.lookup, peer, zone)
            except Exception as exc:
                log.info("DNS blocklist %s could not be asked about %s: %s", zone, peer, exc)
                continue
            if listed:
                log.info("refused %s at connect: listed by %s", peer, zone)
                return Reply(554, LISTED.format(ip=peer, zone=zone))
        return None

    async def recipient(self, envelope: Envelope, address: str) -> Reply:
        if self.dev:
            return OK
        try:
            if await self.is_return_path(address) or await self.rules.rules_for(address, envelope.peer):
                return OK
        except Exception:
            log.exception("matching the recipient %s failed", address)
            return Reply(451, "4.3.0 Temporary failure; try again later")
        return NO_SUCH_USER

    async def accept(self, envelope: Envelope, data: bytes) -> Reply:
        try:
            arrival = await self._arrival(envelope, data)
            await self.inbox.accept(arrival)
        except Exception:  # nothing was committed: the client keeps the message and retries
            log.exception("taking a message from %s failed", envelope.peer)
            return TEMPORARY_FAILURE
        if self.on_accept is not None:
            self.on_accept()
        return Reply(250, f"Ok {arrival.id}")

    async def _arrival(self, envelope: Envelope, data: bytes) -> Arrival:
        """The message with its plan: per account, the rules to run and the recipients each covers,
        as they stand now (rules run against the rule set active when the mail arrived)."""
        plan: dict[tuple[str, str, str], dict[int, tuple[dict[str, Any], list[str]]]] = {}
        feedback: list[str] = []
        for rcpt in envelope.recipients:
            if await self.is_return_path(rcpt):
                feedback.append(rcpt)
                continue
            for match in await self.rules.rules_for(rcpt, envelope.peer):
                rules = plan.setdefault((match.account_id, match.region, match.rule_set_name), {})
                for position, rule in zip(match.positions, match.rules, strict=True):
                    rules.setdefault(position, (rule, []))[1].append(rcpt)
        entries = [
            {
                "account_id": account_id,
                "region": region,
                "rule_set": rule_set,
                "rules": [{"rule": rule, "recipients": rcpts} for _, (rule, rcpts) in sorted(rules.items())],
            }
            for (account_id, region, rule_set), rules in plan.items()
        ]
        return Arrival(
            peer=envelope.peer,
            helo=envelope.helo,
            tls=envelope.tls,
            mail_from=envelope.mail_from,
            recipients=list(envelope.recipients),
            body=data,
            plan=entries,
            feedback=feedback,
            captured=not entries and not feedback,
        )
