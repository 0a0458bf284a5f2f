"""SQLAlchemy 2 table models. One schema for SQLite and PostgreSQL; JSON columns are plain ``JSON``
(SQLite stores text, PostgreSQL ``json``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so Alembic's batch mode on SQLite can find them again.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


def table(model: Any) -> sa.Table:
    """A mapped class's Table, for Core statements on the hot paths (lighter than the ORM's)."""
    result: sa.Table = model.__table__
    return result


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: sa.JSON()}


class Meta(Base):
    """Small named values about the installation itself (the secret-key canary)."""

    __tablename__ = "meta"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class Account(Base):
    """An SES account (12-digit id) and the defaults each region starts with."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sandbox: Mapped[bool] = mapped_column(default=True)
    max_24_hour_send: Mapped[float] = mapped_column(sa.Float, default=200.0)
    max_send_rate: Mapped[float] = mapped_column(sa.Float, default=1.0)


class AccessKey(Base):
    """An access key; the secret is stored encrypted (Fernet, key in the data dir)."""

    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)


class AccountRegion(Base):
    """Everything SES keeps per account *and region*: sandbox, quotas, sending switch, settings."""

    __tablename__ = "account_regions"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    production_access: Mapped[bool] = mapped_column(default=False)
    max_24_hour_send: Mapped[float] = mapped_column(sa.Float)
    max_send_rate: Mapped[float] = mapped_column(sa.Float)
    sending_enabled: Mapped[bool] = mapped_column(default=True)
    enforcement_status: Mapped[str] = mapped_column(sa.String(32), default="HEALTHY")
    dedicated_ip_auto_warmup: Mapped[bool] = mapped_column(default=False)
    # PutAccountDetails, as given, plus ReviewDetails.
    details: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    suppression_attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    vdm_attributes: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When the account last had a verification email sent here (they are rate-limited).
    verification_email_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Tag(Base):
    """Tags on any taggable SES resource, keyed by its ARN."""

    __tablename__ = "tags"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    resource_arn: Mapped[str] = mapped_column(sa.String(1011), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(256), default="")


class Identity(Base):
    """A verified-or-pending sender identity: an email address or a domain, per account and region.

    Statuses use SES v2's spelling (PENDING, SUCCESS, FAILED, TEMPORARY_FAILURE, NOT_STARTED); the v1
    provider converts. Domain names are stored lower-cased; email addresses as given (SES treats their
    local part as case-sensitive).
    """

    __tablename__ = "identities"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    identity: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # EMAIL_ADDRESS | DOMAIN
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    verification_status: Mapped[str] = mapped_column(sa.String(20), default="PENDING")
    #: v1 VerifyDomainIdentity's token (published as _amazonses TXT), or the email link's secret.
    verification_token: Mapped[str | None] = mapped_column(sa.String(64), default=None, index=True)
    verification_started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_checked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    verification_error: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    # DKIM: Easy DKIM (origin AWS_SES, three selector tokens, a key Sesame made) or BYODKIM (EXTERNAL).
    dkim_origin: Mapped[str] = mapped_column(sa.String(32), default="AWS_SES")
    dkim_signing_enabled: Mapped[bool] = mapped_column(default=True)
    dkim_status: Mapped[str] = mapped_column(sa.String(20), default="NOT_STARTED")
    dkim_tokens: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    dkim_private_key: Mapped[str | None] = mapped_column(sa.Text, default=None)  # encrypted PEM
    dkim_key_length: Mapped[str | None] = mapped_column(sa.String(16), default=None)
    dkim_next_key_length: Mapped[str | None] = mapped_column(sa.String(16), default=None)
    dkim_key_generated_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Custom MAIL FROM.
    mail_from_domain: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    mail_from_behavior: Mapped[str] = mapped_column(sa.String(24), default="USE_DEFAULT_VALUE")
    mail_from_status: Mapped[str | None] = mapped_column(sa.String(20), default=None)
    feedback_forwarding: Mapped[bool] = mapped_column(default=True)
    configuration_set_name: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    #: v1 notification settings: {"BounceTopic": arn, "HeadersInBounceNotificationsEnabled": bool, ...}
    notifications: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Sending-authorization policies, name → JSON document.
    policies: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The custom verification email template whose redirection URLs the link uses, if any.
    verification_template: Mapped[str | None] = mapped_column(sa.String(64), default=None)


