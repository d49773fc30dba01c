"""Runbooks and live diagrams: the portal's own documentation, kept next to what it documents."""
