"""Pages of the access workflow, one module per area."""
