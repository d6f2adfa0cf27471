"""Admin credentials: argon2 password hashes and opaque bearer tokens stored as SHA-256.

Plain functions over strings; no database or web framework here.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "CI_TOKEN_PREFIX",
    "SESSION_TOKEN_PREFIX",
    "generate_token",
    "hash_password",
    "hash_token",
    "password_needs_rehash",
    "token_display_prefix",
    "verify_password",
]

# Long-lived automation tokens (shown once) and login session tokens.
CI_TOKEN_PREFIX = "sya_"
SESSION_TOKEN_PREFIX = "sys_"

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current defaults."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    return token[:10]
