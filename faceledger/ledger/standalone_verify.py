"""Check a faceledger ledger bundle: every entry's hash, every link, every signed checkpoint.

Usage: python verify.py BUNDLE_DIR [--public-key KEY.pem]

This file is copied unchanged into every exported bundle, so an auditor can check the
bundle without faceledger: it needs only the Python standard library and `cryptography`.
It re-implements the ledger's canonical encoding on purpose and must never import
faceledger. faceledger's own verifier feeds database rows through the same ChainChecker,
so the two cannot disagree about what a whole chain is.

Exit status: 0 when the bundle is whole, 1 when it is not (the first bad entry is named).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "faceledger-ledger-bundle"
FORMAT_VERSION = 1
GENESIS = "0" * 64
HEADER_FIELDS = ("seq", "created_at", "actor", "action", "subject", "payload_hash", "prev_hash")
RECORD_FIELDS = (*HEADER_FIELDS, "entry_hash", "payload", "erased")
CHECKPOINT_FIELDS = ("id", "seq", "entry_hash", "created_at", "key_id", "signature")
STATEMENT_FIELDS = ("seq", "entry_hash", "created_at", "key_id")


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False), with the
# encoder built once: a million entries make the per-call construction show.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 (the ledger's hashing rule)."""
    return _CANONICAL.encode(value).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(record: dict[str, Any]) -> str:
    return sha256(canonical({name: record[name] for name in HEADER_FIELDS}))


