"""Forms of the access pages, one module per area."""

from accessreq.forms.access import ExtendForm, ManagedFilterForm, RevokeForm
from accessreq.forms.approvals import BulkApproveForm, DecideForm, DelegationForm
from accessreq.forms.breakglass import BreakGlassForm, BreakGlassReviewForm
from accessreq.forms.campaigns import CancelForm, CloseEarlyForm, LaunchForm
from accessreq.forms.catalog import CatalogFilterForm
from accessreq.forms.provisioning import TaskConfirmForm
from accessreq.forms.requests import AccessRequestForm
from accessreq.forms.reviews import (
    BulkCertifyForm,
    ReassignForm,
    ReviewDecideForm,
    ReviewFilterForm,
)
from accessreq.forms.service_accounts import (
    IssuerForm,
    MintTokenForm,
    OwnersForm,
    RevokeTokenForm,
    ServiceAccountForm,
    TrustRuleForm,
)

__all__ = [
    "IssuerForm",
    "MintTokenForm",
    "OwnersForm",
    "ServiceAccountForm",
    "RevokeTokenForm",
    "TrustRuleForm",
    "AccessRequestForm",
    "BreakGlassForm",
    "BreakGlassReviewForm",
    "BulkApproveForm",
    "BulkCertifyForm",
    "CancelForm",
    "CatalogFilterForm",
    "CloseEarlyForm",
    "DecideForm",
    "DelegationForm",
    "ExtendForm",
    "LaunchForm",
    "ManagedFilterForm",
    "ReassignForm",
    "ReviewDecideForm",
    "ReviewFilterForm",
    "RevokeForm",
    "TaskConfirmForm",
]
