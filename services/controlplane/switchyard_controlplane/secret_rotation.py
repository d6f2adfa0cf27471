"""Re-encrypt the stored provider credentials under a new SWITCHYARD_SECRET_KEY.

Provider credentials (`providers.api_key_encrypted`) are the only values encrypted
with the secret key; credentials given by `api_key_env` are never stored. Rotation
decrypts each with the old key and encrypts it with the new one in ONE transaction,
which bumps the snapshot version like any config change (data planes still on the old
key refuse that snapshot and keep serving the one they have until they restart with
the new key; docs/operations.md gives the whole procedure).

Re-running is safe: a credential that already decrypts with the new key is left as it
is, so a rotation interrupted half-way (or repeated) completes without harm. A
credential that decrypts with neither key aborts the whole rotation, writing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from switchyard_common.db import make_engine
from switchyard_common.secrets import SecretBox, SecretDecryptError

from .db.models import Provider
from .repo.session import NEW_VERSION_KEY, make_sessionmaker

__all__ = ["RotationError", "RotationResult", "rotate_secret_key"]


class RotationError(Exception):
    """The rotation cannot run, or a credential decrypts with neither key."""


@dataclass
class RotationResult:
    # Provider slugs whose credential was (or, on a dry run, would be) re-encrypted.
    rotated: list[str] = field(default_factory=list)
    # Already encrypted with the new key (a repeated or resumed rotation).
    already_new: list[str] = field(default_factory=list)
    # Snapshot version after the commit; None when nothing was written.
    version: int | None = None


def rotate_secret_key(
    database_url: str, old_key: str, new_key: str, *, dry_run: bool = False
) -> RotationResult:
    if not old_key or not new_key:
        raise RotationError("both the old and the new secret key are required")
    if old_key == new_key:
        raise RotationError("the new secret key equals the old one")
    old_box, new_box = SecretBox(old_key), SecretBox(new_key)
    result = RotationResult()
    undecryptable: list[str] = []
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            # FOR UPDATE (Postgres): a concurrent apply cannot write a credential under
            # the old key between our read and our commit.
            rows = session.scalars(
                select(Provider)
                .where(Provider.api_key_encrypted.is_not(None))
                .order_by(Provider.slug)
                .with_for_update()
            ).all()
            for row in rows:
                ciphertext = row.api_key_encrypted or ""
                try:
                    plaintext = old_box.decrypt(ciphertext)
                except SecretDecryptError:
                    if _decrypts(new_box, ciphertext):
                        result.already_new.append(row.slug)
                    else:
                        undecryptable.append(row.slug)
                    continue
                result.rotated.append(row.slug)
                if not dry_run:
                    row.api_key_encrypted = new_box.encrypt(plaintext)
            if undecryptable:
                session.rollback()
                raise RotationError(
                    "credentials of providers decrypt with neither key (nothing was changed): "
                    + ", ".join(undecryptable)
                )
            if dry_run or not result.rotated:
                session.rollback()
                return result
            session.commit()
            version = session.info.get(NEW_VERSION_KEY)
            result.version = int(version) if version is not None else None
    finally:
        engine.dispose()
    return result


def _decrypts(box: SecretBox, ciphertext: str) -> bool:
    try:
        box.decrypt(ciphertext)
    except SecretDecryptError:
        return False
    return True
