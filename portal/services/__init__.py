"""State changes owned by the portal app: second factors and people."""
