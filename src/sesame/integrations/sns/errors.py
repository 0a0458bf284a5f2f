"""What Sesame's SNS refuses, as typed errors; ``providers/sns.py`` turns each into SNS's error shape
(NotFound, InvalidParameter, AuthorizationError) in one place."""

from __future__ import annotations

from sesame.errors import SesameError


class SnsError(SesameError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(SnsError):
    """No such topic or subscription (SNS: NotFound, 404)."""


class TopicNotFound(NotFound):
    """No topic of that ARN exists in Sesame. ``Sns.publish`` raises it for an ARN Sesame does not hold,
    which the caller may then try on an external SNS endpoint."""

    def __init__(self, topic_arn: str) -> None:
        super().__init__("Topic does not exist")
        self.topic_arn = topic_arn


class InvalidParameter(SnsError):
    """A parameter SNS would refuse (SNS: InvalidParameter, 400)."""


class AuthorizationError(SnsError):
    """The caller may not act on the resource: Sesame allows an account its own topics only (SNS:
    AuthorizationError, 403)."""
