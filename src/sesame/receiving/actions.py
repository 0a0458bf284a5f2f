"""Receipt actions, for real (reference 10.3): one receipt's rules run in order, each rule's actions in
order, over the stored copy of the message (SES's added header fields, then AddHeader's).

An action that fails (an S3 endpoint down, a function that errs) stops the receipt where it is; the
receipt keeps its place and is tried again with backoff, for up to four hours (SES then gives up and
counts ``PublishExpired``). Actions before the failed one are not run again, except after a crash
between an action and the save of the receipt's place: receipts are at least once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sesame.domain.sending import Outgoing
from sesame.integrations.functions import Functions, disposition
from sesame.integrations.objects import ObjectStore
from sesame.mail.dsn import RecipientDsn, build_dsn
from sesame.receiving import notifications
from sesame.receiving.inbox import Due, Inbox
from sesame.storage.models import InboundMessage, utcnow

log = logging.getLogger(__name__)

#: SES stops retrying an action after four hours and counts it as PublishExpired (reference 10.3).
GIVE_UP_AFTER = dt.timedelta(hours=4)

PublishSns = Callable[[str, str, str, str | None], Awaitable[None]]
SendSystem = Callable[[str, str, Outgoing], Awaitable[str]]


class ActionFailed(Exception):
    """An action could not be carried out now; the receipt is tried again later, unless the cause
    will not go away (``retryable`` false: a key the store refuses, an event a function cannot take)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.retryable = retryable


def _action_failed(exc: Exception) -> ActionFailed:
    return ActionFailed(str(exc) or type(exc).__name__, retryable=getattr(exc, "retryable", True))


@dataclass(slots=True)
class _Run:
    """A receipt being worked through."""

    due: Due
    message: InboundMessage
    headers: list[list[str]]
    log: list[dict[str, Any]]

    def copy(self) -> bytes:
        """The message as actions see it: AddHeader's fields, SES's, then the message as received."""
        added = "".join(f"{name}: {value}\r\n" for name, value in reversed(self.headers)).encode()
        return added + self.message.added_headers + self.message.body


