"""Receiving mail: rule sets, verdicts, actions, feedback."""
