"""Sender identities: email addresses and domains, their verification, DKIM keys and settings.

An identity belongs to one account and region, as in SES. In ``dev`` mode every identity is verified at
once. In ``serve`` mode:

- a domain is verified when its records are found in DNS: the v1 ``_amazonses.<domain>`` TXT token, or
  its DKIM records (v2's default). Sesame has no ``dkim.amazonses.com`` to point CNAMEs at, so an Easy
  DKIM selector is published as a TXT record with Sesame's public key (a CNAME to such a TXT works too:
  the resolver follows it). ``records()`` lists everything to publish, in zone-file form;
- pending identities are looked up again by a background loop and at once (rate-limited) when a client
  asks for their status; after ``verification_timeout_hours`` they fail, as SES's do after 72 hours;
- an email address is verified by the link in a verification email (``confirm_email``).

Easy DKIM gets one RSA key (2048 bits unless 1024 is asked for) published under three selector tokens,
so clients that expect SES's three records (Terraform, CDK) create three. BYODKIM keeps the caller's
key and selector.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import secrets
import socket
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sesame.config import Settings
from sesame.domain.addresses import IllegalAddress, bare_address, is_domain
from sesame.domain.secrets import SecretBox
from sesame.resolver import Lookup, LookupTemporaryError
from sesame.storage.db import Database
from sesame.storage.models import Identity, utcnow

PENDING, SUCCESS, FAILED, TEMPORARY_FAILURE, NOT_STARTED = (
    "PENDING",
    "SUCCESS",
    "FAILED",
    "TEMPORARY_FAILURE",
    "NOT_STARTED",
)
EMAIL, DOMAIN = "EMAIL_ADDRESS", "DOMAIN"
KEY_LENGTHS = {"RSA_1024_BIT": 1024, "RSA_2048_BIT": 2048}
MAX_POLICIES = 20
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


class IdentityError(Exception):
    """``kind``: 'not-found', 'exists', 'invalid', 'limit', 'not-verified'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def kind_of(identity: str) -> str:
    return EMAIL if "@" in identity else DOMAIN


def normalize(identity: str) -> str:
    """Domains are case-insensitive; an address's local part is not, its domain is."""
    if "@" in identity:
        local, _, domain = identity.rpartition("@")
        return f"{local}@{domain.lower()}"
    return identity.lower().rstrip(".")


def check_name(identity: str) -> None:
    """An identity is an address that is an RFC 5321 Mailbox (no display name) or a domain: its name
    is written into verification mail and DNS queries, and covers envelope addresses."""
    local, at, domain = identity.rpartition("@")
    ok = is_domain(domain)
    if ok and at:
        try:  # the mailbox is the identity itself: not a display name, a comment or a group around it
            ok = bare_address(identity).rpartition("@")[0] == local
        except IllegalAddress:
            ok = False
    if not ok:
        raise IdentityError("invalid", f"Invalid identity: {identity}")


def _token(n: int = 32) -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(n))


