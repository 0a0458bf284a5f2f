"""SES events: the records SES publishes, the outbox, and the publishers per destination kind."""
