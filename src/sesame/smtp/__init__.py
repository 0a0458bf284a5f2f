"""The SES SMTP interface: submission with SES-derived credentials (the listeners come with issue 8)."""
