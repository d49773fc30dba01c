#!/usr/bin/env python3
"""Offline verifier for Gatehouse evidence bundles (format ``gatehouse-evidence-v1``).

    python verify_bundle.py BUNDLE.zip [--trusted-keys keys.json]

Needs only the Python standard library (3.9 or newer) and the ``cryptography`` package; it never
talks to Gatehouse. It checks, and names the file at fault when a check fails:

1. ``manifest.sig`` is an Ed25519 signature of ``manifest.json`` by a key in ``public_keys.json``
   (and in ``--trusted-keys`` when given: the JSON published at ``/audit/keys``);
2. every file's SHA-256 equals the manifest's, and the ZIP holds nothing the manifest omits;
3. ``checkpoint.json`` is signed, over the exact ``gatehouse-checkpoint-v1`` message bytes;
4. ``leaves.bin`` holds exactly ``tree_size`` leaf hashes whose RFC 6962 root is the signed root;
5. each line of ``events.jsonl`` hashes (SHA-256 of 0x00 || line) to the leaf at its sequence
   number, and its ``prev`` is the leaf before it;
6. each row of ``events.csv`` is the same event as the line of ``events.jsonl`` it stands for.

Exits 0 and prints one line when everything holds; exits 1 listing the problems otherwise.
Streams every file, so memory stays flat however many events the bundle holds.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

FORMAT = "gatehouse-evidence-v1"
CHECKPOINT_FORMAT = "gatehouse-checkpoint-v1"
GENESIS = "0" * 64

MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
EVENTS_JSONL = "events.jsonl"
EVENTS_CSV = "events.csv"
LEAVES = "leaves.bin"
CHECKPOINT = "checkpoint.json"
PUBLIC_KEYS = "public_keys.json"
README = "README.txt"
VERIFIER = "verify_bundle.py"
SIGNED_FILES = (EVENTS_JSONL, EVENTS_CSV, LEAVES, CHECKPOINT, PUBLIC_KEYS, README, VERIFIER)

CSV_HEADER = [
    "sequence",
    "time",
    "actor",
    "kind",
    "action",
    "target type",
    "target id",
    "target repr",
    "ip",
    "data",
]
# A spreadsheet treats a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_HASH_SIZE = 32
_READ_BLOCK = 1 << 16
_MAX_PROBLEMS_PER_FILE = 20
_MAX_SMALL_FILE = 16 * 1024 * 1024
# The data column holds a whole event's JSON, which may exceed csv's 128 KiB default.
_MAX_CSV_FIELD = 2**31 - 1


# --- The format, shared with the exporter ------------------------------------------------------


def neutralise(cell: str) -> str:
    """The CSV cell a spreadsheet shows as text: formula-like values get a leading quote."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def csv_row(event: dict[str, Any]) -> list[str]:
    """The ``events.csv`` row of one canonical event (one ``events.jsonl`` line, parsed)."""
    actor = event.get("actor") or {}
    target = event.get("target") or {}
    data = json.dumps(event.get("data"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    cells = [
        str(event.get("seq")),
        str(event.get("time")),
        str(actor.get("name", "")),
        str(actor.get("kind", "")),
        str(event.get("action")),
        str(target.get("type", "")),
        str(target.get("id", "")),
        str(target.get("repr", "")),
        str(event.get("ip") or ""),
        data,
    ]
    return [neutralise(cell) for cell in cells]


def checkpoint_message(checkpoint: dict[str, Any]) -> bytes:
    """The exact bytes a Gatehouse checkpoint signature covers."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "tree_size": checkpoint["tree_size"],
        "root_hash": checkpoint["root_hash"],
        "signed_at": checkpoint["signed_at"],
        "key_id": checkpoint["key_id"],
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


# --- RFC 6962 hashing (a copy, so this file stands alone) ---------------------------------------


def leaf_hash(leaf_input: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class StreamingRoot:
    """RFC 6962 Merkle tree head over leaf hashes fed one at a time, in O(log n) memory."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        size, digest = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            digest = node_hash(left, digest)
            size *= 2
        self._stack.append((size, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


# --- Checking -----------------------------------------------------------------------------------


class _Problems:
    """Problems found so far, each naming its file; long runs in one file are summarised."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._counts: dict[str, int] = {}

    def add(self, name: str, message: str) -> None:
        count = self._counts.get(name, 0) + 1
        self._counts[name] = count
        if count <= _MAX_PROBLEMS_PER_FILE:
            self.items.append(f"{name}: {message}")

    def failed(self, name: str) -> bool:
        return name in self._counts

    def finish(self) -> list[str]:
        for name, count in self._counts.items():
            if count > _MAX_PROBLEMS_PER_FILE:
                more = count - _MAX_PROBLEMS_PER_FILE
                self.items.append(f"{name}: ... and {more} more problem(s)")
        return self.items


class _Summary:
    def __init__(self) -> None:
        self.events = 0
        self.files = 0
        self.tree_size = 0
        self.root_hash = ""
        self.checkpoint_key = ""
        self.manifest_key = ""
        self.pinned = False


def _read_small(bundle: zipfile.ZipFile, name: str, problems: _Problems) -> bytes | None:
    try:
        info = bundle.getinfo(name)
    except KeyError:
        problems.add(name, "missing from the bundle")
        return None
    if info.file_size > _MAX_SMALL_FILE:
        problems.add(name, f"is {info.file_size} bytes, too large for this kind of file")
        return None
    try:
        with bundle.open(info) as handle:
            return handle.read()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        problems.add(name, f"cannot be read from the ZIP ({exc})")
        return None


def _load_json(raw: bytes | None, name: str, problems: _Problems) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problems.add(name, f"is not valid UTF-8 JSON ({exc})")
        return None


def _public_key(hex_value: Any) -> Any:
    """An Ed25519 public key from 64 hex digits, or None."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(hex_value)))
    except ValueError:
        return None


def _signature_ok(public: Any, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _keys_from(document: Any, name: str, problems: _Problems) -> dict[str, Any]:
    """``{key id: public key}`` from a public-keys document (``/audit/keys`` format)."""
    keys: dict[str, Any] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        problems.add(name, 'has no "keys" list')
        return keys
    for entry in entries:
        if not isinstance(entry, dict):
            problems.add(name, "holds a key entry that is not an object")
            continue
        key_id, hex_value = entry.get("key_id"), entry.get("public_key")
        public = _public_key(hex_value)
        if public is None:
            problems.add(name, f"key {key_id}: public_key is not a 32-byte Ed25519 key in hex")
            continue
        actual_id = hashlib.sha256(bytes.fromhex(str(hex_value))).hexdigest()[:16]
        if actual_id != key_id:
            problems.add(name, f"key {key_id}: its public key has key id {actual_id}")
            continue
        keys[str(key_id)] = public
    return keys


def _hash_member(bundle: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with bundle.open(name) as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _check_files(
    bundle: zipfile.ZipFile, manifest: dict[str, Any], problems: _Problems, summary: _Summary
) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        problems.add(MANIFEST, 'has no "files" table')
        return
    for name in SIGNED_FILES:
        if name not in listed:
            problems.add(MANIFEST, f"does not list {name}")
    present = bundle.namelist()
    for name in sorted({n for n in present if present.count(n) > 1}):
        problems.add(name, "appears more than once in the ZIP")
    for name in present:
        if name not in listed and name not in (MANIFEST, MANIFEST_SIG):
            problems.add(name, "is in the ZIP but not listed in the manifest")
    for name, expected in sorted(listed.items()):
        if name not in present:
            problems.add(name, "is listed in the manifest but missing from the ZIP")
            continue
        try:
            actual, size = _hash_member(bundle, name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            problems.add(name, f"cannot be read from the ZIP ({exc})")
            continue
        want = expected.get("sha256") if isinstance(expected, dict) else None
        if actual != want:
            problems.add(name, f"SHA-256 is {actual} but the manifest says {want}")
        elif isinstance(expected, dict) and expected.get("size") not in (None, size):
            problems.add(name, f"is {size} bytes but the manifest says {expected.get('size')}")
        else:
            summary.files += 1


def _check_checkpoint(
    checkpoint: Any, keys: dict[str, Any], problems: _Problems, summary: _Summary
) -> dict[str, Any] | None:
    """The checkpoint's fields if it is well formed and its signature verifies."""
    if not isinstance(checkpoint, dict):
        if checkpoint is not None:
            problems.add(CHECKPOINT, "is not a JSON object")
        return None
    try:
        tree_size = checkpoint["tree_size"]
        root = bytes.fromhex(checkpoint["root_hash"])
        signature = bytes.fromhex(checkpoint["signature"])
        message = checkpoint_message(checkpoint)
    except (KeyError, TypeError, ValueError) as exc:
        problems.add(CHECKPOINT, f"is missing a field or has a malformed one ({exc})")
        return None
    if not isinstance(tree_size, int) or tree_size < 1 or len(root) != _HASH_SIZE:
        problems.add(CHECKPOINT, "tree_size or root_hash is malformed")
        return None
    if checkpoint.get("format") not in (None, CHECKPOINT_FORMAT):
        problems.add(CHECKPOINT, f"format is {checkpoint.get('format')!r}")
    stated = checkpoint.get("message")
    if stated is not None and stated != message.decode():
        problems.add(CHECKPOINT, '"message" is not the message its fields make')
    key_id = str(checkpoint["key_id"])
    public = keys.get(key_id)
    if public is None:
        problems.add(CHECKPOINT, f"is signed by key {key_id}, which is not a known public key")
        return None
    if not _signature_ok(public, signature, message):
        problems.add(CHECKPOINT, f"the signature does not verify with key {key_id}")
        return None
    summary.tree_size = tree_size
    summary.root_hash = root.hex()
    summary.checkpoint_key = key_id
    return checkpoint


def _leaves(bundle: zipfile.ZipFile) -> Iterator[bytes]:
    with bundle.open(LEAVES) as handle:
        while block := handle.read(_HASH_SIZE * 4096):
            for offset in range(0, len(block) - _HASH_SIZE + 1, _HASH_SIZE):
                yield block[offset : offset + _HASH_SIZE]


def _check_tree(bundle: zipfile.ZipFile, checkpoint: dict[str, Any], problems: _Problems) -> bool:
    try:
        size = bundle.getinfo(LEAVES).file_size
    except KeyError:
        problems.add(LEAVES, "missing from the bundle")
        return False
    if size % _HASH_SIZE:
        problems.add(LEAVES, f"is {size} bytes, not a whole number of 32-byte leaf hashes")
        return False
    tree = StreamingRoot()
    try:
        for leaf in _leaves(bundle):
            tree.add(leaf)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        problems.add(LEAVES, f"cannot be read from the ZIP ({exc})")
        return False
    ok = True
    if tree.size != checkpoint["tree_size"]:
        problems.add(
            LEAVES,
            f"holds {tree.size} leaf hashes but the checkpoint covers {checkpoint['tree_size']}",
        )
        ok = False
    root = tree.root().hex()
    if root != checkpoint["root_hash"]:
        problems.add(
            LEAVES,
            f"the leaves hash to root {root}, not the signed root {checkpoint['root_hash']}",
        )
        ok = False
    return ok


class _LeafCursor:
    """Walks ``leaves.bin`` forward, remembering the leaf before the current one."""

    def __init__(self, leaves: Iterator[bytes]) -> None:
        self._leaves = leaves
        self.index = -1
        self.current: bytes | None = None
        self.previous: bytes | None = None

    def seek(self, index: int) -> bool:
        while self.index < index:
            leaf = next(self._leaves, None)
            if leaf is None:
                return False
            self.previous, self.current = self.current, leaf
            self.index += 1
        return self.index == index


def _csv_reader(bundle: zipfile.ZipFile) -> Iterator[list[str]]:
    """The rows of events.csv; the file closes when the rows run out or are dropped."""
    # Nested, not parenthesised: that form of ``with`` needs Python 3.10.
    with bundle.open(EVENTS_CSV) as raw:  # noqa: SIM117
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            yield from csv.reader(text)


def _csv_rows(bundle: zipfile.ZipFile, problems: _Problems) -> Iterator[list[str]] | None:
    if EVENTS_CSV not in bundle.namelist():
        problems.add(EVENTS_CSV, "missing from the bundle")
        return None
    csv.field_size_limit(_MAX_CSV_FIELD)
    rows = _csv_reader(bundle)
    try:
        header = next(rows, None)
    except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
        problems.add(EVENTS_CSV, f"cannot be parsed ({exc})")
        return None
    if header != CSV_HEADER:
        problems.add(EVENTS_CSV, f"the header row is {header}, expected {CSV_HEADER}")
    return rows


def _check_events(
    bundle: zipfile.ZipFile,
    checkpoint: dict[str, Any],
    tree_ok: bool,
    problems: _Problems,
    summary: _Summary,
) -> None:
    """Each ``events.jsonl`` line against its leaf and the leaf before, and its CSV row."""
    if EVENTS_JSONL not in bundle.namelist():
        problems.add(EVENTS_JSONL, "missing from the bundle")
        return
    tree_size = checkpoint["tree_size"]
    cursor = _LeafCursor(_leaves(bundle)) if tree_ok else None
    rows = _csv_rows(bundle, problems)
    last_seq = 0
    line_number = 0
    try:
        with bundle.open(EVENTS_JSONL) as handle:
            for raw in handle:
                line_number += 1
                where = f"line {line_number}"
                if not raw.endswith(b"\n"):
                    problems.add(EVENTS_JSONL, f"{where} does not end with a newline")
                line = raw[:-1] if raw.endswith(b"\n") else raw
                try:
                    event = json.loads(line.decode("utf-8"))
                    seq = event["seq"]
                    prev = event["prev"]
                except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                    problems.add(EVENTS_JSONL, f"{where} is not a canonical event ({exc})")
                    _skip_row(rows)
                    continue
                if not isinstance(seq, int) or not 1 <= seq <= tree_size:
                    problems.add(
                        EVENTS_JSONL,
                        f"{where}: sequence {seq} is outside the checkpoint (1..{tree_size})",
                    )
                    _skip_row(rows)
                    continue
                if seq <= last_seq:
                    problems.add(
                        EVENTS_JSONL, f"{where}: sequence {seq} is repeated or out of order"
                    )
                else:
                    last_seq = seq
                    if cursor is not None:
                        _check_leaf(cursor, seq, line, prev, where, problems)
                summary.events += 1
                if rows is not None:
                    _check_row(rows, event, seq, problems)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        problems.add(EVENTS_JSONL, f"cannot be read from the ZIP ({exc})")
        return
    if rows is not None:
        try:
            extra = sum(1 for _ in rows)
        except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
            problems.add(EVENTS_CSV, f"cannot be parsed to the end ({exc})")
            return
        if extra:
            problems.add(EVENTS_CSV, f"has {extra} row(s) more than events.jsonl has events")


def _check_leaf(
    cursor: _LeafCursor, seq: int, line: bytes, prev: Any, where: str, problems: _Problems
) -> None:
    if not cursor.seek(seq - 1) or cursor.current is None:
        problems.add(LEAVES, f"has no leaf for sequence {seq}")
        return
    if leaf_hash(line) != cursor.current:
        problems.add(
            EVENTS_JSONL,
            f"{where}: event {seq} does not hash to leaf {seq - 1} of leaves.bin "
            "(the event or the leaf was changed)",
        )
    expected_prev = cursor.previous.hex() if seq > 1 and cursor.previous else GENESIS
    if prev != expected_prev:
        problems.add(
            EVENTS_JSONL,
            f"{where}: event {seq} has prev {prev} but the leaf before it is {expected_prev}",
        )


def _skip_row(rows: Iterator[list[str]] | None) -> None:
    if rows is not None:
        next(rows, None)


def _check_row(rows: Iterator[list[str]], event: Any, seq: int, problems: _Problems) -> None:
    try:
        row = next(rows, None)
    except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
        problems.add(EVENTS_CSV, f"cannot be parsed near sequence {seq} ({exc})")
        return
    if row is None:
        problems.add(EVENTS_CSV, f"has no row for sequence {seq}")
        return
    expected = csv_row(event) if isinstance(event, dict) else []
    if row != expected:
        columns = [
            CSV_HEADER[i] if i < len(CSV_HEADER) else f"column {i + 1}"
            for i in range(max(len(row), len(expected)))
            if i >= len(row) or i >= len(expected) or row[i] != expected[i]
        ]
        shown = row[0] if row else "(empty row)"
        problems.add(
            EVENTS_CSV,
            f"the row for sequence {seq} (sequence cell {shown!r}) differs from events.jsonl "
            f"in: {', '.join(columns)}",
        )


def _verify(path: str, trusted: str | None = None) -> tuple[list[str], _Summary]:
    problems = _Problems()
    summary = _Summary()
    try:
        bundle = zipfile.ZipFile(path)
    except FileNotFoundError:
        return [f"{path}: no such file"], summary
    except (zipfile.BadZipFile, OSError) as exc:
        return [f"{path}: not a readable ZIP file ({exc})"], summary
    with bundle:
        manifest_raw = _read_small(bundle, MANIFEST, problems)
        signature = _read_small(bundle, MANIFEST_SIG, problems)
        manifest = _load_json(manifest_raw, MANIFEST, problems)
        keys = _keys_from(
            _load_json(_read_small(bundle, PUBLIC_KEYS, problems), PUBLIC_KEYS, problems),
            PUBLIC_KEYS,
            problems,
        )
        if trusted is not None:
            keys = _pin(keys, trusted, problems)
            summary.pinned = True
        if not isinstance(manifest, dict):
            if manifest is not None:
                problems.add(MANIFEST, "is not a JSON object")
            manifest = {}
        elif manifest_raw is not None and signature is not None:
            _check_manifest(manifest, manifest_raw, signature, keys, problems, summary)
        _check_files(bundle, manifest, problems, summary)
        checkpoint = _check_checkpoint(
            _load_json(_read_small(bundle, CHECKPOINT, problems), CHECKPOINT, problems),
            keys,
            problems,
            summary,
        )
        if checkpoint is not None:
            stated = manifest.get("checkpoint")
            if isinstance(stated, dict) and (
                stated.get("tree_size") != checkpoint["tree_size"]
                or stated.get("root_hash") != checkpoint["root_hash"]
            ):
                problems.add(MANIFEST, "names a different checkpoint than checkpoint.json")
            tree_ok = _check_tree(bundle, checkpoint, problems)
            _check_events(bundle, checkpoint, tree_ok, problems, summary)
            count = manifest.get("event_count")
            if count is not None and count != summary.events:
                problems.add(
                    MANIFEST, f"says {count} events but events.jsonl holds {summary.events}"
                )
    return problems.finish(), summary


def _check_manifest(
    manifest: dict[str, Any],
    raw: bytes,
    signature: bytes,
    keys: dict[str, Any],
    problems: _Problems,
    summary: _Summary,
) -> None:
    if manifest.get("format") != FORMAT:
        problems.add(MANIFEST, f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
    key_id = str(manifest.get("signing_key_id"))
    public = keys.get(key_id)
    if public is None:
        problems.add(MANIFEST, f"is signed by key {key_id}, which is not a known public key")
    elif len(signature) != 64 or not _signature_ok(public, signature, raw):
        problems.add(
            MANIFEST,
            f"the signature in {MANIFEST_SIG} does not verify with key {key_id} "
            f"({MANIFEST} or {MANIFEST_SIG} was changed)",
        )
    else:
        summary.manifest_key = key_id


def _pin(keys: dict[str, Any], trusted_path: str, problems: _Problems) -> dict[str, Any]:
    """Only the bundle's keys that are also in the trusted file (by key id and key bytes)."""
    label = f"{trusted_path} (--trusted-keys)"
    try:
        with open(trusted_path, "rb") as handle:
            document = json.loads(handle.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.add(label, f"cannot be read as JSON ({exc})")
        return {}
    trusted = _keys_from(document, label, problems)
    from cryptography.hazmat.primitives import serialization

    def raw(key: Any) -> bytes:
        return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    pinned = {}
    for key_id, public in keys.items():
        if key_id in trusted and raw(trusted[key_id]) == raw(public):
            pinned[key_id] = public
        else:
            problems.add(PUBLIC_KEYS, f"key {key_id} is not among the trusted keys")
    return pinned


def verify(path: str, trusted_keys: str | None = None) -> list[str]:
    """Every problem found in the bundle at ``path``, each naming its file; empty when it holds."""
    return _verify(path, trusted_keys)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Gatehouse evidence bundle offline.")
    parser.add_argument("bundle", help="the evidence bundle (.zip)")
    parser.add_argument(
        "--trusted-keys",
        metavar="FILE",
        help="JSON of the public keys you trust (as served at /audit/keys); without it the "
        "bundle's own public_keys.json is used and you should compare the key ids yourself",
    )
    args = parser.parse_args(argv)
    try:
        problems, summary = _verify(args.bundle, args.trusted_keys)
    except ImportError:
        print("verify_bundle.py needs the 'cryptography' package: pip install cryptography")
        return 2
    if problems:
        print(f"FAILED: {args.bundle} did not verify; {len(problems)} problem(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    pinning = (
        "keys pinned by --trusted-keys"
        if summary.pinned
        else "keys from the bundle: compare the key ids with the published keys"
    )
    print(
        f"OK: {summary.events} events match checkpoint of {summary.tree_size} events "
        f"(root {summary.root_hash[:16]}..., key {summary.checkpoint_key}); manifest signed by "
        f"key {summary.manifest_key}; {summary.files} files intact; {pinning}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
