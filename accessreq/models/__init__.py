"""The access domain: catalog, policies, requests, grants, delegation, provisioning, pipelines."""

from accessreq.models.campaigns import (
    Cadence,
    Campaign,
    CampaignTemplate,
    DeadlineAction,
    ReviewerRule,
    ReviewItem,
)
from accessreq.models.catalog import (
    TIER_ORDER,
    Entitlement,
    EntitlementQuerySet,
    Environment,
    RiskTier,
    Scope,
    System,
)
from accessreq.models.deployments import (
    DeploymentApproval,
    DeploymentAssignment,
    DeploymentDecision,
)
from accessreq.models.grants import (
    LIVE_GRANT_STATES,
    Connector,
    ConnectorKind,
    Grant,
    GrantState,
    Notification,
    Operation,
    ProvisioningTask,
    TaskStatus,
)
from accessreq.models.pipelines import (
    ApiToken,
    ClaimFormat,
    TokenKind,
    TrustedIssuer,
    TrustRule,
)
from accessreq.models.policy import (
    ApprovalPolicy,
    ApproverRule,
    BirthrightAccess,
    ConflictRule,
    PolicyStage,
)
from accessreq.models.reports import ExportState, ReportExport
from accessreq.models.requests import (
    AccessRequest,
    Approval,
    AssignmentReason,
    Decision,
    Delegation,
    RequestKind,
    StageAssignment,
)
from accessreq.states import RequestState

__all__ = [
    "BirthrightAccess",
    "ExportState",
    "ReportExport",
    "DeploymentApproval",
    "DeploymentAssignment",
    "DeploymentDecision",
    "ApiToken",
    "ClaimFormat",
    "TokenKind",
    "TrustRule",
    "TrustedIssuer",
    "Cadence",
    "Campaign",
    "CampaignTemplate",
    "DeadlineAction",
    "ReviewItem",
    "ReviewerRule",
    "LIVE_GRANT_STATES",
    "TIER_ORDER",
    "AccessRequest",
    "Approval",
    "ApprovalPolicy",
    "ApproverRule",
    "AssignmentReason",
    "ConflictRule",
    "Connector",
    "ConnectorKind",
    "Decision",
    "Delegation",
    "Entitlement",
    "EntitlementQuerySet",
    "Environment",
    "Grant",
    "GrantState",
    "Notification",
    "Operation",
    "PolicyStage",
    "ProvisioningTask",
    "RequestKind",
    "RequestState",
    "RiskTier",
    "Scope",
    "StageAssignment",
    "System",
    "TaskStatus",
]
