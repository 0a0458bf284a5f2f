"""Receiving mail: rule sets, verdicts, receipt actions, feedback."""
