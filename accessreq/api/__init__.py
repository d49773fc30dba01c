"""The pipeline API under /api/v1/."""