class Template(Base):
    """An email template (v1 and v2 share them, as SES's two APIs list the same templates)."""

    __tablename__ = "templates"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    subject: Mapped[str | None] = mapped_column(sa.Text, default=None)
    text: Mapped[str | None] = mapped_column(sa.Text, default=None)
    html: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Message(Base):
    """An accepted message: written, with its recipients, before the MessageId goes back to the caller.

    The body is stored in the database, in the same transaction: one commit makes the message and its
    queue entries durable together, on one node or many sharing PostgreSQL.
    """

    __tablename__ = "messages"
    #: An account's messages newest first (the console's message search and its keyset pages).
    __table_args__ = (
        sa.Index("ix_messages_account_id_region_created_at", "account_id", "region", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(80), primary_key=True)  # SES's MessageId
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    operation: Mapped[str] = mapped_column(sa.String(40))
    source: Mapped[str] = mapped_column(sa.String(320))  # envelope sender (MAIL FROM)
    from_address: Mapped[str] = mapped_column(sa.String(320), index=True)  # identity checked
    subject: Mapped[str | None] = mapped_column(sa.Text, default=None)
    configuration_set: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What the caller asked for, for the dev-mode inspection endpoint (Destination, Body, Template…).
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: "queued", "captured" (dev mode), "rendering-failure" or "rejected" (a virus; neither is sent).
    status: Mapped[str] = mapped_column(sa.String(24), default="queued")
    size: Mapped[int] = mapped_column(default=0)
    #: The address of the API or SMTP client that sent it (event records' ses:source-ip tag).
    source_ip: Mapped[str | None] = mapped_column(sa.String(45), default=None)
    #: The tenant it was sent as (v2 TenantName, the X-SES-TENANT header), if any.
    tenant_name: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)


class QueueEntry(Base):
    """One recipient of one message, waiting for (or done with) delivery: the delivery queue."""

    __tablename__ = "queue"
    __table_args__ = (sa.Index("ix_queue_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(sa.String(320))
    domain: Mapped[str] = mapped_column(sa.String(255))
    #: "queued", "captured", "delivered", "bounced", "suppressed", …
    state: Mapped[str] = mapped_column(sa.String(24), default="queued")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_reply: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SendCounter(Base):
    """Recipients sent per account, region and time bucket: the 24-hour quota and the per-second rate.

    ``span`` is 1 (per-second buckets, kept a minute) or 60 (per-minute buckets, kept a day).
    """

    __tablename__ = "send_counters"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    span: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)  # epoch seconds // span
    count: Mapped[int] = mapped_column(default=0)


class SuppressedDestination(Base):
    """The account-level suppression list (SES v2)."""

    __tablename__ = "suppressed_destinations"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    email_address: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(16))  # BOUNCE | COMPLAINT
    last_update_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message_id: Mapped[str | None] = mapped_column(sa.String(80), default=None)
    feedback_id: Mapped[str | None] = mapped_column(sa.String(80), default=None)


