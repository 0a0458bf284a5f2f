"""Receipt rule sets, receipt rules and IP filters (SES v1 receiving): the API's semantics, and the
questions the MX asks of them while mail arrives.

A set's rules are one ordered list, stored whole in the set's row (definitions.py says what a rule may
be); every change reads it under the row's lock and writes it back. One set per account and region is
active; mail is matched against the active set only.

The MX asks per recipient (``rules_for``) and per connection (``connection_allowed``). Both read one
in-process snapshot of every active set with its enabled rules, its account's verified identities and IP
filters: loaded at most every ``cache_seconds`` (several nodes may share PostgreSQL, so another node's
change is seen within that time) and dropped at once by a change made through this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.identities import EMAIL, SUCCESS
from sesame.receiving import definitions as d
from sesame.receiving.matching import (
    IpFilter,
    client_address,
    filter_allows,
    receives_for,
    rule_matches,
    split_address,
)
from sesame.storage.db import Database
from sesame.storage.models import Identity, ReceiptFilter, ReceiptRuleSet, table, utcnow

#: How long the MX's snapshot of the active rule sets serves before it is read again.
CACHE_SECONDS = 2.0
LIST_PAGE = 100


class Topics(Protocol):
    """Where SNS topics lead (events/publisher.py): Sesame's own topics or the configured SNS endpoint."""

    async def topic_available(self, account_id: str, topic_arn: str) -> bool: ...


@dataclass(frozen=True)
class MatchedRuleSet:
    """The rules of one account's active rule set that apply to one recipient, in the set's order.
    Each rule is a ReceiptRule in the API's spelling (``Name``, ``TlsPolicy``, ``ScanEnabled``,
    ``Actions`` as ``[{"S3Action": {...}}, ...]``). ``positions`` holds each rule's place in the set,
    so that the rules matched by a message's several recipients can be run in the set's order."""

    account_id: str
    region: str
    rule_set_name: str
    rules: tuple[dict[str, Any], ...]
    positions: tuple[int, ...] = ()


@dataclass(eq=False)
class _Receiver:
    """An account and region with an active rule set, as the snapshot keeps it."""

    account_id: str
    region: str
    rule_set_name: str
    rules: list[dict[str, Any]]  # the enabled ones
    domains: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    filters: list[IpFilter] = field(default_factory=list)


@dataclass
class _Snapshot:
    loaded_at: float
    receivers: list[_Receiver]
    #: verified domain or address (lower-cased) → the receivers that hold it
    index: dict[str, list[_Receiver]]