@functools.lru_cache(maxsize=256)
def _public_key_b64(private_pem: str) -> str:
    """Once per key: loading an RSA key checks it, 40-80 ms each time the console showed an identity."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def generate_key(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def byodkim_key(private_key_b64: str) -> tuple[str, int]:
    """The caller's base64 DER key (SES's format: a PEM body without armour or line breaks) as PEM."""
    try:
        der = base64.b64decode(private_key_b64, validate=True)
        key = serialization.load_der_private_key(der, password=None)
    except ValueError:
        raise IdentityError("invalid", "The private key is not a valid base64-encoded RSA key.") from None
    if not isinstance(key, rsa.RSAPrivateKey) or not 1024 <= key.key_size <= 2048:
        raise IdentityError("invalid", "The private key must be an RSA key of 1024 to 2048 bits.")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode(), key.key_size


def dkim_txt(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def _dkim_p(txt: str) -> str | None:
    """The p= tag of a DKIM key record (RFC 6376 §3.6.1), whitespace removed."""
    for tag in txt.split(";"):
        name, _, value = tag.strip().partition("=")
        if name.strip() == "p":
            return "".join(value.split())
    return None


@dataclass(frozen=True)
class Record:
    name: str
    rtype: str
    value: str

    def zone_line(self, ttl: int = 1800) -> str:
        value = f'"{self.value}"' if self.rtype == "TXT" else self.value
        if self.rtype == "TXT" and len(self.value) > 255:  # RFC 1035 §3.3: strings of at most 255 bytes
            value = " ".join(f'"{self.value[i : i + 255]}"' for i in range(0, len(self.value), 255))
        return f"{self.name}.\t{ttl}\tIN\t{self.rtype}\t{value}"


class Identities:
    def __init__(
        self, db: Database, settings: Settings, box: SecretBox, lookup: Lookup | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.box = box
        self.lookup = lookup or Lookup(settings.dns)

    @property
    def dev(self) -> bool:
        return self.settings.mode == "dev"

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, account_id: str, region: str, identity: str) -> Identity | None:
        async with self.db.read() as s:
            return await s.get(Identity, (account_id, region, normalize(identity)))

    async def require(self, account_id: str, region: str, identity: str) -> Identity:
        row = await self.get(account_id, region, identity)
        if row is None:
            raise IdentityError("not-found", f"Email identity {identity} does not exist.")
        return row

    async def many(self, account_id: str, region: str, identities: Sequence[str]) -> dict[str, Identity]:
        """The rows of those identities that exist, keyed by the name as the caller wrote it."""
        wanted = {normalize(i): i for i in identities}
        async with self.db.read() as s:
            rows = await s.scalars(
                sa.select(Identity).where(
                    Identity.account_id == account_id,
                    Identity.region == region,
                    Identity.identity.in_(list(wanted)),
                )
            )
            return {wanted[r.identity]: r for r in rows}

    async def page(
        self, account_id: str, region: str, kind: str | None, after: str | None, limit: int
    ) -> tuple[list[Identity], str | None]:
        """Identities in name order after ``after``; the next page's start, or None."""
        q = sa.select(Identity).where(Identity.account_id == account_id, Identity.region == region)
        if kind:
            q = q.where(Identity.kind == kind)
        return await self.db.page(q, Identity.identity, after, limit)

    def private_key(self, row: Identity) -> str | None:
        return self._decrypt(row.dkim_private_key) if row.dkim_private_key else None

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one Identities per process; keys change rarely
    def _decrypt(self, token: str) -> str:
        """Decrypted keys are kept (by their encrypted form): the delivery engine signs every message."""
        return self.box.decrypt(token)

    def records(self, row: Identity) -> list[Record]:
        """Every DNS record to publish for the identity: verification, DKIM, custom MAIL FROM."""
        out: list[Record] = []
        if row.kind != DOMAIN:
            return out
        if row.verification_token:
            out.append(Record(f"_amazonses.{row.identity}", "TXT", row.verification_token))
        key = self.private_key(row)
        if key and row.dkim_tokens:
            txt = dkim_txt(_public_key_b64(key))
            out += [Record(f"{t}._domainkey.{row.identity}", "TXT", txt) for t in row.dkim_tokens]
        if row.mail_from_domain:
            mx = self.settings.identities.mail_from_mx or socket.getfqdn()
            out.append(Record(row.mail_from_domain, "MX", f"10 {mx}."))
            # SES's record includes amazonses.com; Sesame's mail leaves from its own hosts, which are
            # the MAIL FROM domain's MX here (the bounce receiver) in the usual one-host setup.
            out.append(Record(row.mail_from_domain, "TXT", "v=spf1 mx ~all"))
        return out

    # -- creating and deleting --------------------------------------------------------------------

    def _new_row(self, account_id: str, region: str, identity: str) -> Identity:
        now = utcnow()
        row = Identity(
            account_id=account_id,
            region=region,
            identity=identity,
            kind=kind_of(identity),
            created_at=now,
            verification_status=SUCCESS if self.dev else PENDING,
            verification_started_at=now,
            last_success_at=now if self.dev else None,
            dkim_origin="AWS_SES",
            dkim_signing_enabled=True,
            dkim_status=NOT_STARTED,
            dkim_tokens=[],
            mail_from_behavior="USE_DEFAULT_VALUE",
            feedback_forwarding=True,
            notifications={},
            policies={},
        )
        if row.kind == EMAIL and not self.dev:
            row.verification_token = _token()  # the secret in the verification link
        return row

    def _easy_dkim(self, row: Identity, key_length: str | None = None) -> None:
        bits = KEY_LENGTHS.get(key_length or "", self.settings.identities.dkim_key_bits)
        row.dkim_origin = "AWS_SES"
        row.dkim_private_key = self.box.encrypt(generate_key(bits))
        row.dkim_key_length = f"RSA_{bits}_BIT"
        row.dkim_next_key_length = row.dkim_key_length
        row.dkim_key_generated_at = utcnow()
        row.dkim_tokens = [_token() for _ in range(3)]
        row.dkim_status = SUCCESS if self.dev else PENDING

    def _byodkim(self, row: Identity, selector: str, private_key_b64: str) -> None:
        pem, bits = byodkim_key(private_key_b64)
        row.dkim_origin = "EXTERNAL"
        row.dkim_private_key = self.box.encrypt(pem)
        row.dkim_key_length = f"RSA_{bits}_BIT"
        row.dkim_next_key_length = None
        row.dkim_key_generated_at = utcnow()
        row.dkim_tokens = [selector]
        row.dkim_status = SUCCESS if self.dev else PENDING

    async def create(
        self,
        account_id: str,
        region: str,
        identity: str,
        *,
        byodkim: dict[str, Any] | None = None,
        key_length: str | None = None,
        configuration_set: str | None = None,
        exists_ok: bool = False,
        v1_token: bool = False,
        easy_dkim: bool = True,
    ) -> Identity:
        """v2 CreateEmailIdentity (a domain gets DKIM), or a v1 Verify* call (``exists_ok``)."""
        identity = normalize(identity)
        check_name(identity)
        async with self.db.write() as s:
            row = await s.get(Identity, (account_id, region, identity))
            if row is not None:
                if not exists_ok:
                    raise IdentityError("exists", f"Email identity {identity} already exist.")
                if v1_token and row.kind == DOMAIN and not row.verification_token:
                    row.verification_token = base64.b64encode(secrets.token_bytes(32)).decode()
                if easy_dkim and row.kind == DOMAIN and not row.dkim_tokens:
                    self._easy_dkim(row)
                return row
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(Identity)
                .where(Identity.account_id == account_id, Identity.region == region)
            )
            if (count or 0) >= 10_000:
                raise IdentityError("limit", "Maximum number of identities (10000) exceeded.")
            row = self._new_row(account_id, region, identity)
            if row.kind == DOMAIN:
                if v1_token:
                    # SES's v1 tokens are 44 characters of base64.
                    row.verification_token = base64.b64encode(secrets.token_bytes(32)).decode()
                if byodkim:
                    self._byodkim(row, byodkim["DomainSigningSelector"], byodkim["DomainSigningPrivateKey"])
                elif easy_dkim:
                    self._easy_dkim(row, key_length)
            row.configuration_set_name = configuration_set
            s.add(row)
            return row

    async def delete(self, account_id: str, region: str, identity: str, *, missing_ok: bool) -> None:
        async with self.db.write() as s:
            row = await s.get(Identity, (account_id, region, normalize(identity)))
            if row is None:
                if missing_ok:
                    return
                raise IdentityError("not-found", f"Email identity {identity} does not exist.")
            await s.delete(row)

    async def modify(self, account_id: str, region: str, identity: str, **changes: Any) -> Identity:
        async with self.db.write() as s:
            row = await s.get(Identity, (account_id, region, normalize(identity)))
            if row is None:
                raise IdentityError("not-found", f"Email identity {identity} does not exist.")
            for name, value in changes.items():
                setattr(row, name, value)
            return row

    async def set_mail_from(
        self, account_id: str, region: str, identity: str, domain: str | None, behavior: str
    ) -> Identity:
        """v1 SetIdentityMailFromDomain / v2 PutEmailIdentityMailFromAttributes (``domain`` None turns the
        custom MAIL FROM off). The domain is looked up in DNS like the identity; dev mode verifies it at
        once, as it does the identity, or a RejectMessage behaviour would refuse every send there."""
        domain = domain.lower().rstrip(".") if domain else None
        base = normalize(identity).rpartition("@")[2]
        if domain is not None and not (domain.endswith("." + base) and is_domain(domain)):
            raise IdentityError(
                "invalid",
                f"Provided MAIL-FROM domain <{domain}> is not subdomain of the domain of the identity"
                f" <{identity}>.",
            )
        try:
            return await self.modify(
                account_id,
                region,
                identity,
                mail_from_domain=domain,
                mail_from_status=(SUCCESS if self.dev else PENDING) if domain else None,
                mail_from_behavior=behavior,
                last_checked_at=None,
            )
        except IdentityError:
            raise IdentityError("not-found", f"Identity <{identity}> does not exist.") from None

    async def set_signing_attributes(
        self, account_id: str, region: str, identity: str, origin: str, attributes: dict[str, Any]
    ) -> Identity:
        """v2 PutEmailIdentityDkimSigningAttributes: switch to Easy DKIM (or a new key length), or BYODKIM."""
        async with self.db.write() as s:
            row = await s.get(Identity, (account_id, region, normalize(identity)))
            if row is None:
                raise IdentityError("not-found", f"Email identity {identity} does not exist.")
            if row.kind != DOMAIN:
                raise IdentityError(
                    "invalid", "DKIM signing attributes can only be set on a domain identity."
                )
            if origin == "EXTERNAL":
                selector = attributes.get("DomainSigningSelector")
                key = attributes.get("DomainSigningPrivateKey")
                if not selector or not key:
                    raise IdentityError(
                        "invalid",
                        "DomainSigningSelector and DomainSigningPrivateKey are required for EXTERNAL.",
                    )
                self._byodkim(row, selector, key)
            else:
                wanted = attributes.get("NextSigningKeyLength")
                if row.dkim_origin != "AWS_SES" or not row.dkim_tokens:
                    self._easy_dkim(row, wanted)
                elif wanted and wanted != row.dkim_key_length:
                    # A new key of the asked length under the same selectors, so nothing new to publish
                    # but the key: the records change, and DKIM is pending until they are seen.
                    tokens = list(row.dkim_tokens)
                    self._easy_dkim(row, wanted)
                    row.dkim_tokens = tokens
                elif wanted:
                    raise IdentityError("invalid", f"The signing key length is already {wanted}.")
            return row

    async def put_policy(
        self, account_id: str, region: str, identity: str, name: str, policy: str, *, create: bool = False
    ) -> None:
        """Create or replace a policy; with ``create`` an existing one is an error (v2 Create…). SES's
        v2 UpdateEmailIdentityPolicy creates a missing policy, as v1 PutIdentityPolicy does."""
        async with self.db.write() as s:
            row = await s.get(Identity, (account_id, region, normalize(identity)))
            if row is None:
                raise IdentityError("not-found", f"Email identity {identity} does not exist.")
            policies = dict(row.policies or {})
            if create and name in policies:
                raise IdentityError("exists", f"Policy {name} already exists for identity {identity}.")
            if name not in policies and len(policies) >= MAX_POLICIES:
                raise IdentityError("limit", f"An identity can have at most {MAX_POLICIES} policies.")
            policies[name] = policy
            row.policies = policies

    async def delete_policy(self, account_id: str, region: str, identity: str, name: str) -> None:
        """Both APIs answer success for a policy that does not exist (SES's API reference)."""
        async with self.db.write() as s:
            row = await s.get(Identity, (account_id, region, normalize(identity)))
            if row is None:
                raise IdentityError("not-found", f"Email identity {identity} does not exist.")
            policies = dict(row.policies or {})
            policies.pop(name, None)
            row.policies = policies

    async def confirm_email(self, token: str) -> Identity | None:
        """The verification link was followed: the address is verified (within 24 hours of asking)."""
        async with self.db.write() as s:
            row = await s.scalar(
                sa.select(Identity).where(Identity.verification_token == token, Identity.kind == EMAIL)
            )
            if row is None:
                return None
            if utcnow() - row.verification_started_at > dt.timedelta(hours=24):
                row.verification_status = FAILED
                return row
            row.verification_status = SUCCESS
            row.last_success_at = utcnow()
            row.verification_token = None
            return row

    # -- verification through DNS -----------------------------------------------------------------

    async def refresh(self, row: Identity, *, force: bool = False) -> Identity:
        """Look a pending domain (or MAIL FROM domain) up in DNS now, unless it was looked up just now."""
        if self.dev or row.kind != DOMAIN:
            return row
        pending = {PENDING, TEMPORARY_FAILURE}
        if not (
            row.verification_status in pending
            or row.dkim_status in pending
            or row.mail_from_status in pending
        ):
            return row
        now = utcnow()
        floor = dt.timedelta(seconds=self.settings.identities.min_lookup_interval)
        if not force and row.last_checked_at is not None and now - row.last_checked_at < floor:
            return row
        found = await self._look_up(row)
        async with self.db.write() as s:
            fresh = await s.get(Identity, (row.account_id, row.region, row.identity))
            if fresh is None:
                return row
            self._apply(fresh, found, now)
            return fresh

    async def _look_up(self, row: Identity) -> dict[str, Any]:
        found: dict[str, Any] = {"error": None}
        try:
            if row.verification_token:
                found["token"] = row.verification_token in await self.lookup.txt(f"_amazonses.{row.identity}")
            key = self.private_key(row)
            if key and row.dkim_tokens:
                want = _public_key_b64(key)
                seen = [
                    any(_dkim_p(t) == want for t in await self.lookup.txt(f"{tok}._domainkey.{row.identity}"))
                    for tok in row.dkim_tokens
                ]
                found["dkim"] = all(seen)
            if row.mail_from_domain:
                found["mail_from"] = len(await self.lookup.mx(row.mail_from_domain)) == 1
        except LookupTemporaryError:
            found["error"] = "DNS_SERVER_ERROR"
        return found

    def _apply(self, row: Identity, found: dict[str, Any], now: dt.datetime) -> None:
        row.last_checked_at = now
        row.verification_error = found["error"]
        if found["error"]:
            return  # could not ask: keep the current status, look again later
        expired = now - row.verification_started_at > dt.timedelta(
            hours=self.settings.identities.verification_timeout_hours
        )
        if found.get("dkim"):
            row.dkim_status = SUCCESS
        elif row.dkim_status == PENDING and expired:
            row.dkim_status = FAILED
        if found.get("token") or found.get("dkim"):
            if row.verification_status != SUCCESS:
                row.verification_status = SUCCESS
                row.last_success_at = now
        elif row.verification_status == PENDING:
            row.verification_error = "TYPE_NOT_FOUND" if row.verification_token or row.dkim_tokens else None
            if expired:
                row.verification_status = FAILED
        if "mail_from" in found:
            row.mail_from_status = SUCCESS if found["mail_from"] else FAILED

    async def refresh_pending(self, limit: int = 100) -> int:
        """One pass of the background loop: pending domains not looked up for ``recheck_interval``."""
        if self.dev:
            return 0
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.identities.recheck_interval)
        pending = [PENDING, TEMPORARY_FAILURE]
        async with self.db.read() as s:
            rows = list(
                await s.scalars(
                    sa.select(Identity)
                    .where(
                        Identity.kind == DOMAIN,
                        sa.or_(
                            Identity.verification_status.in_(pending),
                            Identity.dkim_status.in_(pending),
                            Identity.mail_from_status.in_(pending),
                        ),
                        sa.or_(Identity.last_checked_at.is_(None), Identity.last_checked_at < cutoff),
                    )
                    .order_by(Identity.last_checked_at)
                    .limit(limit)
                )
            )
        for row in rows:
            await self.refresh(row, force=True)
        return len(rows)
