"""Ledger benchmarks: plain scripts run by hand, never imported by the test suite."""
