"""The root of Sesame's exception tree.

    SesameError
    ├── ConfigError                  bad settings (file, env, flags)
    ├── StorageError                 the database refused or is unreachable
    ├── DomainError                  an SES rule refused a request, in SES's words; providers/errors.py
    │   ├── NotFound                 gives each subclass the error code of each API (v1, v2)
    │   ├── AlreadyExists
    │   ├── InvalidRequest
    │   └── LimitExceeded
    └── ServiceError                 (awsapi.errors) an error in the AWS protocol's own terms;
        ├── one class per error shape of each botocore model (MessageRejected, NotFoundException, …)
        └── the common AWS errors no model lists (ValidationError, InvalidAction, SignatureDoesNotMatch, …)

SMTP replies (SmtpReply) and delivery outcomes join this tree in their own modules.
"""


class SesameError(Exception):
    """Anything Sesame raises on purpose."""


class ConfigError(SesameError):
    """The settings are wrong; the message says which one and why."""


class StorageError(SesameError):
    """The database could not do what was asked."""


class DomainError(SesameError):
    """An SES rule refused a request. Domain modules raise subclasses named for what went wrong
    (``ConfigurationSetNotFound``); ``providers.errors.translate`` turns each into the error code the
    calling API uses (v1 ``ConfigurationSetDoesNotExist``, v2 ``NotFoundException``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The named resource does not exist."""


class AlreadyExists(DomainError):
    """A resource of that name exists already."""


class InvalidRequest(DomainError):
    """The request breaks one of SES's rules for its values."""


class LimitExceeded(DomainError):
    """One more would pass one of SES's limits."""
