"""deploy/compose/.env.example names every variable docker-compose.yml interpolates, so
`cp .env.example .env` (the README's first step) leaves nothing unset or unexplained."""

from __future__ import annotations

import re

from .tooling import COMPOSE_FILE, ENV_EXAMPLE, ROOT

# ${NAME}, ${NAME:-default}, ${NAME:?message}; `$$` is the container's own shell.
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")


def _interpolated() -> dict[str, set[str]]:
    """Variable -> the operators it is used with ('' plain, ':-' default, ':?' required)."""
    found: dict[str, set[str]] = {}
    for name, operator in _INTERPOLATION.findall(COMPOSE_FILE.read_text()):
        found.setdefault(name, set()).add(operator[:2])
    return found


def _env_example() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            entries[name.strip()] = value.strip()
    return entries


def test_env_example_covers_every_compose_variable() -> None:
    used, example = _interpolated(), _env_example()
    assert {"SWITCHYARD_SECRET_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= set(used)
    missing = sorted(set(used) - set(example))
    assert not missing, f".env.example lacks {missing}"
    unused = sorted(set(example) - set(used))
    assert not unused, f".env.example sets variables the compose file never reads: {unused}"


def test_secrets_are_required_and_must_be_changed() -> None:
    used, example = _interpolated(), _env_example()
    required = {name for name, operators in used.items() if ":?" in operators}
    assert {"SWITCHYARD_SECRET_KEY", "POSTGRES_PASSWORD", "SWITCHYARD_ADMIN_PASSWORD"} <= required
    for name in required:
        if "PASSWORD" in name or "SECRET" in name:
            assert example[name] == "CHANGE_ME", name
    assert "cp .env.example .env" in (ROOT / "README.md").read_text()


def test_interpolation_parser_sees_every_form() -> None:
    text = "a: ${PLAIN}\nb: ${WITH_DEFAULT:-x}\nc: ${REQ:?set it}\nd: $${SHELL_VAR}\n"
    found = {name: op[:2] for name, op in _INTERPOLATION.findall(text)}
    assert found == {"PLAIN": "", "WITH_DEFAULT": ":-", "REQ": ":?"}