class CustomVerificationTemplate(Base):
    """A custom verification email template (SES v1 and v2 share them)."""

    __tablename__ = "custom_verification_templates"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    from_email_address: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.Text)
    content: Mapped[str] = mapped_column(sa.Text)
    success_url: Mapped[str] = mapped_column(sa.Text)
    failure_url: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConfigurationSet(Base):
    """A configuration set. Its option groups are kept as SES v2 spells them (DeliveryOptions,
    SendingOptions, SuppressionOptions, …) in one JSON document; v1 reads and writes the same groups."""

    __tablename__ = "configuration_sets"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeliveryEvent(Base):
    """An outcome SES would publish (Delivery, Bounce, DeliveryDelay, Complaint, Reject…), written in the
    same transaction as the queue change that caused it; event publishing reads from here."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(sa.String(12))
    region: Mapped[str] = mapped_column(sa.String(32))
    event_type: Mapped[str] = mapped_column(sa.String(24))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    #: The event's own object as SES spells it (the "delivery", "bounce", … member of the record).
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Whether events/outbox.py has turned the record into its publications (one per destination).
    #: Only the few rows not yet dispatched are in the partial index the dispatcher reads.
    dispatched: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    __table_args__ = (
        sa.Index(
            "ix_events_undispatched",
            "id",
            sqlite_where=sa.text("dispatched = 0"),
            postgresql_where=sa.text("NOT dispatched"),
        ),
    )


class Publication(Base):
    """One event record on its way to one destination: the outbox, claimed with leases like the queue.

    ``destination`` names where it goes in a way that orders it: records of one message to one
    destination are published in the order they happened (``id``)."""

    __tablename__ = "publications"
    __table_args__ = (
        sa.Index("ix_publications_state_next_attempt_at", "state", "next_attempt_at"),
        sa.Index("ix_publications_message_id_destination_id", "message_id", "destination", "id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("events.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(sa.String(80))
    account_id: Mapped[str] = mapped_column(sa.String(12))
    region: Mapped[str] = mapped_column(sa.String(32))
    #: "set/<configuration set>/<event destination>", "identity/<identity>/<type>", "forward/<address>"
    destination: Mapped[str] = mapped_column(sa.String(400))
    #: sns | firehose | cloudwatch | eventbridge | pinpoint | email
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: The ARN or address, and what else the kind needs (CloudWatch dimensions, headers wanted).
    target: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: "event" (event publishing), "notification" (identity notifications), "email" (forwarding)
    format: Mapped[str] = mapped_column(sa.String(16))
    #: pending | published | failed
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DedicatedIpPool(Base):
    """A dedicated IP pool of an account: a named set of this node's source addresses."""

    __tablename__ = "dedicated_ip_pools"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    scaling_mode: Mapped[str] = mapped_column(sa.String(16), default="STANDARD")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DedicatedIp(Base):
    """Which pool of the account a source address (from ``delivery.dedicated_ips``) belongs to."""

    __tablename__ = "dedicated_ips"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    ip: Mapped[str] = mapped_column(sa.String(45), primary_key=True)
    pool_name: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    warmup_percentage: Mapped[int] = mapped_column(default=100)


