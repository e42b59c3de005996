"""Password hashing with argon2id, the minimum policy, and generated passwords.

argon2id is memory-hard, so a stolen users table is costly to crack. Each hash records its
own parameters: when the defaults grow, `needs_rehash` upgrades a hash at the next login.
"""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from faceledger.errors import BadInput

MIN_LENGTH = 12
# Long enough for any passphrase, short enough that hashing it cannot be used to stall us.
MAX_LENGTH = 1024
GENERATED_LENGTH = 20
# No look-alikes (0/O, 1/l/I), so a printed password can be typed back: ~112 bits at 20.
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")

# argon2-cffi's defaults are RFC 9106's low-memory profile (t=3, 64 MiB, p=4).
HASHER = PasswordHasher(type=Type.ID)
_hasher = HASHER  # what is in use (tests swap in a cheaper one)
_dummy: tuple[PasswordHasher, str] | None = None


class WeakPassword(BadInput):
    """The password breaks the policy; the message says how."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"a password needs at least {MIN_LENGTH} characters (this one has {len(password)})"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPassword("a password cannot be only spaces")


def hash_password(password: str) -> str:
    """The argon2id hash of a password that meets the policy (WeakPassword otherwise)."""
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches; a malformed stored hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def rehash_if_needed(password_hash: str, password: str) -> str | None:
    """A new hash with today's parameters if the stored one is weaker (after a good login).

    No policy check here: a password accepted under an older policy still logs in.
    """
    return _hasher.hash(password) if needs_rehash(password_hash) else None


def dummy_hash() -> str:
    """A hash of nobody's password: checking unknown users against it costs the same time."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(generate_password()))
    return _dummy[1]


def generate_password(length: int = GENERATED_LENGTH) -> str:
    """A random password from the OS's secure source, meeting the policy."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(max(length, MIN_LENGTH)))
