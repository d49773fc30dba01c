"""Forms of the access pages, one module per area."""

from accessreq.forms.catalog import CatalogFilterForm

__all__ = ["CatalogFilterForm"]
