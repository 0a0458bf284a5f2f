"""The delivery engine: queue, routing, SMTP client, outcomes."""