class SnsTopic(Base):
    """A topic of Sesame's own SNS. ``attributes`` holds what the owner set (DisplayName, Policy,
    DeliveryPolicy, SignatureVersion, …); the computed ones are added when they are read."""

    __tablename__ = "sns_topics"
    __table_args__ = (sa.UniqueConstraint("account_id", "region", "name"),)

    arn: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(256))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SnsSubscription(Base):
    """An endpoint subscribed to a topic: ``pending`` until its owner confirms it with ``token``
    (SubscribeURL, ConfirmSubscription), then ``confirmed``; only confirmed ones get notifications."""

    __tablename__ = "sns_subscriptions"

    arn: Mapped[str] = mapped_column(sa.String(340), primary_key=True)
    topic_arn: Mapped[str] = mapped_column(sa.ForeignKey("sns_topics.arn", ondelete="CASCADE"), index=True)
    #: The account that subscribed (the topic's owner, as Sesame allows no other).
    account_id: Mapped[str] = mapped_column(sa.String(12))
    protocol: Mapped[str] = mapped_column(sa.String(16))
    endpoint: Mapped[str] = mapped_column(sa.Text)
    #: pending | confirmed | deleted (unsubscribed; kept while its SubscribeURL may restore it)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    token: Mapped[str] = mapped_column(sa.String(128), unique=True)
    token_expires_at: Mapped[dt.datetime] = mapped_column()
    #: RawMessageDelivery, DeliveryPolicy, FilterPolicy, … as given.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    authenticate_on_unsubscribe: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class SnsMessage(Base):
    """A published message, written with its deliveries in the Publish's transaction."""

    __tablename__ = "sns_messages"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SNS's MessageId
    topic_arn: Mapped[str] = mapped_column(sa.ForeignKey("sns_topics.arn", ondelete="CASCADE"), index=True)
    subject: Mapped[str | None] = mapped_column(sa.Text, default=None)
    message: Mapped[str] = mapped_column(sa.Text)
    #: MessageStructure "json": ``message`` is a JSON object of texts per protocol (and "default").
    structure: Mapped[str | None] = mapped_column(sa.String(8), default=None)
    #: MessageAttributes as notifications carry them: name → {"Type": …, "Value": …}.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SnsDelivery(Base):
    """One message (a Notification or a SubscriptionConfirmation) owed to one subscription: the SNS
    delivery queue, claimed with leases like the mail queue."""

    __tablename__ = "sns_deliveries"
    __table_args__ = (sa.Index("ix_sns_deliveries_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    subscription_arn: Mapped[str] = mapped_column(
        sa.ForeignKey("sns_subscriptions.arn", ondelete="CASCADE"), index=True
    )
    #: The MessageId the endpoint sees (an SnsMessage's id for a Notification), the same on every retry.
    message_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: Notification | SubscriptionConfirmation | UnsubscribeConfirmation
    kind: Mapped[str] = mapped_column(sa.String(32))
    state: Mapped[str] = mapped_column(
        sa.String(16), default="pending"
    )  # pending|delivering|delivered|failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReputationCounter(Base):
    """Outcomes counted per account, region, scope and time bucket (domain/reputation.py counts them).

    ``scope`` is "" for the account, or a configuration set's name (sets with reputation metrics).
    ``span`` 900: GetSendStatistics' 15-minute data points (bounces, complaints, rejects, by when they
    happened); ``span`` 3600: the reputation rates (sends, bounces, complaints, by when the mail was sent).
    """

    __tablename__ = "reputation_counters"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    span: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)  # epoch seconds // span
    sends: Mapped[int] = mapped_column(default=0)
    bounces: Mapped[int] = mapped_column(default=0)
    complaints: Mapped[int] = mapped_column(default=0)
    rejects: Mapped[int] = mapped_column(default=0)


class Reputation(Base):
    """The bounce and complaint rates last computed for an account ("" scope) or a configuration set,
    over the window domain/reputation.py describes, and when they were last reset (operator
    reinstatement, a configuration set's fresh start): mail sent before ``reset_at`` no longer counts."""

    __tablename__ = "reputation"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    sends: Mapped[int] = mapped_column(default=0)
    bounces: Mapped[int] = mapped_column(default=0)
    complaints: Mapped[int] = mapped_column(default=0)
    bounce_rate: Mapped[float] = mapped_column(sa.Float, default=0.0)
    complaint_rate: Mapped[float] = mapped_column(sa.Float, default=0.0)
    reset_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VdmCounter(Base):
    """VDM metrics (BatchGetMetricData): events counted per account, region, UTC day, metric and the
    dimensions a query may name, by domain/vdm.py's outbox observer as each record is dispatched.

    ``isp`` is the recipient's provider when it was known at counting time; otherwise it is "" and
    ``recipient_domain`` names the domain, whose provider a query then reads from ``vdm_isp_domains``
    (filled later by the background pass), so that every metric of a message agrees on its ISP."""

    __tablename__ = "vdm_counters"

    account_id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    # The metric before the day: every query names one metric and a range of days.
    metric: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    email_identity: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    configuration_set: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "" for none
    isp: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    recipient_domain: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    from_domain: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "" until tenants send
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class VdmIspDomain(Base):
    """A recipient domain's provider as its MX hosts say (``isp`` None until looked up)."""

    __tablename__ = "vdm_isp_domains"

    domain: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    isp: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    checked_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)


