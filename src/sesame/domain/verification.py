"""Address verification by email, and custom verification email templates.

In ``serve`` mode a new email-address identity (VerifyEmailIdentity, CreateEmailIdentity,
SendCustomVerificationEmail) gets a message with a link to this server's
``/_sesame/verify-email?token=…``; following it within 24 hours verifies the address. The message is
queued like any other and delivered by Sesame's own delivery path.

Each is mail to an address nobody has vouched for yet, sent from this server on the account's behalf:
an account may have one sent per ``identities.verification_email_interval`` (SES runs these operations
"no more than once per second"), and each counts in its sending statistics and 24-hour quota, as SES
counts custom verification emails, so a full quota stops them too.
"""

from __future__ import annotations

import datetime as dt
import html
import secrets
import socket
import string
from dataclasses import dataclass

import sqlalchemy as sa

from sesame.config import Settings
from sesame.domain import compose
from sesame.domain.compose import Envelope
from sesame.domain.identities import EMAIL, PENDING, Identities
from sesame.domain.sending import Sending
from sesame.storage.db import Database
from sesame.storage.models import AccountRegion, CustomVerificationTemplate, Identity, utcnow

MAX_CUSTOM_TEMPLATES = 50
MAX_CONTENT_BYTES = 10 * 1024 * 1024
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class VerificationError(Exception):
    """``kind``: 'not-found', 'exists', 'invalid', 'limit', 'from-not-verified', 'sandbox', 'throttled',
    'daily'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class TemplateFields:
    from_email_address: str | None = None
    subject: str | None = None
    content: str | None = None
    success_url: str | None = None
    failure_url: str | None = None


class Verification:
    def __init__(self, db: Database, settings: Settings, identities: Identities, sending: Sending) -> None:
        self.db = db
        self.settings = settings
        self.identities = identities
        self.sending = sending

    def link(self, token: str) -> str:
        base = self.settings.public_url or f"http://{self.settings.http}"
        return f"{base.rstrip('/')}/_sesame/verify-email?token={token}"

    async def reserve(self, account_id: str, region: str) -> None:
        """Before an operation that sends a verification email: refuse it ('daily') when the account's
        24-hour quota is used up, or ('throttled') when the account had one within the interval, and
        otherwise take the interval's one email. Atomic on one node or many (a conditional UPDATE)."""
        if self.settings.mode == "dev":
            return  # dev mode verifies at once and sends nothing
        state = await self.sending.accounts.region(account_id, region)
        if 0 <= state.max_24_hour_send < await self.sending.sent_last_24_hours(account_id, region) + 1:
            raise VerificationError("daily", "Daily message quota exceeded.")
        now = utcnow()
        since = now - dt.timedelta(seconds=self.settings.identities.verification_email_interval)
        last = AccountRegion.verification_email_at
        async with self.db.write() as s:
            taken = await s.scalar(
                sa.update(AccountRegion)
                .where(AccountRegion.account_id == account_id, AccountRegion.region == region)
                .where(sa.or_(last.is_(None), last <= since))
                .values(verification_email_at=now)
                .returning(AccountRegion.account_id)
            )
        if taken is None:
            raise VerificationError("throttled", "Rate exceeded")

    async def start(self, row: Identity, template: CustomVerificationTemplate | None = None) -> str | None:
        """Send (again) the verification email of a pending address; its MessageId. A new token and a
        new 24-hour window each time, as SES restarts verification."""
        if self.settings.mode == "dev" or row.kind != EMAIL or row.verification_status == "SUCCESS":
            return None
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(40))
        await self.identities.modify(
            row.account_id,
            row.region,
            row.identity,
            verification_token=token,
            verification_started_at=utcnow(),
            verification_status=PENDING,
            verification_template=template.name if template else None,
        )
        link = self.link(token)
        if template is None:
            sender = self.settings.identities.verification_from or system_sender()
            subject = f"Email Address Verification Request in region {row.region}"
            text = (
                f"A request was made to send email from {row.identity} through Sesame "
                f"(account {row.account_id}, region {row.region}).\n\n"
                f"To allow it, open this link within 24 hours:\n{link}\n\n"
                "If you did not ask for this, ignore this message: nothing will be sent from your address.\n"
            )
            body_html = None
        else:
            sender, subject, text = template.from_email_address, template.subject, None
            body_html = (
                f'{template.content}\n<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>\n'
                "<p>If you did not ask to verify this address, ignore this message.</p>\n"
            )
        out = compose.simple(
            "VerificationEmail",
            row.region,
            Envelope(source=sender, to=[row.identity]),
            subject=subject,
            text=text,
            html=body_html,
            limit=compose.V2_MAX_BYTES,
            summary={"Destination": {"ToAddresses": [row.identity]}, "Subject": subject},
        )
        # reserve() checked the quota: a refusal now would leave the identity without its email.
        return await self.sending.send_system(row.account_id, row.region, out, counted=True)

    async def redirect_for(self, identity: Identity, success: bool) -> str | None:
        if not identity.verification_template:
            return None
        async with self.db.read() as s:
            t = await s.get(
                CustomVerificationTemplate,
                (identity.account_id, identity.region, identity.verification_template),
            )
        if t is None:
            return None
        return t.success_url if success else t.failure_url

    # -- custom verification email templates ------------------------------------------------------

    async def get(self, account_id: str, region: str, name: str) -> CustomVerificationTemplate:
        async with self.db.read() as s:
            row = await s.get(CustomVerificationTemplate, (account_id, region, name))
        if row is None:
            raise VerificationError("not-found", f"Custom verification email template {name} does not exist.")
        return row

    async def create(self, account_id: str, region: str, name: str, f: TemplateFields) -> None:
        _check_content(f.content)
        async with self.db.write() as s:
            if await s.get(CustomVerificationTemplate, (account_id, region, name)) is not None:
                raise VerificationError(
                    "exists", f"Custom verification email template {name} already exists."
                )
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(CustomVerificationTemplate)
                .where(
                    CustomVerificationTemplate.account_id == account_id,
                    CustomVerificationTemplate.region == region,
                )
            )
            if (count or 0) >= MAX_CUSTOM_TEMPLATES:
                raise VerificationError(
                    "limit", f"At most {MAX_CUSTOM_TEMPLATES} custom verification templates."
                )
            s.add(
                CustomVerificationTemplate(
                    account_id=account_id,
                    region=region,
                    name=name,
                    from_email_address=f.from_email_address or "",
                    subject=f.subject or "",
                    content=f.content or "",
                    success_url=f.success_url or "",
                    failure_url=f.failure_url or "",
                    created_at=utcnow(),
                )
            )

    async def update(self, account_id: str, region: str, name: str, f: TemplateFields) -> None:
        """Given fields replace the stored ones (v1 makes them optional; v2 requires all)."""
        _check_content(f.content)
        async with self.db.write() as s:
            row = await s.get(CustomVerificationTemplate, (account_id, region, name))
            if row is None:
                raise VerificationError(
                    "not-found", f"Custom verification email template {name} does not exist."
                )
            for attr in ("from_email_address", "subject", "content", "success_url", "failure_url"):
                if (value := getattr(f, attr)) is not None:
                    setattr(row, attr, value)

    async def delete(self, account_id: str, region: str, name: str) -> None:
        async with self.db.write() as s:
            await s.execute(
                sa.delete(CustomVerificationTemplate).where(
                    CustomVerificationTemplate.account_id == account_id,
                    CustomVerificationTemplate.region == region,
                    CustomVerificationTemplate.name == name,
                )
            )

    async def page(
        self, account_id: str, region: str, after: str | None, limit: int
    ) -> tuple[list[CustomVerificationTemplate], str | None]:
        q = sa.select(CustomVerificationTemplate).where(
            CustomVerificationTemplate.account_id == account_id, CustomVerificationTemplate.region == region
        )
        return await self.db.page(q, CustomVerificationTemplate.name, after, limit)

    async def send_custom(self, account_id: str, region: str, address: str, template_name: str) -> str | None:
        """SendCustomVerificationEmail: production access and a verified From are required."""
        if not (await self.sending.accounts.region(account_id, region)).production_access:
            raise VerificationError(
                "sandbox", "Production access is required to send custom verification emails."
            )
        template = await self.get(account_id, region, template_name)
        sender = await self.sending.covering(account_id, region, template.from_email_address)
        if sender is None:
            raise VerificationError(
                "from-not-verified", f"Email address {template.from_email_address} is not verified."
            )
        await self.reserve(account_id, region)
        row = await self.identities.create(account_id, region, address, exists_ok=True)
        return await self.start(row, template)


def _check_content(content: str | None) -> None:
    if content is None:
        return
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise VerificationError("invalid", "The template content is larger than 10 MB.")
    if "<!--" in content:  # SES accepts no HTML comments in these templates
        raise VerificationError("invalid", "The template content must not contain HTML comments.")


def system_sender() -> str:
    """The sender of the mail Sesame writes itself when none is configured (verification, SNS)."""
    host = socket.getfqdn()
    # A bare host name is no mail domain; localhost.localdomain at least parses as one.
    return f"no-reply@{host if '.' in host else 'localhost.localdomain'}"
