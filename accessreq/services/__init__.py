"""State changes of the access domain, one function per change (see DESIGN.md)."""