def checkpoint_statement(checkpoint: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical({name: checkpoint[name] for name in STATEMENT_FIELDS})


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256(raw)[:16]


class ChainChecker:
    """Checks ledger entries fed in seq order, remembering the first thing that is wrong.

    Streaming on purpose: it holds one entry at a time plus the (few) checkpoints, so a
    chain of millions of entries is checked in constant memory. `start` and `prev_hash`
    let a caller check a segment; a `prev_hash` of None skips the first entry's link.
    """

    def __init__(
        self,
        public_key: Ed25519PublicKey | None,
        checkpoints: Iterable[dict[str, Any]] = (),
        *,
        start: int = 1,
        prev_hash: str | None = GENESIS,
    ) -> None:
        self.public_key = public_key
        self.key_id = key_id(public_key) if public_key is not None else None
        self.pending: dict[int, list[dict[str, Any]]] = {}
        for checkpoint in checkpoints:
            self.pending.setdefault(checkpoint["seq"], []).append(checkpoint)
        self.checkpoints = sum(len(group) for group in self.pending.values())
        self.expected = start
        self.prev_hash = prev_hash
        self.entries = 0
        self.erased = 0
        self.head_seq = start - 1
        self.head_hash: str | None = None
        self.signed_seq = 0
        self.problem: str | None = None
        self.problem_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def fail(self, seq: int | None, problem: str) -> None:
        """Record a problem unless an earlier one was found (the first one is the story)."""
        if self.problem is None:
            self.problem, self.problem_seq = problem, seq

    def add(self, record: dict[str, Any]) -> None:
        """Check one entry: header fields, entry_hash, payload (or null) and erased."""
        seq = record["seq"]
        self.entries += 1
        self.erased += bool(record["erased"])
        if self.problem is None:
            problem = self._entry_problem(record)
            if problem is not None:
                self.fail(seq, problem)
            else:
                for checkpoint in sorted(self.pending.pop(seq, []), key=_by_id):
                    self._check_checkpoint(checkpoint, record["entry_hash"])
        self.expected = seq + 1
        self.prev_hash = record["entry_hash"]
        self.head_seq, self.head_hash = seq, record["entry_hash"]

    def finish(self) -> None:
        """After the last entry: checkpoints that point past the end (or at nothing) fail."""
        for seq in sorted(self.pending):
            for checkpoint in sorted(self.pending[seq], key=_by_id):
                self.fail(
                    seq,
                    f"{_label(checkpoint)}: the chain has no entry {seq} "
                    f"(it ends at entry {self.head_seq})",
                )
        self.pending.clear()

    def _entry_problem(self, record: dict[str, Any]) -> str | None:
        seq = record["seq"]
        if seq > self.expected:
            if self.expected == 1:
                return f"entry 1 missing: sequence starts at {seq}"
            return (
                f"entry {self.expected} missing: sequence jumps from {self.expected - 1} to {seq}"
            )
        if seq < self.expected:
            return f"entry {seq} out of order: it follows entry {self.expected - 1}"
        if entry_hash(record) != record["entry_hash"]:
            return f"entry {seq}: header does not match its hash (entry_hash)"
        if self.prev_hash is not None and record["prev_hash"] != self.prev_hash:
            previous = f"entry {seq - 1}'s hash" if seq > 1 else "the genesis hash"
            return f"entry {seq}: prev_hash does not match {previous} (broken link)"
        payload = record["payload"]
        if record["erased"]:
            if payload is not None:
                return f"entry {seq}: marked erased but still has a payload"
        elif payload is None:
            return f"entry {seq}: payload is missing (and not marked erased)"
        elif sha256(canonical(payload)) != record["payload_hash"]:
            return f"entry {seq}: payload does not match its hash"
        return None

    def _check_checkpoint(self, checkpoint: dict[str, Any], chain_hash: str) -> None:
        label, seq = _label(checkpoint), checkpoint["seq"]
        if self.public_key is None:
            self.fail(seq, f"{label}: no public key to check its signature with")
            return
        if checkpoint["key_id"] != self.key_id:
            self.fail(
                seq, f"{label}: signed by key {checkpoint['key_id']}, not by key {self.key_id}"
            )
            return
        try:
            signature = bytes.fromhex(checkpoint["signature"])
            self.public_key.verify(signature, checkpoint_statement(checkpoint))
        except (InvalidSignature, TypeError, ValueError):
            self.fail(seq, f"{label}: bad signature")
            return
        if checkpoint["entry_hash"] != chain_hash:
            self.fail(seq, f"{label}: the chain's entry {seq} is not the one that was signed")
            return
        self.signed_seq = max(self.signed_seq, seq)


def _by_id(checkpoint: dict[str, Any]) -> Any:
    return (checkpoint.get("id") is None, checkpoint.get("id") or 0)


def _label(checkpoint: dict[str, Any]) -> str:
    return f"checkpoint {checkpoint.get('id')} at entry {checkpoint['seq']}"


def _read_checkpoints(path: Path) -> list[dict[str, Any]]:
    checkpoints = json.loads(path.read_bytes())
    if not isinstance(checkpoints, list):
        raise ValueError("checkpoints.json is not a list")
    for number, checkpoint in enumerate(checkpoints, 1):
        if not isinstance(checkpoint, dict) or any(f not in checkpoint for f in CHECKPOINT_FIELDS):
            raise ValueError(f"checkpoints.json: item {number} is not a checkpoint")
        if not isinstance(checkpoint["seq"], int) or isinstance(checkpoint["seq"], bool):
            raise ValueError(f"checkpoints.json: item {number} has no integer seq")
    return checkpoints


def _is_record(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and all(name in record for name in RECORD_FIELDS)
        and isinstance(record["seq"], int)
        and not isinstance(record["seq"], bool)
    )


def check_bundle(directory: Path, public_key_pem: bytes | None = None) -> ChainChecker:
    """Check a bundle directory; the result's `problem` is None when it is whole.

    By default the bundle's own public_key.pem is used; pass the PEM the auditor holds
    to make sure the checkpoints were signed by the ledger's real key.
    """
    manifest = json.loads((directory / "manifest.json").read_bytes())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"not a {FORMAT} version {FORMAT_VERSION} "
            f"(manifest says {manifest.get('format')} {manifest.get('format_version')})"
        )
    key = serialization.load_pem_public_key(
        public_key_pem or (directory / "public_key.pem").read_bytes()
    )
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    checker = ChainChecker(key, _read_checkpoints(directory / "checkpoints.json"))
    with (directory / "entries.jsonl").open("rb") as lines:
        for number, line in enumerate(lines, 1):
            where = f"entry {checker.expected} (line {number} of entries.jsonl)"
            try:
                record = json.loads(line)
            except ValueError:
                checker.fail(checker.expected, f"{where}: not valid JSON")
                return checker
            if not _is_record(record):
                checker.fail(checker.expected, f"{where}: not a ledger entry")
                return checker
            checker.add(record)
    checker.finish()
    for name, found in (
        ("entries", checker.entries),
        ("checkpoints", checker.checkpoints),
        ("erased", checker.erased),
        ("head_seq", checker.head_seq),
        ("head_hash", checker.head_hash),
    ):
        if manifest.get(name) != found:
            checker.fail(None, f"manifest: {name} is {manifest.get(name)!r}, bundle has {found!r}")
    return checker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a faceledger ledger bundle.")
    parser.add_argument("bundle", type=Path, help="the bundle directory")
    parser.add_argument(
        "--public-key", type=Path, help="check signatures with this key (default: the bundle's)"
    )
    args = parser.parse_args(argv)
    try:
        pem = args.public_key.read_bytes() if args.public_key else None
        checker = check_bundle(args.bundle, pem)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"NOT VERIFIED: cannot read the bundle: {error}")
        return 1
    print(f"bundle:      {args.bundle}")
    print(f"entries:     {checker.entries} ({checker.erased} payloads erased)")
    print(f"head:        entry {checker.head_seq} {checker.head_hash or '-'}")
    print(f"checkpoints: {checker.checkpoints}, signed by key {checker.key_id}")
    if checker.problem is not None:
        print(f"BROKEN: {checker.problem}")
        return 1
    if checker.signed_seq < checker.head_seq:
        print(
            f"note: entries after {checker.signed_seq} are not covered by a signed checkpoint, "
            "so removing them would not be detected"
        )
    print("WHOLE: every entry, link, payload and checkpoint checks out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
