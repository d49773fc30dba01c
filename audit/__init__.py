"""The audit ledger: one writer (``audit.services.record``), append-only in the database."""
