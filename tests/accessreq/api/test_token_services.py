"""Token services: who may mint, lifetimes, rotation, revocation and expiry reminders."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import ApiToken
from accessreq.services.tokens import (
    token_digest,
    token_expiry_reminders_send,
    token_issue,
    token_revoke,
    token_rotate,
)
from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.api.conftest import Pipeline, api_get, minted
from tests.accessreq.workflow_helpers import FRESH, STALE


def test_minted_token_is_stored_as_a_digest_and_audited_without_it(pipeline: Pipeline) -> None:
    issued = minted(pipeline, lifetime_days=10)

    token = ApiToken.objects.get()
    assert token.digest == token_digest(issued.secret)
    assert issued.secret.startswith("gtm_") and token.prefix == issued.secret[:12]
    assert token.expires_at - token.created_at == timedelta(days=10)
    event = AuditEvent.objects.get(sequence=issued.audit_event_id)
    assert event.action == "api.token.minted" and event.actor_id == pipeline.owner.pk
    dumped = json.dumps(event.data)
    assert issued.secret not in dumped and token.digest not in dumped


def test_lifetime_is_capped_by_the_setting(pipeline: Pipeline, settings: Any) -> None:
    settings.API_MINTED_TOKEN_MAX_DAYS = 7
    with pytest.raises(WorkflowError, match="between 1 and 7 days"):
        minted(pipeline, lifetime_days=8)
    token = minted(pipeline).token  # the default is the maximum
    assert token.expires_at - token.created_at == timedelta(days=7)


def test_only_owners_mint(pipeline: Pipeline, outsider: User, security_admin: User) -> None:
    for person in (outsider, security_admin):
        with pytest.raises(NotAllowed):
            token_issue(
                actor=person, service_account=pipeline.account, kind="minted", name="x", mfa=FRESH
            )
    assert not ApiToken.objects.exists()


def test_no_tokens_for_people(owner: User) -> None:
    with pytest.raises(WorkflowError):
        token_issue(actor=owner, service_account=owner, kind="minted", name="x", mfa=FRESH)


def test_rotation_replaces_the_secret_and_revokes_the_old_one(pipeline: Pipeline) -> None:
    old = minted(pipeline, lifetime_days=20)
    new = token_rotate(actor=pipeline.owner, token_id=old.token.pk, mfa=FRESH)

    assert new.secret != old.secret
    assert new.token.name == old.token.name
    assert new.token.expires_at - new.token.created_at == timedelta(days=20)
    assert new.token.rotated_from_id == old.token.pk
    assert api_get(Client(), "/api/v1/me", token=old.secret).json()["error"]["code"] == (
        "token_revoked"
    )
    assert api_get(Client(), "/api/v1/me", token=new.secret).status_code == 200
    event = AuditEvent.objects.get(sequence=new.audit_event_id)
    assert event.action == "api.token.rotated" and event.data["old_token_id"] == old.token.pk
    with pytest.raises(WorkflowError):
        token_rotate(actor=pipeline.owner, token_id=old.token.pk, mfa=FRESH)


def test_outsiders_cannot_revoke_or_rotate(pipeline: Pipeline, outsider: User) -> None:
    issued = minted(pipeline)
    with pytest.raises(NotAllowed):
        token_revoke(actor=outsider, token_id=issued.token.pk)
    with pytest.raises(NotAllowed):
        token_rotate(actor=outsider, token_id=issued.token.pk, mfa=FRESH)


def test_security_admins_revoke_any_token(pipeline: Pipeline, security_admin: User) -> None:
    issued = minted(pipeline)
    token_revoke(actor=security_admin, token_id=issued.token.pk, reason="incident 42")
    event = AuditEvent.objects.filter(action="api.token.revoked").get()
    assert event.actor_id == security_admin.pk and event.data["reason"] == "incident 42"
    with pytest.raises(WorkflowError, match="already revoked"):
        token_revoke(actor=security_admin, token_id=issued.token.pk)


def _expiring_in(issued: Any, left: timedelta) -> None:
    created = issued.token.created_at - timedelta(days=30) + left
    ApiToken.objects.filter(pk=issued.token.pk).update(
        created_at=created, expires_at=created + timedelta(days=30)
    )


def test_owners_are_reminded_before_expiry_once_per_lead_time(
    pipeline: Pipeline, django_capture_on_commit_callbacks: Any
) -> None:
    issued = minted(pipeline)
    with django_capture_on_commit_callbacks(execute=True):
        assert token_expiry_reminders_send() == 0
        _expiring_in(issued, timedelta(days=5))
        assert token_expiry_reminders_send() == 1
        assert token_expiry_reminders_send() == 0
        _expiring_in(issued, timedelta(hours=20))
        assert token_expiry_reminders_send() == 1
        assert token_expiry_reminders_send() == 0

    assert [m.to for m in mail.outbox] == [[pipeline.owner.email], [pipeline.owner.email]]
    assert "nightly-deploy" in mail.outbox[0].body
    assert issued.secret not in mail.outbox[0].body
    assert f"/service-accounts/{pipeline.account.pk}/" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="api.token.expiry_reminded").count() == 2


def test_revoked_tokens_get_no_reminder(pipeline: Pipeline) -> None:
    issued = minted(pipeline)
    _expiring_in(issued, timedelta(days=2))
    token_revoke(actor=pipeline.owner, token_id=issued.token.pk)
    assert token_expiry_reminders_send() == 0


def test_minting_and_rotating_need_a_fresh_second_factor(pipeline: Pipeline) -> None:
    with pytest.raises(StepUpRequired, match="fresh second factor"):
        token_issue(
            actor=pipeline.owner,
            service_account=pipeline.account,
            kind="minted",
            name="nightly",
            mfa=STALE,
        )
    assert not ApiToken.objects.exists()
    issued = minted(pipeline)
    with pytest.raises(StepUpRequired, match="fresh second factor"):
        token_rotate(actor=pipeline.owner, token_id=issued.token.pk, mfa=STALE)
    assert ApiToken.objects.get().revoked_at is None
    assert not AuditEvent.objects.filter(action="api.token.rotated").exists()


@pytest.mark.django_db(transaction=True)
def test_revoking_and_rotating_one_token_at_once_has_one_winner(pipeline: Pipeline) -> None:
    """Four threads with their own connections revoke and rotate the same token together: the
    row lock lets one through; the others get a WorkflowError, and nothing is done twice."""
    from functools import partial

    from tests.accessreq.workflow_helpers import run_together

    issued = minted(pipeline)
    revoke = partial(token_revoke, actor=pipeline.owner, token_id=issued.token.pk, reason="leak")
    rotate = partial(token_rotate, actor=pipeline.owner, token_id=issued.token.pk, mfa=FRESH)
    outcomes = run_together([revoke, rotate, rotate, revoke])

    unexpected = [o.error for o in outcomes if o.error and not isinstance(o.error, WorkflowError)]
    assert not unexpected, unexpected
    winners = [o for o in outcomes if o.error is None]
    assert len(winners) == 1
    old = ApiToken.objects.get(pk=issued.token.pk)
    assert old.revoked_at is not None
    actions = list(
        AuditEvent.objects.filter(
            action__in=["api.token.revoked", "api.token.rotated"]
        ).values_list("action", flat=True)
    )
    assert len(actions) == 1
    live = ApiToken.objects.filter(revoked_at__isnull=True)
    if actions == ["api.token.rotated"]:
        assert old.revoke_reason == "rotated" and live.count() == 1
        assert live.get().rotated_from_id == old.pk
    else:
        assert old.revoke_reason == "leak" and not live.exists()
    assert api_get(Client(), "/api/v1/me", token=issued.secret).status_code == 401
