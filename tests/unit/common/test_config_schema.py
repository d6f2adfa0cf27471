from pathlib import Path

import pytest
from switchyard_common.config_schema import load_config_file, parse_config
from switchyard_common.errors import ConfigError

VALID = """
organizations: [{name: acme}]
providers:
  - {slug: deepseek, api_format: openai, base_url: https://api.deepseek.com, api_key_env: DEEPSEEK_API_KEY}
models:
  - name: chat-default
    targets: [{provider: deepseek, model: deepseek-chat}]
prices:
  - {model: chat-default, unit: input_token, per_million: 0.27}
keys:
  - {name: billing, org: acme, value_env: BILLING_KEY, models: [chat-default], limits: {rpm: 600}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchyard.yaml"
    path.write_text(text)
    return path


def test_valid_document_resolves_key_values(tmp_path: Path) -> None:
    doc = load_config_file(_write(tmp_path, VALID), environ={"BILLING_KEY": "gk_" + "x" * 40})
    assert doc.keys[0].value == "gk_" + "x" * 40
    assert doc.models[0].targets[0].provider == "deepseek"


def _issues(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_file(
            _write(tmp_path, text), environ={"BILLING_KEY": "gk_" + "x" * 40} if environ is None else environ
        )
    return [str(issue) for issue in caught.value.issues]


def test_unknown_field_is_reported_with_file_and_path(tmp_path: Path) -> None:
    issues = _issues(tmp_path, VALID.replace("name: chat-default\n", "name: chat-default\n    colour: red\n"))
    assert issues == [f"{tmp_path / 'switchyard.yaml'}: models[0].colour: unknown field"]


def test_missing_provider_is_reported(tmp_path: Path) -> None:
    issues = _issues(tmp_path, VALID.replace("provider: deepseek", "provider: ghost"))
    assert any("models[0].targets[0].provider: unknown provider 'ghost'" in i for i in issues)


def test_bad_url_is_reported(tmp_path: Path) -> None:
    issues = _issues(tmp_path, VALID.replace("https://api.deepseek.com", "not a url"))
    assert any("providers[0].base_url" in i and "not an http(s) URL" in i for i in issues)


def test_unset_value_env_is_an_error(tmp_path: Path) -> None:
    issues = _issues(tmp_path, VALID, environ={})
    assert any("keys[0].value_env: environment variable BILLING_KEY is not set" in i for i in issues)


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    assert "invalid YAML" in _issues(tmp_path, "models: [unclosed")[0]
    with pytest.raises(ConfigError):
        parse_config(["not", "a", "mapping"])


def test_duplicates_and_dangling_key_references() -> None:
    doc = parse_config(
        {
            "organizations": [{"name": "a"}, {"name": "a"}],
            "keys": [{"name": "k", "org": "nobody", "models": ["nothing"]}],
        }
    )
    messages = [str(i) for i in doc.reference_issues()]
    assert "organizations[1].name: duplicate name 'a'" in messages
    assert "keys[0].org: unknown organization 'nobody'" in messages
    assert "keys[0].models[0]: unknown model 'nothing'" in messages
    # References to things that already exist in the store are fine.
    known = doc.reference_issues(known_orgs={"nobody"}, known_models={"nothing"})
    assert [str(i) for i in known] == ["organizations[1].name: duplicate name 'a'"]


def _provider_auth(value: str) -> dict[str, object]:
    return {
        "providers": [
            {"slug": "up", "api_format": "openai", "base_url": "https://up.example", "auth_header": value}
        ]
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [("", ""), ("bearer", "bearer"), ("Bearer", "bearer"), (" NONE ", "none"), ("X-Api-Key", "X-Api-Key")],
)
def test_auth_header_accepts_styles_and_header_names(given: str, stored: str) -> None:
    assert parse_config(_provider_auth(given)).providers[0].auth_header == stored


def test_auth_header_defaults_to_the_formats_own() -> None:
    doc = parse_config(
        {"providers": [{"slug": "up", "api_format": "gemini", "base_url": "https://g.example"}]}
    )
    assert doc.providers[0].auth_header == ""


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("X Api Key", "not a valid HTTP header name"),
        ("x-api-key:", "not a valid HTTP header name"),
        ("clé", "not a valid HTTP header name"),
        ("Content-Length", "cannot carry the credential"),
        ("host", "cannot carry the credential"),
    ],
)
def test_bad_auth_header_is_reported_with_its_path(given: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_provider_auth(given))
    [issue] = caught.value.issues
    assert issue.path == "providers[0].auth_header" and message in issue.message
