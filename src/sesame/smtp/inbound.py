"""The MX door: what a session that delivers mail *to* Sesame asks of it (reference 10.1).

- At connect, IP filters: a client that the receipt filters block gets 554 and its mail is never read.
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
from sesame.smtp.door import OK, TEMPORARY_FAILURE, Envelope, Reply

log = logging.getLogger(__name__)

BLOCKED = Reply(554, "Access denied")
NO_SUCH_USER = Reply(550, "5.1.1 Requested action not taken: mailbox unavailable")


#: Whether an address is a return path of Sesame's (its mail is a bounce or a complaint report).
IsReturnPath = Callable[[str], Awaitable[bool]]


class Inbound:
    requires_account = False

    def __init__(
        self, settings: Settings, inbox: Inbox, rules: ReceiptRules, is_return_path: IsReturnPath
    ) -> None:
        self.dev = settings.mode == "dev"
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
        return None if allowed else BLOCKED

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
