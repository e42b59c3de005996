"""The Ed25519 key that signs ledger checkpoints.

Created on first use inside the data directory, readable by its owner only, and never
overwritten: replacing it would silently orphan every checkpoint signed so far. The public
half is what an auditor keeps elsewhere to check checkpoints (and exported bundles) with.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceledger.config import Settings
from faceledger.errors import BadInput

KEY_FILE = Path("keys") / "ledger-ed25519.pem"


def key_path(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class BadKey(BadInput):
    """A key file that is not an Ed25519 key (a usage error: the wrong file was named)."""

    code = "bad_key"


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse a public key PEM (as exported), refusing anything that is not Ed25519."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:  # cryptography's word for "not a key"
        raise BadKey(f"not a public key PEM: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadKey("not an Ed25519 public key")
    return key


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as error:
        raise BadKey(f"{path} is not a private key PEM: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey(f"{path} is not an Ed25519 private key")
    return key


def _create(path: Path) -> None:
    """Write a new key without a window where a partial or world-readable file exists.

    The key is written to a private temporary file and hard-linked into place: the link
    fails if the key already exists, so a concurrent creator's key is never replaced.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        # Another process may have created it first: then theirs is the key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The checkpoint signing key, created on first use."""
    path = key_path(settings)
    if not path.exists():
        _create(path)
    return _load_private(path)


def existing_public_key(settings: Settings) -> Ed25519PublicKey | None:
    """The public half of the signing key, or None when no key was made yet (never creates)."""
    path = key_path(settings)
    return _load_private(path).public_key() if path.exists() else None
