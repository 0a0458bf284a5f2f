"""Sesame: a self-hosted email platform that speaks the Amazon SES APIs and delivers the mail."""

__version__ = "0.1.0"