class ReceiptRules:
    def __init__(
        self, db: Database, topics: Topics | None = None, *, cache_seconds: float = CACHE_SECONDS
    ) -> None:
        self.db = db
        #: Checks that a topic an action names exists (set once the event publisher exists).
        self.topics = topics
        self.cache_seconds = cache_seconds
        self._snapshot: _Snapshot | None = None
        self._loading = asyncio.Lock()

    # -- rule sets ---------------------------------------------------------------------------------

    async def create_set(self, account_id: str, region: str, name: str) -> None:
        d.check_rule_set_name(name)
        async with self.db.write() as s:
            await self._check_new_set(s, account_id, region, name)
            s.add(ReceiptRuleSet(account_id=account_id, region=region, name=name, created_at=utcnow()))
        self.invalidate()

    async def _check_new_set(self, s: AsyncSession, account_id: str, region: str, name: str) -> None:
        if await s.get(ReceiptRuleSet, (account_id, region, name)) is not None:
            raise d.ReceiptExists("Rule set", name)
        count = await s.scalar(
            sa.select(sa.func.count())
            .select_from(ReceiptRuleSet)
            .where(ReceiptRuleSet.account_id == account_id, ReceiptRuleSet.region == region)
        )
        if (count or 0) >= d.MAX_RULE_SETS:
            raise d.TooMany(f"An account can have at most {d.MAX_RULE_SETS} receipt rule sets.")

    async def delete_set(self, account_id: str, region: str, name: str) -> None:
        """A set that does not exist is no error (SES's DeleteReceiptRuleSet lists none); the active
        set cannot be deleted."""
        async with self.db.write() as s:
            row = await s.get(ReceiptRuleSet, (account_id, region, name), with_for_update=True)
            if row is None:
                return
            if row.active:
                raise d.RuleSetInUse(name)
            await s.delete(row)
        self.invalidate()

    async def get_set(self, account_id: str, region: str, name: str) -> ReceiptRuleSet:
        async with self.db.read() as s:
            row = await s.get(ReceiptRuleSet, (account_id, region, name))
        if row is None:
            raise d.RuleSetNotFound(name)
        return row

    async def page_sets(
        self, account_id: str, region: str, after: str | None, limit: int = LIST_PAGE
    ) -> tuple[list[ReceiptRuleSet], str | None]:
        q = sa.select(ReceiptRuleSet).where(
            ReceiptRuleSet.account_id == account_id, ReceiptRuleSet.region == region
        )
        return await self.db.page(q, ReceiptRuleSet.name, after, limit)

    async def clone_set(self, account_id: str, region: str, name: str, original: str) -> None:
        """A new, inactive set with a deep copy of ``original``'s rules."""
        d.check_rule_set_name(name)
        async with self.db.write() as s:
            source = await s.get(ReceiptRuleSet, (account_id, region, original))
            if source is None:
                raise d.RuleSetNotFound(original)
            await self._check_new_set(s, account_id, region, name)
            rules = [dict(r) for r in source.rules or []]  # the JSON column is copied when written
            s.add(
                ReceiptRuleSet(
                    account_id=account_id, region=region, name=name, created_at=utcnow(), rules=rules
                )
            )
        self.invalidate()

    async def reorder_set(self, account_id: str, region: str, name: str, rule_names: Sequence[str]) -> None:
        """Put the set's rules in the order named; every rule must be named, once."""

        def change(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
            by_name = {r["Name"]: r for r in rules}
            for rule_name in rule_names:
                if rule_name not in by_name:
                    raise d.RuleNotFound(rule_name)
            if len(rule_names) != len(rules) or len(set(rule_names)) != len(rule_names):
                raise d.InvalidReceiptValue("The new order must name every rule of the rule set, each once.")
            return [by_name[n] for n in rule_names]

        await self._change_rules(account_id, region, name, change)

    async def set_active(self, account_id: str, region: str, name: str | None) -> None:
        """Make ``name`` the active set; None deactivates them all (receiving stops)."""
        async with self.db.write() as s:
            # Lock the account's sets first: two concurrent calls then take turns instead of
            # colliding on the one-active-set index.
            rows = list(
                await s.scalars(
                    sa.select(ReceiptRuleSet)
                    .where(ReceiptRuleSet.account_id == account_id, ReceiptRuleSet.region == region)
                    .with_for_update()
                )
            )
            if name is not None and not any(r.name == name for r in rows):
                raise d.RuleSetNotFound(name)
            for row in rows:
                if row.active and row.name != name:
                    row.active = False
            await s.flush()  # the old one inactive before the new one is active
            for row in rows:
                if row.name == name:
                    row.active = True
        self.invalidate()

    async def active_set(self, account_id: str, region: str) -> ReceiptRuleSet | None:
        async with self.db.read() as s:
            row: ReceiptRuleSet | None = await s.scalar(
                sa.select(ReceiptRuleSet).where(
                    ReceiptRuleSet.account_id == account_id,
                    ReceiptRuleSet.region == region,
                    ReceiptRuleSet.active,
                )
            )
        return row

    # -- rules -------------------------------------------------------------------------------------

    async def create_rule(
        self, account_id: str, region: str, set_name: str, rule: dict[str, Any], after: str | None = None
    ) -> None:
        """Add a rule after the rule ``after``, or first when ``after`` is None."""
        stored = await self._checked(account_id, region, rule)

        def change(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if any(r["Name"] == stored["Name"] for r in rules):
                raise d.ReceiptExists("Rule", stored["Name"])
            if len(rules) >= d.MAX_RULES_PER_SET:
                raise d.TooMany(f"A receipt rule set can have at most {d.MAX_RULES_PER_SET} rules.")
            at = 0 if after is None else _index(rules, after) + 1
            return [*rules[:at], stored, *rules[at:]]

        await self._change_rules(account_id, region, set_name, change)

    async def update_rule(self, account_id: str, region: str, set_name: str, rule: dict[str, Any]) -> None:
        """Replace the rule of that name, in its place."""
        stored = await self._checked(account_id, region, rule)

        def change(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
            rules = list(rules)
            rules[_index(rules, stored["Name"])] = stored
            return rules

        await self._change_rules(account_id, region, set_name, change)

    async def delete_rule(self, account_id: str, region: str, set_name: str, rule_name: str) -> None:
        """A rule that does not exist is no error (SES's DeleteReceiptRule lists only a missing set)."""
        await self._change_rules(
            account_id, region, set_name, lambda rules: [r for r in rules if r["Name"] != rule_name]
        )

    async def get_rule(self, account_id: str, region: str, set_name: str, rule_name: str) -> dict[str, Any]:
        row = await self.get_set(account_id, region, set_name)
        rules = list(row.rules or [])
        return dict(rules[_index(rules, rule_name)])

    async def set_rule_position(
        self, account_id: str, region: str, set_name: str, rule_name: str, after: str | None = None
    ) -> None:
        """Move a rule after the rule ``after``, or first when ``after`` is None."""

        def change(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
            moving = rules[_index(rules, rule_name)]
            rest = [r for r in rules if r["Name"] != rule_name]
            if after == rule_name:
                return list(rules)  # after itself: where it is
            at = 0 if after is None else _index(rest, after) + 1
            return [*rest[:at], moving, *rest[at:]]

        await self._change_rules(account_id, region, set_name, change)

    async def _checked(self, account_id: str, region: str, rule: dict[str, Any]) -> dict[str, Any]:
        stored = d.receipt_rule(rule)
        d.check_regions(stored, region)
        if self.topics is not None:
            for arn in d.topic_arns(stored):
                if not await self.topics.topic_available(account_id, arn):
                    raise d.InvalidSnsTopic(arn, "the topic does not exist.")
        return stored

    async def _change_rules(
        self,
        account_id: str,
        region: str,
        set_name: str,
        change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    ) -> None:
        async with self.db.write() as s:
            row = await s.get(ReceiptRuleSet, (account_id, region, set_name), with_for_update=True)
            if row is None:
                raise d.RuleSetNotFound(set_name)
            row.rules = change(list(row.rules or []))
        self.invalidate()

    # -- IP filters --------------------------------------------------------------------------------

    async def create_filter(self, account_id: str, region: str, given: dict[str, Any]) -> None:
        stored = d.receipt_filter(given)
        name, ip = stored["Name"], stored["IpFilter"]
        async with self.db.write() as s:
            if await s.get(ReceiptFilter, (account_id, region, name)) is not None:
                raise d.ReceiptExists("Filter", name)
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(ReceiptFilter)
                .where(ReceiptFilter.account_id == account_id, ReceiptFilter.region == region)
            )
            if (count or 0) >= d.MAX_FILTERS:
                raise d.TooMany(f"An account can have at most {d.MAX_FILTERS} IP address filters.")
            s.add(
                ReceiptFilter(
                    account_id=account_id,
                    region=region,
                    name=name,
                    policy=ip["Policy"],
                    cidr=ip["Cidr"],
                    created_at=utcnow(),
                )
            )
        self.invalidate()

    async def delete_filter(self, account_id: str, region: str, name: str) -> None:
        """A filter that does not exist is no error (SES's DeleteReceiptFilter lists none)."""
        async with self.db.write() as s:
            await s.execute(
                sa.delete(ReceiptFilter).where(
                    ReceiptFilter.account_id == account_id,
                    ReceiptFilter.region == region,
                    ReceiptFilter.name == name,
                )
            )
        self.invalidate()

    async def list_filters(self, account_id: str, region: str) -> list[dict[str, Any]]:
        """The account's filters in the API's spelling, by name."""
        async with self.db.read() as s:
            rows = await s.scalars(
                sa.select(ReceiptFilter)
                .where(ReceiptFilter.account_id == account_id, ReceiptFilter.region == region)
                .order_by(ReceiptFilter.name)
            )
            return [_filter_dict(r) for r in rows]

    # -- what the MX asks --------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the snapshot: the next question reads the database again."""
        self._snapshot = None

    async def rules_for(self, recipient: str, client_ip: str | None = None) -> list[MatchedRuleSet]:
        """For each account and region that receives mail for ``recipient`` (a verified domain of its
        own, or a parent of the recipient's domain, or the verified address itself) and whose active
        set has enabled rules that match it, those rules in order. With ``client_ip``, an account whose
        IP filters refuse the client is left out (SES applies each account's filters to its own mail).
        Several accounts may receive for one domain: all of them get the mail (SES's guide). An empty
        list means no rule matches: the MX refuses the recipient."""
        snapshot = await self._current()
        local, domain = split_address(recipient)
        if not local or not domain:
            return []
        candidates: list[_Receiver] = []
        keys = [f"{local}@{domain}"]
        labels = domain.split(".")
        keys += [".".join(labels[i:]) for i in range(len(labels))]
        for key in keys:
            for receiver in snapshot.index.get(key, ()):
                if receiver not in candidates:
                    candidates.append(receiver)
        found = []
        for receiver in candidates:
            if not receives_for(receiver.domains, receiver.addresses, recipient):
                continue
            if client_ip is not None and not filter_allows(receiver.filters, client_ip):
                continue
            matched = [(i, r) for i, r in enumerate(receiver.rules) if rule_matches(r, recipient)]
            if matched:
                positions, rules = zip(*matched, strict=True)
                found.append(
                    MatchedRuleSet(
                        receiver.account_id, receiver.region, receiver.rule_set_name, rules, positions
                    )
                )
        return found

    async def allow_listed(self, client_ip: str) -> bool:
        """Whether some account's Allow filter covers ``client_ip``: such a client gets past the DNS
        blocklists, as SES's allow list overrides its own block list (reference 10.5)."""
        snapshot = await self._current()
        address = client_address(client_ip)
        for receiver in snapshot.receivers:
            for f in receiver.filters:
                if f.policy == "Allow" and address.version == f.network.version and address in f.network:
                    return True
        return False

    async def connection_allowed(self, client_ip: str) -> bool:
        """Whether the MX should talk to ``client_ip`` at all. The MX does not know whose mail comes
        until RCPT, so at connection time a client is refused only when it could deliver to nobody:
        some account receives mail, and every account that does refuses this client with its filters.
        ``rules_for(recipient, client_ip)`` then applies each account's filters to its own recipients."""
        snapshot = await self._current()
        if not snapshot.receivers:
            return True
        return any(filter_allows(r.filters, client_ip) for r in snapshot.receivers)

    async def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded_at < self.cache_seconds:
            return snapshot
        async with self._loading:  # one load at a time; the others use its result
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - snapshot.loaded_at >= self.cache_seconds:
                snapshot = self._snapshot = await self._load()
            return snapshot

    async def _load(self) -> _Snapshot:
        started = time.monotonic()
        sets, ids = table(ReceiptRuleSet), table(Identity)
        filters = table(ReceiptFilter)
        active = sa.select(sets.c.account_id, sets.c.region).where(sets.c.active).subquery()
        on_active = sa.and_(active.c.account_id == ids.c.account_id, active.c.region == ids.c.region)
        async with self.db.read() as s:
            set_rows = (
                await s.execute(
                    sa.select(sets.c.account_id, sets.c.region, sets.c.name, sets.c.rules).where(
                        sets.c.active
                    )
                )
            ).all()
            id_rows = (
                await s.execute(
                    sa.select(ids.c.account_id, ids.c.region, ids.c.identity, ids.c.kind)
                    .join(active, on_active)
                    .where(ids.c.verification_status == SUCCESS)
                )
            ).all()
            filter_rows = (
                await s.execute(
                    sa.select(
                        filters.c.account_id,
                        filters.c.region,
                        filters.c.name,
                        filters.c.policy,
                        filters.c.cidr,
                    ).join(  # fmt: skip
                        active,
                        sa.and_(
                            active.c.account_id == filters.c.account_id,
                            active.c.region == filters.c.region,
                        ),
                    )
                )
            ).all()
        receivers = {
            (a, r): _Receiver(a, r, name, [x for x in rules or [] if x.get("Enabled")])
            for a, r, name, rules in set_rows
        }
        index: dict[str, list[_Receiver]] = {}
        for a, r, identity, kind in id_rows:
            receiver = receivers.get((a, r))
            if receiver is None:
                continue
            key = identity.lower().rstrip(".")
            (receiver.addresses if kind == EMAIL else receiver.domains).add(key)
            index.setdefault(key, []).append(receiver)
        for a, r, name, policy, cidr in filter_rows:
            receiver = receivers.get((a, r))
            if receiver is not None:
                receiver.filters.append(_parsed_filter(name, policy, cidr))
        return _Snapshot(started, list(receivers.values()), index)


def _parsed_filter(name: str, policy: str, cidr: str) -> IpFilter:
    return IpFilter.of({"Name": name, "IpFilter": {"Policy": policy, "Cidr": cidr}})


def _filter_dict(row: ReceiptFilter) -> dict[str, Any]:
    return {"Name": row.name, "IpFilter": {"Policy": row.policy, "Cidr": row.cidr}}


def _index(rules: list[dict[str, Any]], name: str) -> int:
    for i, rule in enumerate(rules):
        if rule["Name"] == name:
            return i
    raise d.RuleNotFound(name)
