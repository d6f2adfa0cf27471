"""Migration 0003 (governance) on a database holding 0002-era rows, on SQLite.

`check_0003_upgrade` is shared with the Postgres integration test."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import text
from switchyard_common.db import make_engine
from switchyard_common.secrets import SecretBox
from switchyard_controlplane.config_apply import load_current_state
from switchyard_controlplane.migrate import alembic_config, upgrade_database
from switchyard_controlplane.repo import make_sessionmaker
from switchyard_controlplane.snapshot_builder import build_snapshot_from_engine

_ROWS = [
    "INSERT INTO organizations (id, name, policy, created_at) VALUES ('o1', 'acme', :policy, :now)",
    "INSERT INTO providers (id, slug, api_format, base_url, api_path, headers, timeout_seconds,"
    " connect_timeout_seconds, models, created_at, updated_at, auth_header)"
    " VALUES ('p1', 'up', 'openai', 'https://up.example', '', '{}', 600, 10, '[]', :now, :now, '')",
    "INSERT INTO models (id, name, capability, created_at) VALUES ('m1', 'chat', 'llm', :now)",
    "INSERT INTO model_targets (id, model_id, provider_id, upstream_model, priority, weight, position)"
    " VALUES ('t1', 'm1', 'p1', 'up-chat', 0, 1, 0)",
    "INSERT INTO prices (id, model_id, unit, per_million, currency)"
    " VALUES ('pr1', 'm1', 'input_token', 1.5, 'USD')",
    "INSERT INTO api_keys (id, name, org_id, key_hash, prefix, scopes, models, limits, created_at)"
    " VALUES ('k1', 'svc', 'o1', :hash, 'gk_abc', '[\"llm\"]', '[]', :limits, :now)",
]


def check_0003_upgrade(url: str) -> None:
    """Upgrade `url` to 0002, write rows the old code wrote, upgrade to head, and check
    that they read the same through the new schema."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0002")
        params = {
            "policy": json.dumps({"routing": "weighted"}),
            "hash": "a" * 64,
            "limits": json.dumps({"rpm": 60, "budget": {"amount": 5, "period": "day"}}),
            "now": "2026-11-01 00:00:00+00:00",
        }
        with engine.begin() as conn:
            for statement in _ROWS:
                conn.execute(text(statement), params)
        upgrade_database(url)
        upgrade_database(url)  # a second run is a no-op
        with engine.connect() as conn:
            price = conn.execute(text("SELECT model, unit, per_million, effective_from_ms FROM prices")).one()
            assert tuple(price) == ("chat", "input_token", 1.5, 0)
        with make_sessionmaker(engine)() as session:
            state = load_current_state(session, SecretBox("x"))
        assert state.providers["up"].enabled is True
        with engine.connect() as conn:
            epoch = conn.execute(text("SELECT breaker_epoch FROM providers")).scalar_one()
            assert len(epoch) == 12  # every existing provider gets its first epoch
        chat = state.models["chat"]
        assert (chat.routing, dict(chat.limits), chat.shadow, chat.max_output_tokens) == (None, {}, (), 4096)
        assert chat.targets == (("up", "up-chat", 0, 1, {}),)
        key = state.keys[("acme", "svc")]
        assert (key.enabled, key.allowed_ips, key.shadow) == (True, (), ())
        # The single-budget shorthand now lives in the budgets list.
        assert dict(key.limits) == {
            "rpm": 60,
            "budgets": [{"amount": 5, "currency": "USD", "period": "day"}],
        }
        snap = build_snapshot_from_engine(engine)
        assert snap.organizations[0].policy.routing == "weighted"
        assert [(b.amount, b.period) for b in snap.keys[0].limits.budgets] == [(5.0, "day")]
        assert [(p.model, p.per_million) for p in snap.prices] == [("chat", 1.5)]
        # The new unique key: the same (model, unit) may recur with another date only.
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO prices (id, model, unit, per_million, currency, effective_from_ms)"
                    " VALUES ('pr2', 'chat', 'input_token', 2, 'USD', 1000)"
                )
            )
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO prices (id, model, unit, per_million, currency, effective_from_ms)"
                        " VALUES ('pr3', 'chat', 'input_token', 3, 'USD', 1000)"
                    )
                )
        except Exception as exc:  # the driver's IntegrityError
            assert "unique" in str(exc).lower() or "duplicate" in str(exc).lower()
        else:
            raise AssertionError("a duplicate (model, unit, effective_from) price was accepted")
    finally:
        engine.dispose()


def test_0003_keeps_0002_rows_working_on_sqlite(sqlite_url: str) -> None:
    check_0003_upgrade(sqlite_url)
