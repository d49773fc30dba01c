"""Anchors: copies of each signed checkpoint kept outside the database.

A database administrator can delete events *and* the checkpoints that cover them; only a copy of
the checkpoint held elsewhere shows that the ledger once was longer. Two kinds:

- the anchor file (``AUDIT_ANCHOR_FILE``): one JSON line per checkpoint, appended and fsynced while
  the checkpoint is signed, before its transaction commits, so no checkpoint exists without it;
- the anchor webhook (``AUDIT_ANCHOR_URL``): each checkpoint POSTed as JSON by a retried task. A
  receiver that answers GET on the same URL with the checkpoints it holds (a JSON array, an object
  with a ``checkpoints`` array, or JSON Lines) gives ``audit verify`` its receipts to check.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from audit.canonical import format_time
from audit.models import Checkpoint

_RECEIPTS_MAX_BYTES = 64 * 1024 * 1024


class AnchorError(Exception):
    """An anchor could not be written or read; the message names the setting and the place."""


def anchor_line(checkpoint: Checkpoint) -> str:
    return json.dumps(
        {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "signed_at": format_time(checkpoint.signed_at),
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def append_to_file(checkpoint: Checkpoint, path: Path) -> None:
    """Append the checkpoint's line and fsync it; raise ``AnchorError`` if that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        with path.open("a", encoding="utf-8") as handle:
            handle.write(anchor_line(checkpoint) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if created:  # the new directory entry must survive a crash too
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    except OSError as exc:
        raise AnchorError(
            f"AUDIT_ANCHOR_FILE {path} could not be written ({exc.strerror or exc}); "
            "the checkpoint was not signed."
        ) from exc


def post_to_url(checkpoint: Checkpoint, url: str) -> dict[str, Any]:
    """POST the checkpoint to the anchor webhook; returns the receiver's JSON answer, if any."""
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL checked at start-up
        url,
        data=anchor_line(checkpoint).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "Gatehouse-anchor/1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body = response.read(64 * 1024)
        answer: dict[str, Any] = {"status": response.status}
    try:
        receipt = json.loads(body) if body else None
    except ValueError:
        receipt = None
    if isinstance(receipt, dict):
        answer["receipt"] = {k: str(v)[:200] for k, v in list(receipt.items())[:10]}
    return answer


def _parse_lines(text: str, source: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None  # JSON Lines whose first line is an object: parsed below
        if isinstance(parsed, dict) and isinstance(parsed.get("checkpoints"), list):
            parsed = parsed["checkpoints"]
        if isinstance(parsed, list):
            return [_checked(item, source, n) for n, item in enumerate(parsed, 1)]
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(_checked(json.loads(line), source, number))
        except ValueError as exc:
            raise AnchorError(f"{source} line {number} is not JSON: {exc}") from None
    return entries


def _checked(item: Any, source: str, number: int) -> dict[str, Any]:
    if not (
        isinstance(item, dict)
        and isinstance(item.get("tree_size"), int)
        and isinstance(item.get("root_hash"), str)
    ):
        raise AnchorError(f"{source} entry {number} is not a checkpoint (tree_size, root_hash).")
    return item


def read_file(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnchorError(f"AUDIT_ANCHOR_FILE {path} could not be read: {exc}") from exc
    return _parse_lines(text, f"AUDIT_ANCHOR_FILE {path}")


def read_url(url: str) -> list[dict[str, Any]] | None:
    """The receiver's receipts, or None when it does not serve them (any non-2xx answer)."""
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL checked at start-up
        url, headers={"Accept": "application/json", "User-Agent": "Gatehouse-verify/1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read(_RECEIPTS_MAX_BYTES)
    except urllib.error.HTTPError:
        return None
    except OSError as exc:
        raise AnchorError(f"AUDIT_ANCHOR_URL could not be reached to read receipts: {exc}") from exc
    return _parse_lines(body.decode("utf-8", "replace"), "AUDIT_ANCHOR_URL receipts")


@dataclass
class AnchorReading:
    """What one configured anchor holds, as read by ``audit verify``."""

    name: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # why it holds nothing we could check, if so
    error: str = ""


def configured() -> list[str]:
    names = []
    if settings.AUDIT_ANCHOR_FILE:
        names.append(f"file {settings.AUDIT_ANCHOR_FILE}")
    if settings.AUDIT_ANCHOR_URL:
        names.append("webhook AUDIT_ANCHOR_URL")
    return names


def read_all() -> list[AnchorReading]:
    """Read every configured anchor; unreadable ones come back with ``error`` set."""
    readings = []
    if settings.AUDIT_ANCHOR_FILE:
        reading = AnchorReading(name=f"file {settings.AUDIT_ANCHOR_FILE}")
        try:
            reading.entries = read_file(Path(settings.AUDIT_ANCHOR_FILE))
        except AnchorError as exc:
            reading.error = str(exc)
        readings.append(reading)
    if settings.AUDIT_ANCHOR_URL:
        reading = AnchorReading(name="webhook AUDIT_ANCHOR_URL")
        try:
            receipts = read_url(settings.AUDIT_ANCHOR_URL)
        except AnchorError as exc:
            reading.error = str(exc)
        else:
            if receipts is None:
                reading.note = "the receiver returns no receipts (GET not served)"
            else:
                reading.entries = receipts
        readings.append(reading)
    return readings
