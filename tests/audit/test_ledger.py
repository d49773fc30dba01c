"""The chain, checkpoints, keys, anchoring and `manage.py audit verify` against real tampering."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit import ledger, merkle, signing
from audit.canonical import GENESIS, canonical_bytes, event_payload
from audit.checkpoints import checkpoint_sign
from audit.db import remove_append_only
from audit.models import AuditEvent, Checkpoint, SigningKey
from audit.services import record


@pytest.fixture
def events(requester, signing_key_file) -> list[AuditEvent]:
    return [
        record(actor=requester, action="user.changed", target=requester, data={"n": n, "é": "ü"})
        for n in range(12)
    ]


def _verify() -> tuple[bool, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit", "verify", stdout=out, stderr=err)
    except CommandError as exc:
        return False, f"{err.getvalue()}\n{exc}"
    return True, out.getvalue()


def _sql(statement: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@pytest.mark.django_db
def test_events_form_a_gapless_chain(events) -> None:
    stored = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in stored] == list(range(1, 13))
    assert stored[0].prev_hash == GENESIS
    for before, after in zip(stored, stored[1:], strict=False):
        assert after.prev_hash == before.leaf_hash
    for event in stored:  # what reads back hashes to what was stored
        assert merkle.leaf_hash(canonical_bytes(event_payload(event))).hex() == event.leaf_hash
    assert b'"\xc3\xa9":"\xc3\xbc"' in canonical_bytes(event_payload(stored[0]))  # raw UTF-8


@pytest.mark.django_db
def test_rolled_back_change_leaves_no_event_and_no_gap(requester, signing_key_file) -> None:
    record(actor=requester, action="user.changed", target=requester)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=requester, action="user.changed", target=requester)
        raise RuntimeError("the change failed")
    third = record(actor=requester, action="user.changed", target=requester)
    assert third.sequence == 2
    assert _verify()[0]


@pytest.mark.django_db
def test_checkpoint_signs_the_root_and_is_idempotent(events, signing_key_file) -> None:
    checkpoint = checkpoint_sign(actor=None)
    # The checkpoint covers the 12 events and its own audit.checkpoint.signed event (the 13th),
    # so the signing event is never left in the unsigned tail.
    assert checkpoint is not None and checkpoint.tree_size == 13
    signed = AuditEvent.objects.get(sequence=13)
    assert signed.action == "audit.checkpoint.signed"
    assert signed.data["tree_size"] == 13
    leaves = [bytes.fromhex(e.leaf_hash) for e in [*events, signed]]
    assert checkpoint.root_hash == merkle.root_of(leaves).hex()
    key = SigningKey.objects.get(key_id=checkpoint.key_id)
    assert signing.verify_signature(
        key.public_key, checkpoint.signature, ledger.checkpoint_message(checkpoint)
    )
    # Nothing new since: signing again writes nothing, so an idle ledger stays idle.
    assert checkpoint_sign(actor=None) is None
    assert AuditEvent.objects.count() == 13
    record(actor=None, action="user.changed")
    again = checkpoint_sign(actor=None)
    assert again is not None and again.tree_size == 15
    assert again.root_hash == ledger.root_at(15).hex()  # the cached frontier agrees


@pytest.mark.django_db
def test_inclusion_and_consistency_proofs_from_the_database(events, signing_key_file) -> None:
    first = checkpoint_sign(actor=None)
    record(actor=None, action="user.changed", data={"later": True})
    second = checkpoint_sign(actor=None)
    assert first and second
    for sequence in (1, 7, 12):
        proof = ledger.inclusion_proof(sequence, first.tree_size)
        leaf = bytes.fromhex(AuditEvent.objects.get(sequence=sequence).leaf_hash)
        assert merkle.verify_inclusion(
            sequence - 1, first.tree_size, leaf, proof, bytes.fromhex(first.root_hash)
        )
    proof = ledger.consistency_proof(first.tree_size, second.tree_size)
    assert merkle.verify_consistency(
        first.tree_size,
        second.tree_size,
        bytes.fromhex(first.root_hash),
        bytes.fromhex(second.root_hash),
        proof,
    )


@pytest.mark.django_db
def test_verify_passes_on_an_untouched_ledger(events) -> None:
    checkpoint_sign(actor=None)
    ok, output = _verify()
    assert ok, output
    assert "13 events and 1 checkpoints" in output


@pytest.mark.django_db
def test_edited_event_is_named(events) -> None:
    checkpoint_sign(actor=None)
    remove_append_only(connection)
    _sql("UPDATE audit_auditevent SET actor_name = 'someone else' WHERE sequence = 5")
    ok, output = _verify()
    assert not ok
    assert "first bad sequence 5" in output
    assert "sequence 5: its content does not match its hash" in output
    alert = AuditEvent.objects.get(action="alert.ledger.verification_failed")
    assert alert.data["first_bad_sequence"] == 5


@pytest.mark.django_db
def test_edit_with_recomputed_hashes_is_caught_by_the_checkpoint(events) -> None:
    checkpoint_sign(actor=None)
    remove_append_only(connection)
    # A careful forger rewrites event 5 and every hash after it, so the chain looks intact.
    rows = list(AuditEvent.objects.order_by("sequence"))
    rows[4].actor_name = "forged"
    prev = rows[3].leaf_hash
    for row in rows[4:]:
        row.prev_hash = prev
        row.leaf_hash = merkle.leaf_hash(canonical_bytes(event_payload(row))).hex()
        _sql(
            "UPDATE audit_auditevent SET actor_name=%s, prev_hash=%s, leaf_hash=%s WHERE id=%s",
            [row.actor_name, row.prev_hash, row.leaf_hash, row.pk],
        )
        prev = row.leaf_hash
    ok, output = _verify()
    assert not ok
    assert "do not hash to its signed root" in output
    assert "first bad sequence 13" in output  # the checkpoint covering the forgery


@pytest.mark.django_db
def test_deleted_middle_event_is_named(events) -> None:
    remove_append_only(connection)
    _sql("DELETE FROM audit_auditevent WHERE sequence = 7")
    ok, output = _verify()
    assert not ok
    assert "first bad sequence 7" in output
    assert "sequence 7: missing" in output


@pytest.mark.django_db
def test_swapped_events_are_named(events) -> None:
    remove_append_only(connection)
    _sql("UPDATE audit_auditevent SET sequence = -1 WHERE sequence = 3")
    _sql("UPDATE audit_auditevent SET sequence = 3 WHERE sequence = 4")
    _sql("UPDATE audit_auditevent SET sequence = 4 WHERE sequence = -1")
    ok, output = _verify()
    assert not ok
    assert "first bad sequence 3" in output


@pytest.mark.django_db
def test_inserted_event_is_named(events) -> None:
    remove_append_only(connection)
    _sql("UPDATE audit_auditevent SET sequence = sequence + 1000 WHERE sequence >= 6")
    _sql("UPDATE audit_auditevent SET sequence = sequence - 999 WHERE sequence >= 1006")
    forged = AuditEvent.objects.get(sequence=1)
    _sql(
        "INSERT INTO audit_auditevent (sequence, prev_hash, leaf_hash, occurred_at, actor_id,"
        " actor_name, actor_kind, action, target_type, target_id, target_repr, data, user_agent,"
        " request_id, session_hash, mfa_method, code_version, deployment, pipeline)"
        " SELECT 6, prev_hash, leaf_hash, occurred_at, actor_id, 'intruder', actor_kind, action,"
        " target_type, target_id, target_repr, data, user_agent, request_id, session_hash,"
        " mfa_method, code_version, deployment, pipeline FROM audit_auditevent WHERE id = %s",
        [forged.pk],
    )
    ok, output = _verify()
    assert not ok
    assert "first bad sequence 6" in output


@pytest.mark.django_db
def test_truncated_tail_is_detected_against_the_last_checkpoint(events) -> None:
    checkpoint_sign(actor=None)
    remove_append_only(connection)
    _sql("DELETE FROM audit_auditevent WHERE sequence >= 10")
    ok, output = _verify()
    assert not ok
    assert "the tail was cut off" in output
    assert "first bad sequence 10" in output


@pytest.mark.django_db
def test_checkpoint_table_is_append_only(events) -> None:
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        Checkpoint.objects.filter(pk=checkpoint.pk).update(root_hash="0" * 64)
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        Checkpoint.objects.filter(pk=checkpoint.pk).delete()


@pytest.mark.django_db
def test_forged_checkpoint_signature_is_reported(events) -> None:
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    remove_append_only(connection)
    _sql("UPDATE audit_checkpoint SET signature = %s", ["00" * 64])
    ok, output = _verify()
    assert not ok
    assert "signature does not verify" in output


@pytest.mark.django_db
def test_rotation_keeps_old_keys_published_and_verifiable(client, events, signing_key_file) -> None:
    first = checkpoint_sign(actor=None)
    out = io.StringIO()
    call_command("audit", "rotate-key", stdout=out)
    assert "New signing key" in out.getvalue()
    second = Checkpoint.objects.latest()
    assert first is not None and second.key_id != first.key_id
    published = client.get("/audit/keys").json()
    ids = {k["key_id"]: k for k in published["keys"]}
    assert published["current_key_id"] == second.key_id
    assert ids[first.key_id]["retired_at"] is not None
    assert ids[second.key_id]["retired_at"] is None
    assert _verify()[0]


@pytest.mark.django_db
def test_event_times_never_go_backwards_even_if_the_clock_does(
    requester, signing_key_file, monkeypatch
) -> None:
    from datetime import UTC, datetime

    from tests.audit.clock import step_database_clock

    first = record(actor=requester, action="user.changed", target=requester)
    step_database_clock(monkeypatch, [datetime(2001, 1, 1, tzinfo=UTC)])  # the clock steps back
    second = record(actor=requester, action="user.changed", target=requester)
    assert second.occurred_at == first.occurred_at
    assert _verify()[0]
