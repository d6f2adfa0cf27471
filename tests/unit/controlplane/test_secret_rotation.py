"""`switchyard rotate-secret-key`: stored provider credentials move to a new secret key
in one transaction that bumps the snapshot version; repeats are harmless and a
credential that decrypts with neither key aborts the whole rotation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select
from switchyard_cli.main import main
from switchyard_common.config_schema import parse_config
from switchyard_common.secrets import SecretBox, SecretDecryptError
from switchyard_controlplane.config_apply import apply_document
from switchyard_controlplane.db.models import Provider
from switchyard_controlplane.repo import make_sessionmaker, read_config_version
from switchyard_controlplane.secret_rotation import RotationError, rotate_secret_key
from switchyard_controlplane.settings import ControlPlaneSettings

OLD = "unit-test-secret"  # the `settings` fixture's key, which apply encrypts with
NEW = "a-brand-new-secret-key"
CREDENTIALS = {"alpha": "sk-alpha-123", "beta": "sk-beta-456"}


@pytest.fixture
def stored(engine: Engine, settings: ControlPlaneSettings) -> Engine:
    providers = [
        {"slug": slug, "api_format": "openai", "base_url": f"https://{slug}.example/v1", "api_key": value}
        for slug, value in CREDENTIALS.items()
    ]
    providers.append(
        {
            "slug": "gamma",
            "api_format": "openai",
            "base_url": "https://gamma.example/v1",
            "api_key_env": "GAMMA",
        }
    )
    apply_document(engine, settings, parse_config({"providers": providers}, file="<test>"))
    return engine


def _ciphertexts(engine: Engine) -> dict[str, str | None]:
    with make_sessionmaker(engine)() as session:
        return {p.slug: p.api_key_encrypted for p in session.scalars(select(Provider))}


def _version(engine: Engine) -> int:
    with engine.connect() as conn:
        return read_config_version(conn).version


def test_rotation_reencrypts_every_stored_credential_and_bumps_the_version(
    stored: Engine, settings: ControlPlaneSettings
) -> None:
    before = _version(stored)
    result = rotate_secret_key(settings.database_url, OLD, NEW)

    assert result.rotated == ["alpha", "beta"]
    assert result.already_new == []
    assert result.version == before + 1 == _version(stored)
    stored_now = _ciphertexts(stored)
    assert stored_now["gamma"] is None, "api_key_env credentials are never stored"
    new_box, old_box = SecretBox(NEW), SecretBox(OLD)
    for slug, plaintext in CREDENTIALS.items():
        assert new_box.decrypt(stored_now[slug] or "") == plaintext
        with pytest.raises(SecretDecryptError):
            old_box.decrypt(stored_now[slug] or "")

    # A control plane on the new key sees the same credentials: re-applying is a no-op.
    new_settings = settings.model_copy(update={"secret_key": NEW})
    providers = [
        {"slug": slug, "api_format": "openai", "base_url": f"https://{slug}.example/v1", "api_key": value}
        for slug, value in CREDENTIALS.items()
    ]
    again = apply_document(stored, new_settings, parse_config({"providers": providers}, file="<test>"))
    assert not again.changed, again.changes


def test_rotation_is_resumable_and_a_repeat_writes_nothing(
    stored: Engine, settings: ControlPlaneSettings
) -> None:
    rotate_secret_key(settings.database_url, OLD, NEW)
    version, ciphertexts = _version(stored), _ciphertexts(stored)

    repeat = rotate_secret_key(settings.database_url, OLD, NEW)

    assert repeat.rotated == [] and repeat.already_new == ["alpha", "beta"]
    assert repeat.version is None
    assert (_version(stored), _ciphertexts(stored)) == (version, ciphertexts)


def test_a_credential_under_neither_key_aborts_without_writing(
    stored: Engine, settings: ControlPlaneSettings
) -> None:
    with make_sessionmaker(stored)() as session:
        beta = session.scalars(select(Provider).where(Provider.slug == "beta")).one()
        beta.api_key_encrypted = SecretBox("some-third-key").encrypt("sk-beta-456")
        session.commit()
    version, ciphertexts = _version(stored), _ciphertexts(stored)

    with pytest.raises(RotationError, match="beta"):
        rotate_secret_key(settings.database_url, OLD, NEW)

    assert (_version(stored), _ciphertexts(stored)) == (version, ciphertexts)


def test_dry_run_and_bad_arguments_write_nothing(stored: Engine, settings: ControlPlaneSettings) -> None:
    version, ciphertexts = _version(stored), _ciphertexts(stored)
    assert rotate_secret_key(settings.database_url, OLD, NEW, dry_run=True).rotated == ["alpha", "beta"]
    with pytest.raises(RotationError):
        rotate_secret_key(settings.database_url, OLD, OLD)
    with pytest.raises(RotationError):
        rotate_secret_key(settings.database_url, "", NEW)
    assert (_version(stored), _ciphertexts(stored)) == (version, ciphertexts)


def test_cli_reads_both_keys_from_the_environment(
    stored: Engine,
    settings: ControlPlaneSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SWITCHYARD_OLD_SECRET_KEY", OLD)
    monkeypatch.setenv("SWITCHYARD_SECRET_KEY", NEW)

    assert main(["rotate-secret-key", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rotated"] == ["alpha", "beta"] and report["version"] == _version(stored)
    assert SecretBox(NEW).decrypt(_ciphertexts(stored)["alpha"] or "") == CREDENTIALS["alpha"]

    monkeypatch.setenv("SWITCHYARD_OLD_SECRET_KEY", "wrong-old-key")
    monkeypatch.setenv("SWITCHYARD_SECRET_KEY", "another-new-key")
    assert main(["rotate-secret-key"]) == 1
    assert "decrypt with neither key" in capsys.readouterr().err
