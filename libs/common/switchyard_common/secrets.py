"""API-key generation and hashing, and encryption of provider credentials at rest."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

__all__ = [
    "KEY_PREFIX",
    "SecretBox",
    "SecretDecryptError",
    "generate_api_key",
    "hash_api_key",
    "key_display_prefix",
]

KEY_PREFIX = "gk_"


def generate_api_key() -> str:
    """`gk_` + 43 url-safe random characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(value: str) -> str:
    """Hex SHA-256 of the key: what is stored and what the data plane looks up."""
    return hashlib.sha256(value.encode()).hexdigest()


def key_display_prefix(value: str) -> str:
    """Short, non-secret prefix shown in listings to tell keys apart."""
    return value[:10]


class SecretDecryptError(Exception):
    """A ciphertext does not decrypt with the configured secret key."""


class SecretBox:
    """Fernet encryption keyed by SWITCHYARD_SECRET_KEY.

    Any string works as secret key: it is stretched with SHA-256 into the 32 bytes
    Fernet needs, so operators can use a password-like value.
    """

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("SWITCHYARD_SECRET_KEY is empty")
        digest = hashlib.sha256(secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptError("credential does not decrypt with SWITCHYARD_SECRET_KEY") from exc
