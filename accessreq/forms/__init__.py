"""Forms of the access pages, one module per area."""

from accessreq.forms.access import ExtendForm, ManagedFilterForm, RevokeForm
from accessreq.forms.approvals import BulkApproveForm, DecideForm, DelegationForm
from accessreq.forms.breakglass import BreakGlassForm, BreakGlassReviewForm
from accessreq.forms.catalog import CatalogFilterForm
from accessreq.forms.provisioning import TaskConfirmForm
from accessreq.forms.requests import AccessRequestForm

__all__ = [
    "AccessRequestForm",
    "BreakGlassForm",
    "BreakGlassReviewForm",
    "BulkApproveForm",
    "CatalogFilterForm",
    "DecideForm",
    "DelegationForm",
    "ExtendForm",
    "ManagedFilterForm",
    "RevokeForm",
    "TaskConfirmForm",
]