class VdmRecommendation(Base):
    """A VDM Advisor recommendation (ListRecommendations) about one resource, found by DNS checks.

    ``key`` names the issue ("SPF1", "DMARC2", …) so that a check finding it again updates the same row;
    an issue no longer found is FIXED, and forgotten 30 days later."""

    __tablename__ = "vdm_recommendations"

    account_id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    resource_arn: Mapped[str] = mapped_column(sa.String(1011), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(16))
    description: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(8))  # OPEN | FIXED
    impact: Mapped[str] = mapped_column(sa.String(8))  # LOW | HIGH
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VdmCheck(Base):
    """When an account's identities in a region were last checked for recommendations."""

    __tablename__ = "vdm_checks"

    account_id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InboundMessage(Base):
    """A message the MX took: committed, as received, before its final 250. The receipt rules that
    matched its recipients at that moment are kept with it (``plan``), so that rules run against the
    rule set active when the mail arrived, whatever is changed afterwards (reference 10.1 step 5).

    ``state``: "received" (verdicts and feedback to do; claimed with leases), "processed" (its
    receipts are running or ran), "captured" (dev mode, no rule matched: kept for /_sesame/inbound).
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (sa.Index("ix_inbound_messages_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(sa.String(80), primary_key=True)  # SES's receiving messageId
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    peer: Mapped[str] = mapped_column(sa.String(45))  # the client's IP address
    helo: Mapped[str] = mapped_column(sa.String(255))
    tls: Mapped[bool] = mapped_column(default=False)
    mail_from: Mapped[str] = mapped_column(sa.String(320))  # "" for the null reverse-path
    recipients: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: [{"account_id", "region", "rule_set", "rules": [{"rule": ReceiptRule, "recipients": [...]}]}]
    plan: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    #: Recipients that are return-path addresses: their mail is a bounce or a complaint report.
    feedback: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: The receipt's verdict members as SES spells them ({"spfVerdict": {"status": "PASS"}, ...}).
    verdicts: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    #: The header fields SES adds (Received, Authentication-Results, X-SES-*-Verdict), CRLF-ended.
    added_headers: Mapped[bytes] = mapped_column(sa.LargeBinary, default=b"")
    state: Mapped[str] = mapped_column(sa.String(16), default="received")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    size: Mapped[int] = mapped_column(default=0)
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Receipt(Base):
    """One account's matching rules run over one received message: the actions in order, resumable.

    ``rule`` and ``action`` point at the next action to run; an action that fails is retried (the
    receipt keeps its place) for up to four hours, SES's limit before ``PublishExpired``. Claimed with
    leases like the queue, so a node that dies leaves nothing stuck and a restart loses nothing.
    """

    __tablename__ = "receipts"
    __table_args__ = (sa.Index("ix_receipts_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        sa.ForeignKey("inbound_messages.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(sa.String(12))
    region: Mapped[str] = mapped_column(sa.String(32))
    rule_set: Mapped[str] = mapped_column(sa.String(64))
    rules: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    rule: Mapped[int] = mapped_column(default=0)
    action: Mapped[int] = mapped_column(default=0)
    #: AddHeader actions run so far: [[name, value], ...], prepended to what later actions get.
    headers: Mapped[list[list[str]]] = mapped_column(sa.JSON, default=list)
    #: pending | done | expired (an action kept failing for four hours)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    #: What each action did: [{"rule", "action", "type", "result"}], for the console and tests.
    log: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReceiptRuleSet(Base):
    """A receipt rule set (SES v1 receiving). Its rules are one ordered JSON list of ReceiptRule objects
    in the API's own spelling (``Name``, ``Enabled``, ``TlsPolicy``, ``Recipients``, ``Actions``,
    ``ScanEnabled``): every change rewrites the list under the row's lock, and the MX reads it whole.
    At most one set per account and region is ``active``: a partial unique index says so, and the MX's
    read of every active set uses it."""

    __tablename__ = "receipt_rule_sets"
    __table_args__ = (
        sa.Index(
            "uq_receipt_rule_sets_active",
            "account_id",
            "region",
            unique=True,
            sqlite_where=sa.text("active = 1"),
            postgresql_where=sa.text("active"),
        ),
    )

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=False)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)


class ReceiptFilter(Base):
    """An IP address filter of an account's receiving: ``policy`` Block or Allow, ``cidr`` as given."""

    __tablename__ = "receipt_filters"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    policy: Mapped[str] = mapped_column(sa.String(8))
    cidr: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContactList(Base):
    """An account's contact list (SES v2 list management): its topics as the API spells them
    (``TopicName``, ``DisplayName``, ``Description``, ``DefaultSubscriptionStatus``)."""

    __tablename__ = "contact_lists"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(sa.Text, default=None)
    topics: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Contact(Base):
    """A contact of a contact list. ``address`` is the lower-cased key that sends match on;
    ``email_address`` keeps the spelling the contact was created with. ``preferences`` maps a topic
    name to ``OPT_IN`` or ``OPT_OUT`` for the topics the contact chose explicitly."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["account_id", "region", "list_name"],
            ["contact_lists.account_id", "contact_lists.region", "contact_lists.name"],
            ondelete="CASCADE",
        ),
    )

    account_id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    list_name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    address: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    email_address: Mapped[str] = mapped_column(sa.String(320))
    preferences: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    unsubscribe_all: Mapped[bool] = mapped_column(default=False)
    attributes_data: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BulkJob(Base):
    """An import job (CreateImportJob) or an export job (CreateExportJob), run in the background.

    Claimed with leases like the queue: ``locked_by``/``locked_until``, renewed with each batch a
    running job writes; a job whose process died is due again once its lease has run out, and resumes
    at ``position`` (bytes of its source read) and ``line`` (lines read), saved in the transaction that
    wrote those records. ``spec`` holds the request's members as the API spells them (timestamps as
    epoch seconds). ``result_key`` and ``failed_key`` name objects in the jobs bucket: the export file,
    the failed-records file.
    """

    __tablename__ = "bulk_jobs"
    __table_args__ = (
        sa.Index("ix_bulk_jobs_status_locked_until", "status", "locked_until"),
        sa.Index(
            "ix_bulk_jobs_account_id_region_kind_created_at", "account_id", "region", "kind", "created_at"
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SES's JobId
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(8))  # "import" | "export"
    #: ImportDestinationType (SUPPRESSION_LIST, CONTACT_LIST) or ExportSourceType (METRICS_DATA, …)
    source_type: Mapped[str] = mapped_column(sa.String(24))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: CREATED | PROCESSING | COMPLETED | FAILED | CANCELLED (the API's JobStatus)
    status: Mapped[str] = mapped_column(sa.String(16), default="CREATED")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    processed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    failed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    exported: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    position: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    line: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: The source's size once known, for progress bars (``sesame jobs``).
    total_bytes: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    result_key: Mapped[str | None] = mapped_column(sa.String(1024), default=None)
    failed_key: Mapped[str | None] = mapped_column(sa.String(1024), default=None)
    error_message: Mapped[str | None] = mapped_column(sa.Text, default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)


class BulkJobFailure(Base):
    """A record an import could not take, written with the batch it was read in (so a resumed job
    keeps those found before), and turned into the failed-records file when the job completes."""

    __tablename__ = "bulk_job_failures"

    job_id: Mapped[str] = mapped_column(sa.ForeignKey("bulk_jobs.id", ondelete="CASCADE"), primary_key=True)
    line: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    record: Mapped[str] = mapped_column(sa.Text)
    error: Mapped[str] = mapped_column(sa.Text)


class Tenant(Base):
    """A tenant (SES v2 CreateTenant): a named group of the account's identities, configuration sets and
    templates with reputation of its own (its reputation entity) and, optionally, a suppression list of
    its own (``suppression_attributes``: TenantSuppressionAttributes as given)."""

    __tablename__ = "tenants"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    arn: Mapped[str] = mapped_column(sa.String(1011))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    suppression_attributes: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class TenantResource(Base):
    """A resource (identity, configuration set or template, by ARN) associated with a tenant."""

    __tablename__ = "tenant_resources"
    __table_args__ = (sa.Index("ix_tenant_resources_resource", "account_id", "region", "resource_arn"),)

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    tenant_name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    resource_arn: Mapped[str] = mapped_column(sa.String(1011), primary_key=True)
    resource_type: Mapped[str] = mapped_column(sa.String(24))  # EMAIL_IDENTITY | CONFIGURATION_SET | …
    associated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReputationEntity(Base):
    """A reputation entity (SES v2): a resource (a tenant, by ARN) whose sending a policy may pause on its
    own rates (domain/reputation_entities.py). ``scope`` names its counters in ``reputation_counters``;
    ``sending_status`` is the aggregate of the customer's and Sesame's statuses, kept for filtering."""

    __tablename__ = "reputation_entities"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(1011), primary_key=True)
    entity_type: Mapped[str] = mapped_column(sa.String(16), default="RESOURCE")
    scope: Mapped[str] = mapped_column(sa.String(64))
    policy: Mapped[str] = mapped_column(sa.String(255))
    customer_status: Mapped[str] = mapped_column(sa.String(16), default="ENABLED")
    customer_cause: Mapped[str | None] = mapped_column(sa.String(512), default=None)
    customer_updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ses_status: Mapped[str] = mapped_column(sa.String(16), default="ENABLED")
    ses_cause: Mapped[str | None] = mapped_column(sa.String(512), default=None)
    ses_updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sending_status: Mapped[str] = mapped_column(sa.String(16), default="ENABLED")
    #: The highest finding the rates show: NONE, LOW or HIGH.
    impact: Mapped[str] = mapped_column(sa.String(8), default="NONE")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TenantSuppressedDestination(Base):
    """A tenant's own suppression list (SuppressionScope TENANT), as ``suppressed_destinations`` is the
    account's."""

    __tablename__ = "tenant_suppressed_destinations"

    account_id: Mapped[str] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    tenant_name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    email_address: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(16))  # BOUNCE | COMPLAINT
    last_update_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message_id: Mapped[str | None] = mapped_column(sa.String(80), default=None)
    feedback_id: Mapped[str | None] = mapped_column(sa.String(80), default=None)


