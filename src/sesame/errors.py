"""The root of Sesame's exception tree.

    SesameError
    ├── ConfigError                  bad settings (file, env, flags)
    ├── StorageError                 the database refused or is unreachable
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
