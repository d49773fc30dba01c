"""Auditor reports, the dashboard and metrics."""