class ConsoleSession(Base):
    """A signed-in browser of the web console. The cookie holds a random token; the table holds only its
    SHA-256, so a read of the database gives no one a session. Rows live in the database (not in the
    cookie) so that signing out ends a session on every node, and expired rows are swept at sign-in."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # hex SHA-256 of the token
    #: "dev" (dev mode, no sign-in), "account" (an access key's account) or "operator" (the admin token).
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: The account whose pages are shown (dev: the one chosen; operator: none).
    account_id: Mapped[str | None] = mapped_column(sa.String(12), default=None)
    region: Mapped[str] = mapped_column(sa.String(32))
    #: The key signed in with: a session ends when its key is disabled or deleted.
    access_key_id: Mapped[str | None] = mapped_column(sa.String(128), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class ConsolePreview(Base):
    """A template preview the console rendered, for the preview's frame, whose request may reach
    another process or node than the one that rendered it (``--workers``, nodes behind a balancer)."""

    __tablename__ = "console_previews"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # random, in the frame's URL
    #: The console session that rendered it (its id): no other session may read it.
    owner: Mapped[str] = mapped_column(sa.String(64), index=True)
    html: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class Node(Base):
    """A running Sesame process, as it last said of itself (runtime's node heartbeat): what the
    operator's Nodes page lists. A process that stops cleanly removes its row; one that died stops
    being seen, and its row is swept a day later."""

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)  # host name and process id
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column()
    mode: Mapped[str] = mapped_column(sa.String(8))
    #: What the process runs: "api", "smtp", "mx", "delivery" (or "capture"), "events", "jobs"…
    roles: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: The addresses it listens on, by listener name ("http", "smtp", "smtps", "mx").
    listeners: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column()
    seen_at: Mapped[dt.datetime] = mapped_column()
