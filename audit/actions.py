"""The registry of audit action codes: every event's action is one of these dotted codes."""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    # Authentication
    "auth.login": "Signed in with a password",
    "auth.login.failed": "A password sign-in failed",
    "auth.logout": "Signed out",
    "auth.session.expired": "A session ended: idle too long or past the longest a sign-in lasts",
    "auth.mfa.enrolled": "Enrolled an authenticator app and received backup codes",
    "auth.mfa.verified": "Verified a TOTP code",
    "auth.mfa.failed": "Entered a wrong, reused or throttled second-factor code",
    "auth.mfa.backup_code_used": "Verified with a one-time backup code",
    "auth.mfa.backup_codes_regenerated": "Replaced their backup codes",
    "auth.mfa.reset": "Had their second factor reset by an administrator",
    "auth.password.reset": "Reset their password from an emailed link",
    "auth.password.changed": "Changed their password",
    "auth.sso.login": "Signed in through an OpenID Connect provider (single sign-on)",
    "auth.sso.refused": "A single sign-on was refused (unknown, unverified or inactive person)",
    "auth.sso.failed": "A single sign-on callback failed (bad state, provider error, bad token)",
    # People
    "user.created": "A person's account was created",
    "user.changed": "A person's account was changed",
    "user.deactivated": "A person's account was deactivated and their sessions ended",
    "user.reactivated": "A person's account was reactivated",
    "person.joined": "A new person joined (created by the directory, single sign-on or the admin)",
    "person.moved": "A person changed team or manager; their access went to a review",
    "person.left": "A person left: requests withdrawn, access revoked, their work handed on",
    "person.returned": "Someone who had left or been deactivated is active again",
    "person.inactive": "A person was flagged for not signing in for too long",
    "person.access_suspended": "A person's access was revoked for not signing in for too long",
    "person.active_again": "A person flagged as inactive signed in again",
    "service_account.created": "A service account was created",
    "service_account.owners_changed": "A service account's owners were changed",
    # Generic admin edits of configuration (catalog, teams, schedules)
    "admin.object.created": "An administrator created a record",
    "admin.object.changed": "An administrator changed a record",
    "admin.object.deleted": "An administrator deleted a record",
    # Access requests
    "request.submitted": "Requested access (or an extension) for themselves or someone else",
    "request.approval_given": "Approved one stage of an access request",
    "request.approved": "An access request passed its last approval stage",
    "request.denied": "Denied an access request",
    "request.withdrawn": "Withdrew a pending access request",
    "request.timed_out": "A pending access request got no decision in time",
    "request.escalated": "A request waiting too long was escalated to the security admins",
    "request.rerouted": "A pending request's stage was asked of other approvers after people moved",
    "request.birthright": "A team's birthright access was granted to a member",
    "request.break_glass": "Took emergency (break-glass) access",
    "request.break_glass_reviewed": "Reviewed a break-glass use after the fact",
    "alert.break_glass.review_overdue": "A break-glass use was not reviewed in time",
    # Grants
    "grant.activated": "Access started",
    "grant.extended": "Access was extended by an approved extension request",
    "grant.expired": "Access ended at its expiry time",
    "grant.revoked": "Access was revoked",
    # Delegation
    "delegation.created": "An approver named a delegate for a period",
    "delegation.cancelled": "An approver ended a delegation early",
    # Provisioning
    "provisioning.confirmed": "A connector (or a person) confirmed a grant was set up or removed",
    "provisioning.attempt_failed": "A connector delivery attempt failed and will be retried",
    "provisioning.retried": "A failed provisioning task was sent again",
    "provisioning.cancelled": "A set-up not yet carried out was cancelled because access ended",
    "alert.provisioning.failed": "A connector failed after all retries; the task needs a person",
    # The ledger itself
    "audit.checkpoint.signed": "A checkpoint (signed tree head) was signed",
    "audit.checkpoint.anchored": "A checkpoint was written outside the database",
    "audit.key.rotated": "The checkpoint-signing key was rotated",
    "audit.exported": "Audit events were exported as an evidence bundle",
    "alert.ledger.verification_failed": "Ledger verification found a problem",
    "alert.ledger.anchor_failed": "A checkpoint could not be anchored outside the database",
    # Recertification campaigns
    "campaign.launched": "A recertification campaign was launched",
    "campaign.opened": "A campaign's review items were all created and reviewers told",
    "campaign.deadline": "A campaign reached its deadline",
    "campaign.closed_early": "A security admin closed a campaign before its deadline",
    "campaign.closed": "A campaign closed after its deadline action was applied",
    "campaign.cancelled": "A campaign was cancelled",
    "review.certified": "A reviewer confirmed that someone still needs their access",
    "review.revoked": "A reviewer revoked someone's access in a campaign",
    "review.reassigned": "A reviewer handed a review item to someone else",
    "review.expired": "A review item was closed by the campaign's deadline action",
    "review.escalated": "Overdue review items were escalated to the reviewer's manager",
    "campaign.evidence_exported": "A campaign's evidence report was viewed or downloaded",
    # Auditor reports
    "report.viewed": "An auditor report was opened in the browser",
    "report.exported": "An auditor report was exported as a signed evidence bundle",
    "report.export_queued": "A large report export was queued for a worker",
    "report.export_failed": "A queued report export could not be built",
    "report.export_requeued": "A report export whose worker stopped was queued again",
    "report.downloaded": "A report export built in the background was downloaded",
    "report.export_deleted": "A report export was deleted after its keeping time",
    # Pipelines: API tokens, CI identity exchange, authorization checks
    "api.token.minted": "An owner minted an API token for a service account",
    "api.token.exchanged": "A CI job exchanged its identity token for a short-lived API token",
    "api.token.exchange_refused": "A CI identity token was refused at the token exchange",
    "api.token.revoked": "An API token was revoked",
    "api.token.flagged": "An API token was flagged: its service account's only owner left",
    "api.token.rotated": "An API token was replaced by a new one and revoked",
    "api.token.refused": "An expired or revoked API token was presented",
    "api.token.expiry_reminded": "A service account's owners were reminded a token expires soon",
    "api.authorize.allowed": "A pipeline's authorization check was allowed",
    "api.authorize.denied": "A pipeline's authorization check was denied",
    "api.issuer.created": "A security admin added a trusted CI issuer",
    "api.issuer.changed": "A security admin changed a trusted CI issuer",
    "api.trust_rule.created": "A trust rule now maps CI jobs to a service account",
    "api.trust_rule.deleted": "A trust rule was removed",
    # Deployment approvals
    "deployment.escalated": "A deployment waiting too long was escalated to the security admins",
    "deployment.rerouted": "A pending deployment was asked of other approvers after one left",
    "deployment.requested": "A pipeline asked for approval to deploy a commit to an environment",
    "deployment.refused": "A deployment approval request was refused (checks or access missing)",
    "deployment.approval_given": "Approved one stage of a deployment",
    "deployment.approved": "A deployment passed its last approval stage",
    "deployment.denied": "Denied a deployment",
    "deployment.expired": "A deployment approval expired undecided or unused",
    "deployment.used": "An authorization check used an approved deployment",
    # Runbooks (docs)
    "runbook.seeded": "A runbook was created from its file in the repository",
    "runbook.updated_from_file": "A runbook not edited in the portal was updated from its new file",
    "runbook.created": "A security admin wrote a new runbook in the portal",
    "runbook.updated": "A security admin edited a runbook in the portal",
    "runbook.reviewed": "A runbook was marked as reviewed",
    "runbook.review_reminded": "A runbook's owner was reminded that it is due for review",
    # SCIM directory provisioning (scim/); people's joins, moves and leaves are person.* events
    "scim.token.minted": "A security admin minted a SCIM token for a directory",
    "scim.token.revoked": "A SCIM token was revoked",
    "scim.token.refused": "A revoked SCIM token was presented",
    "scim.user.relinked": "A directory created again a person it had deleted (a rehire)",
    "scim.user.deleted": "A directory deleted a person: they left and are hidden from SCIM",
    "scim.group.created": "A directory created a group (a team), or linked one it had deleted",
    "scim.group.changed": "A directory renamed a group or changed its external id",
    "scim.group.deleted": "A directory deleted a group: its members left the team",
    # Demo data
    "demo.seeded": "Demo data was loaded",
}


class UnknownAction(ValueError):
    """Raised when code tries to record an action that is not in the registry."""


def describe(code: str) -> str:
    try:
        return ACTIONS[code]
    except KeyError:
        raise UnknownAction(f"Audit action {code!r} is not registered in audit.actions.") from None
