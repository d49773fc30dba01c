"""Two beat processes running at once (a second scheduler started by mistake, or a failover that
overlapped) double nothing (issue 15, point 7): every periodic task of CELERY_BEAT_SCHEDULE runs
twice at the same moment, in two threads with their own database connections, against a world in
which the jobs have work to do; each effect is recorded once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings

from accessreq.models import ApproverRule, Grant, Notification
from audit.models import AuditEvent
from portal.celery import app
from portal.models import User
from tests.accessreq.workflow_helpers import (
    age_request,
    direct_grant,
    lapse,
    make_entitlement,
    make_policy,
    run_together,
    submit,
)
from tests.factories import UserFactory

# Effects that must happen once per target however many schedulers run.
ONCE = {
    "grant.expired",
    "request.timed_out",
    "request.escalated",
    "person.inactive",
    "audit.checkpoint.signed",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("signing_key_file")
def test_every_beat_task_run_twice_at_once_does_its_work_once(
    requester, manager, owner, security_admin
) -> None:
    for _ in range(3):  # access past its end that the expiry job has not caught up with
        lapse(direct_grant(requester, make_entitlement()))
    policy = make_policy("Owner decides", (ApproverRule.ENTITLEMENT_OWNER, 1, False))
    stale = submit(requester, make_entitlement(policy=policy, owners=[owner]))
    age_request(stale, timedelta(days=8))  # past its timeout
    waiting = submit(manager, make_entitlement(policy=policy, owners=[owner]))
    age_request(waiting, timedelta(hours=49))  # due for escalation, not yet timed out
    gone = UserFactory(display_name="Gone Quiet", manager=manager)
    User.objects.filter(pk=gone.pk).update(last_login=gone.date_joined - timedelta(days=200))

    app.loader.import_default_modules()  # what a worker does at start: register every task
    tasks = sorted({str(entry["task"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()})
    failures = []
    for name in tasks:
        task = app.tasks[name]
        outcomes = run_together([task, task])
        failures += [f"{name}: {o.error!r}" for o in outcomes if o.error is not None]

    assert failures == []
    counts = Counter(
        AuditEvent.objects.filter(action__in=ONCE).values_list("action", "target_type", "target_id")
    )
    doubled = {key: n for key, n in counts.items() if n > 1 and key[0] != "audit.checkpoint.signed"}
    assert doubled == {}
    actions = Counter(action for action, _, _ in counts.elements())
    assert actions["grant.expired"] == 3
    assert actions["request.timed_out"] == 1
    assert actions["request.escalated"] == 1
    assert actions["person.inactive"] == 1
    assert all(g.state == "expired" for g in Grant.objects.filter(beneficiary=requester))
    # Each email once: the escalation and the flagged person's notice to their manager.
    subjects = Counter(Notification.objects.values_list("recipient", "subject"))
    assert [key for key, n in subjects.items() if n > 1] == []
