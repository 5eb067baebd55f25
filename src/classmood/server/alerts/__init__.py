"""Alerts that last: the session's alert rule, evaluated by the server, each firing stored and announced."""