class Actions:
    def __init__(
        self,
        inbox: Inbox,
        objects: ObjectStore,
        functions: Functions,
        publish_sns: PublishSns,
        send_system: SendSystem,
        reporting_mta: str,
    ) -> None:
        self.inbox = inbox
        self.objects = objects
        self.functions = functions
        self.publish_sns = publish_sns
        self.send_system = send_system
        self.reporting_mta = reporting_mta

    async def run(self, due: Due, message: InboundMessage | None = None) -> None:
        """Run a claimed receipt from where it stands; ``message`` saves reading it when in hand."""
        message = message or await self.inbox.message(due.message_id)
        if message is None:  # deleted meanwhile (dev mode's DELETE): nothing left to act on
            await self.inbox.advance(due, state="done")
            return
        run = _Run(due, message, [list(h) for h in due.headers], list(due.log))
        rule_at, action_at = due.rule, due.action
        try:
            while rule_at < len(due.rules):
                entry = due.rules[rule_at]
                stop = await self._rule(run, rule_at, action_at, entry["rule"], entry["recipients"])
                if stop == "STOP_RULE_SET":
                    break
                rule_at, action_at = rule_at + 1, 0
        except _Stopped as stopped:
            await self._failed(run, stopped)
            return
        await self.inbox.advance(
            due,
            state="done",
            rule=len(due.rules),
            action=0,
            headers=run.headers,
            log=run.log,
            last_error=None,
        )

    async def _rule(
        self, run: _Run, rule_at: int, action_at: int, rule: dict[str, Any], recipients: list[str]
    ) -> str:
        """Run a rule's actions from ``action_at``; its disposition ("CONTINUE", "STOP_RULE_SET")."""
        if action_at == 0 and rule.get("TlsPolicy") == "Require" and not run.message.tls:
            # SES bounces mail that came in clear to a rule that requires TLS, and runs none of it.
            await self._bounce_back(run, recipients, 530, "5.7.1", "TLS is required for this recipient.")
            run.log.append({"rule": rule.get("Name"), "type": "TlsPolicy", "result": "bounced"})
            return "CONTINUE"
        actions = rule.get("Actions") or []
        for index in range(action_at, len(actions)):
            kind, params = next(iter(actions[index].items()))
            try:
                outcome = await self._act(run, kind, params, recipients)
            except ActionFailed as exc:
                raise _Stopped(rule_at, index, f"{kind}: {exc}", exc.retryable) from exc
            except Exception as exc:  # an unexpected error is a failure of this action, retried
                log.exception("receipt action %s of message %s failed", kind, run.message.id)
                raise _Stopped(rule_at, index, f"{kind}: {exc}", True) from exc
            run.log.append({"rule": rule.get("Name"), "type": kind, "result": outcome})
            if outcome == "STOP_RULE":
                return "CONTINUE"
            if outcome == "STOP_RULE_SET":
                return "STOP_RULE_SET"
        return "CONTINUE"

    async def _failed(self, run: _Run, stopped: _Stopped) -> None:
        due, now, reason = run.due, utcnow(), stopped.reason
        if not stopped.retryable:
            log.warning("receipt %s of message %s failed for good: %s", due.id, run.message.id, reason)
            run.log.append({"type": "PublishFailure", "result": reason})
            state, retry_at = "failed", now
        elif now - due.created_at >= GIVE_UP_AFTER:
            log.warning("receipt %s of message %s expired: %s", due.id, run.message.id, reason)
            run.log.append({"type": "PublishExpired", "result": reason})
            state, retry_at = "expired", now
        else:
            state, retry_at = "pending", now + backoff(due.attempts)
        await self.inbox.advance(
            due,
            state=state,
            rule=stopped.rule,
            action=stopped.action,
            headers=run.headers,
            log=run.log,
            last_error=reason,
            next_attempt_at=retry_at,
        )

    # -- the actions ------------------------------------------------------------------------------

    async def _act(self, run: _Run, kind: str, params: dict[str, Any], recipients: list[str]) -> str:
        if kind == "AddHeaderAction":
            run.headers.append([params["HeaderName"], params["HeaderValue"]])
            return "CONTINUE"
        if kind == "S3Action":
            key = notifications.s3_object_key(params.get("ObjectKeyPrefix"), run.message.id)
            try:
                where = await self.objects.put(params["BucketName"], key, run.copy(), region=run.due.region)
            except Exception as exc:
                raise _action_failed(exc) from exc
            await self._notify(run, kind, params, recipients)
            return f"stored at {where}"
        if kind == "SNSAction":
            encoding = params.get("Encoding") or "UTF-8"
            try:
                body = self._notification(
                    run, kind, params, recipients, content=run.copy(), encoding=encoding
                )
            except notifications.NotificationTooLarge:  # SES bounces mail the SNS action cannot carry
                await self._bounce_back(run, recipients, 552, "5.3.4", "Message too large for notification.")
                return "STOP_RULE_SET"
            await self._publish(run, params["TopicArn"], body)
            return "published"
        if kind == "LambdaAction":
            return await self._invoke(run, params, recipients)
        if kind == "BounceAction":
            status = params.get("StatusCode") or "5.0.0"
            await self._bounce_back(run, recipients, int(params["SmtpReplyCode"]), status, params["Message"],
                                    sender=params["Sender"])  # fmt: skip
            await self._notify(run, kind, params, recipients)
            return "bounced"
        if kind == "StopAction":
            await self._notify(run, kind, params, recipients)
            return "STOP_RULE_SET"
        # WorkmailAction, ConnectAction: stored with the rule, not run (there is no WorkMail here).
        return "not run"

    async def _invoke(self, run: _Run, params: dict[str, Any], recipients: list[str]) -> str:
        invocation: Literal["Event", "RequestResponse"] = (
            "RequestResponse" if params.get("InvocationType") == "RequestResponse" else "Event"
        )
        receipt = self._receipt(run, "LambdaAction", params, recipients)
        event = notifications.lambda_event(receipt, self._mail(run))
        try:
            response = await self.functions.invoke(params["FunctionArn"], event, invocation_type=invocation)
        except Exception as exc:
            raise _action_failed(exc) from exc
        await self._notify(run, "LambdaAction", params, recipients)
        return disposition(response) if invocation == "RequestResponse" else "CONTINUE"

    # -- notifications and bounces ----------------------------------------------------------------

    def _mail(self, run: _Run) -> dict[str, Any]:
        m = run.message
        return notifications.mail_object(
            timestamp=m.received_at, source=m.mail_from, message_id=m.id, raw=run.copy()
        )

    def _receipt(self, run: _Run, kind: str, params: dict[str, Any], recipients: list[str]) -> dict[str, Any]:
        m = run.message
        now = utcnow()
        return notifications.receipt_object(
            timestamp=now,
            processing_ms=int((now - m.received_at).total_seconds() * 1000),
            recipients=recipients,
            verdicts=m.verdicts or {},
            action=notifications.action_object(kind, params, message_id=m.id),
        )

    def _notification(
        self,
        run: _Run,
        kind: str,
        params: dict[str, Any],
        recipients: list[str],
        *,
        content: bytes | None = None,
        encoding: str = "UTF-8",
    ) -> str:
        receipt = self._receipt(run, kind, params, recipients)
        chosen: Literal["UTF-8", "Base64"] = "Base64" if encoding == "Base64" else "UTF-8"
        return notifications.received_notification(receipt, self._mail(run), content, chosen)

    async def _notify(self, run: _Run, kind: str, params: dict[str, Any], recipients: list[str]) -> None:
        """The notification an action with a TopicArn sends (without the message's content)."""
        if params.get("TopicArn"):
            await self._publish(run, params["TopicArn"], self._notification(run, kind, params, recipients))

    async def _publish(self, run: _Run, topic_arn: str, body: str) -> None:
        try:
            await self.publish_sns(run.due.account_id, topic_arn, body, notifications.SNS_SUBJECT)
        except Exception as exc:
            raise _action_failed(exc) from exc

    async def _bounce_back(
        self, run: _Run, recipients: list[str], code: int, status: str, text: str, *, sender: str = ""
    ) -> None:
        """An RFC 3464 DSN to the message's sender, through Sesame's own queue; never for a bounce."""
        m = run.message
        if not m.mail_from:
            return  # RFC 5321 §4.5.5: nothing goes back to the null reverse-path
        sender = sender or f"MAILER-DAEMON@{self.reporting_mta}"
        dsn = build_dsn(
            reporting_mta=self.reporting_mta,
            sender=sender,
            to=m.mail_from,
            original=m.body,
            recipients=[
                RecipientDsn(
                    final_recipient=r,
                    action="failed",
                    status=status,
                    diagnostic_code=f"smtp; {code} {status} {text}",
                )
                for r in recipients
            ],  # fmt: skip
            explanation=text,
            arrival_date=m.received_at,
        )
        out = Outgoing(
            operation="ReceiptBounce",
            from_address=sender,
            envelope_from="",
            recipients=[m.mail_from],
            body=dsn,
            subject="Delivery Status Notification (Failure)",
            # As SendRawEmail's: /_aws/ses shows the DSN itself.
            summary={"RawData": dsn.decode("utf-8", "replace"), "Destinations": [m.mail_from]},
        )
        await self.send_system(run.due.account_id, run.due.region, out)


class _Stopped(Exception):
    """A receipt stops at an action that failed: where, and why."""

    def __init__(self, rule: int, action: int, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.rule, self.action, self.reason, self.retryable = rule, action, reason, retryable


def backoff(attempts: int) -> dt.timedelta:
    """30 s, doubling, at most 15 minutes: about twenty tries in SES's four hours."""
    return dt.timedelta(seconds=min(900, 30 * 2 ** max(0, attempts - 1)))
