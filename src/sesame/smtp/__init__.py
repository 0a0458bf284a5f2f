"""SMTP servers: submission with SES-derived credentials, and the MX that receives mail."""
