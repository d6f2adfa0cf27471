from datetime import timedelta

import pytest
from switchyard_cli.bootstrap import QUICKSTART_MODEL, default_document, merge_documents
from switchyard_cli.client import CliError
from switchyard_cli.commands import parse_since
from switchyard_cli.state import StateDir
from switchyard_common.config_schema import parse_config

KEY = "gk_" + "q" * 43


def test_defaults_have_the_mock_model_and_quickstart_key() -> None:
    doc = default_document(KEY, environ={})
    assert [m.name for m in doc.models] == [QUICKSTART_MODEL]
    assert doc.providers[0].api_format == "mock"
    assert doc.keys[0].value == KEY
    assert doc.reference_issues() == []


def test_presets_appear_only_with_their_api_key() -> None:
    doc = default_document(KEY, environ={"DEEPSEEK_API_KEY": "sk-x"})
    assert {p.slug for p in doc.providers} == {"mock", "deepseek"}
    assert "deepseek-chat" in {m.name for m in doc.models}
    doc = default_document(KEY, environ={"DASHSCOPE_API_KEY": "sk-y"})
    assert {p.slug for p in doc.providers} == {"mock", "dashscope"}


def test_user_config_wins_over_defaults() -> None:
    user = parse_config(
        {
            "providers": [{"slug": "mock", "api_format": "mock", "models": ["other"]}],
            "models": [{"name": "mine", "targets": [{"provider": "mock", "model": "x"}]}],
        }
    )
    merged = merge_documents(default_document(KEY, environ={}), user)
    assert [p.models for p in merged.providers] == [["other"]]
    assert {m.name for m in merged.models} == {QUICKSTART_MODEL, "mine"}


def test_merge_keeps_every_entry_of_a_price_schedule() -> None:
    def prices(*entries: dict[str, object]):  # type: ignore[no-untyped-def]
        doc = {"prices": [{"model": QUICKSTART_MODEL, "unit": "input_token", **e} for e in entries]}
        return parse_config(doc)

    base = merge_documents(default_document(KEY, environ={}), prices({"per_million": 1}))
    user = prices({"per_million": 2}, {"per_million": 3, "effective_from": "2030-01-01"})
    merged = merge_documents(base, user)
    assert sorted(p.per_million for p in merged.prices) == [2, 3]
    assert merged.reference_issues() == []


def test_state_dir_keeps_secrets_stable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = StateDir(tmp_path / "state")
    state.ensure()
    assert state.quickstart_key() == state.quickstart_key()
    assert state.secret_key(None) == state.secret_key(None)
    assert state.secret_key("from-env") == "from-env"
    creds = state.admin_credentials(None, None)
    assert state.admin_credentials(None, None) == creds == state.stored_admin_credentials()
    assert oct((tmp_path / "state" / "admin.json").stat().st_mode & 0o777) == "0o600"


def test_parse_since() -> None:
    assert parse_since("90m") == timedelta(minutes=90)
    assert parse_since("7d") == timedelta(days=7)
    with pytest.raises(CliError):
        parse_since("soon")
