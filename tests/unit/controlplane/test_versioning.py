"""Committing configuration bumps config_state.version once; admin rows do not."""

from __future__ import annotations

from sqlalchemy import Engine
from switchyard_controlplane import repo
from switchyard_controlplane.repo import make_sessionmaker, read_config_version


def _version(engine: Engine) -> int:
    with engine.connect() as conn:
        return read_config_version(conn).version


def test_one_bump_per_transaction(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        org = repo.organizations.create_organization(session, name="a", policy={})
        repo.organizations.create_organization(session, name="b", policy={})
        repo.organizations.update_organization(session, org=org, policy={"audit": "full"})
        assert _version(engine) == 0  # nothing visible before commit
        session.commit()
        assert session.info[repo.NEW_VERSION_KEY] == 1
    assert _version(engine) == 1

    with sessions() as session:
        org = repo.organizations.require_organization(session, name="a")
        repo.organizations.update_organization(session, org=org, policy={"audit": "full"})  # same value
        session.commit()
    assert _version(engine) == 1

    with sessions() as session:
        repo.organizations.delete_organization(
            session, org=repo.organizations.require_organization(session, name="b")
        )
        session.commit()
    assert _version(engine) == 2


def test_rolled_back_changes_do_not_bump(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        repo.organizations.create_organization(session, name="a", policy={})
        session.rollback()
        session.commit()
    assert _version(engine) == 0


def test_admin_rows_do_not_bump(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        repo.admin.ensure_admin_user(session, email="x@example.com", password="pw-123456")
        repo.admin.create_admin_token(session, kind="ci", name="ci", prefix="sya_")
        session.commit()
    assert _version(engine) == 0


def test_snapshot_id_changes_with_version(engine: Engine) -> None:
    with engine.connect() as conn:
        before = read_config_version(conn)
    with make_sessionmaker(engine)() as session:
        repo.organizations.create_organization(session, name="a", policy={})
        session.commit()
    with engine.connect() as conn:
        after = read_config_version(conn)
    assert after.version == before.version + 1
    assert after.snapshot_id != before.snapshot_id
