from django.urls import path

from accessreq.views import (
    access,
    approvals,
    breakglass,
    campaigns,
    catalog,
    dashboard,
    deployments,
    provisioning,
    reports,
    requests,
    reviews,
    service_accounts,
)

urlpatterns = [
    path("catalog/", catalog.catalog, name="catalog"),
    # Requesting
    path("catalog/<int:entitlement_id>/request/", requests.request_new, name="request_new"),
    path("requests/", requests.my_requests, name="my_requests"),
    path("requests/<int:request_id>/", requests.request_detail, name="request_detail"),
    path("requests/<int:request_id>/withdraw/", requests.request_withdraw, name="request_withdraw"),
    # Approving
    path("approvals/", approvals.inbox, name="approvals"),
    path("approvals/<int:request_id>/decide/", approvals.decide, name="approval_decide"),
    path("approvals/bulk/", approvals.bulk_approve, name="approvals_bulk"),
    path(
        "approvals/deployments/<int:deployment_id>/decide/",
        deployments.deployment_decide,
        name="deployment_decide",
    ),
    path("approvals/delegation/", approvals.delegation, name="delegation"),
    path(
        "approvals/delegation/<int:delegation_id>/cancel/",
        approvals.delegation_cancel,
        name="delegation_cancel",
    ),
    # Holding
    path("access/", access.my_access, name="my_access"),
    path("access/managed/", access.managed_access, name="managed_access"),
    path("access/<int:grant_id>/", access.grant_detail, name="grant_detail"),
    path("access/<int:grant_id>/revoke/", access.grant_revoke, name="grant_revoke"),
    path("access/<int:grant_id>/extend/", access.grant_extend, name="grant_extend"),
    # Emergencies
    path("break-glass/", breakglass.break_glass, name="break_glass"),
    path(
        "break-glass/<int:request_id>/review/",
        breakglass.break_glass_review,
        name="break_glass_review",
    ),
    # Recertification
    path("reviews/", reviews.my_reviews, name="my_reviews"),
    path("reviews/<int:item_id>/decide/", reviews.review_decide, name="review_decide"),
    path("reviews/<int:item_id>/reassign/", reviews.review_reassign, name="review_reassign"),
    path("reviews/bulk/", reviews.reviews_bulk_certify, name="reviews_bulk"),
    path("campaigns/", campaigns.campaign_list, name="campaigns"),
    path("campaigns/launch/", campaigns.campaign_launch, name="campaign_launch"),
    path("campaigns/<int:campaign_id>/", campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/close/", campaigns.campaign_close, name="campaign_close"),
    path("campaigns/<int:campaign_id>/cancel/", campaigns.campaign_cancel, name="campaign_cancel"),
    path(
        "campaigns/<int:campaign_id>/evidence.<str:fmt>",
        campaigns.campaign_evidence,
        name="campaign_evidence",
    ),
    # The security dashboard and the lists behind its numbers (auditors, security admins)
    path("reports/dashboard/", dashboard.dashboard, name="reports_dashboard"),
    path(
        "reports/dashboard/<slug:kind>/",
        dashboard.dashboard_list,
        name="reports_dashboard_list",
    ),
    # Connectors' manual work
    # Auditor reports
    path("reports/", reports.reports, name="reports"),
    path(
        "reports/exports/<int:export_id>/",
        reports.report_export_status,
        name="report_export_status",
    ),
    path(
        "reports/exports/<int:export_id>/download/",
        reports.report_export_download,
        name="report_export_download",
    ),
    path("reports/<slug:slug>/", reports.report, name="report"),
    path("reports/<slug:slug>/export/", reports.report_export, name="report_export"),
    path("provisioning/", provisioning.task_list, name="provisioning"),
    path(
        "provisioning/<int:task_id>/confirm/",
        provisioning.task_confirm,
        name="provisioning_confirm",
    ),
    path("provisioning/<int:task_id>/retry/", provisioning.task_retry, name="provisioning_retry"),
    # Pipelines: service accounts, their tokens and trust rules, trusted CI issuers
    path("service-accounts/", service_accounts.service_accounts, name="service_accounts"),
    path("service-accounts/issuers/", service_accounts.issuers, name="issuers"),
    path(
        "service-accounts/issuers/<int:issuer_id>/",
        service_accounts.issuer_edit,
        name="issuer_edit",
    ),
    path(
        "service-accounts/<int:account_id>/",
        service_accounts.service_account_detail,
        name="service_account_detail",
    ),
    path(
        "service-accounts/<int:account_id>/tokens/",
        service_accounts.token_mint,
        name="token_mint",
    ),
    path(
        "service-accounts/<int:account_id>/tokens/<int:token_id>/revoke/",
        service_accounts.token_revoke_page,
        name="token_revoke",
    ),
    path(
        "service-accounts/<int:account_id>/tokens/<int:token_id>/rotate/",
        service_accounts.token_rotate_page,
        name="token_rotate",
    ),
    path(
        "service-accounts/<int:account_id>/owners/",
        service_accounts.service_account_owners,
        name="service_account_owners",
    ),
    path(
        "service-accounts/<int:account_id>/trust-rules/",
        service_accounts.trust_rule_add,
        name="trust_rule_add",
    ),
    path(
        "service-accounts/<int:account_id>/trust-rules/<int:rule_id>/delete/",
        service_accounts.trust_rule_remove,
        name="trust_rule_remove",
    ),
]
