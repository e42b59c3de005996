"""Canonical encoding and hashing of ledger entries: the rules a verifier re-implements.

Kept dependency-free and tiny on purpose: the exported bundle's standalone verifier must
compute exactly these hashes with nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64
HEADER_FIELDS = ("seq", "created_at", "actor", "action", "subject", "payload_hash", "prev_hash")


def canonical(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_hash(payload: dict[str, Any]) -> str:
    return sha256(canonical(payload))


def entry_hash(header: dict[str, Any]) -> str:
    """The hash of an entry's header (which includes its payload's hash and the previous hash)."""
    return sha256(canonical({name: header[name] for name in HEADER_FIELDS}))
