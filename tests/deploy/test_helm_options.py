"""Helm chart options beyond the defaults: provider-key Secrets, Redis for the control
plane, tracing, HPA extras, least-privilege migration Job, pod hardening, and a
values file in ci/ that turns every option on."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import yaml

from .tooling import CHART, ROOT, Tools, by_kind, find_tools, helm_template, load_docs, run

ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
EXISTING_SECRET = CHART / "ci" / "existing-secret-values.yaml"
PREFIX = "switchyard-"
TIERS = ("controlplane", "dataplane", "ingest")


@pytest.fixture(scope="module")
def tools() -> Tools:
    return find_tools()


@pytest.fixture(scope="module")
def defaults(tools: Tools) -> list[dict[str, Any]]:
    return load_docs(helm_template(tools))


@pytest.fixture(scope="module")
def full(tools: Tools) -> list[dict[str, Any]]:
    return load_docs(helm_template(tools, "-f", ALL_FEATURES))


@pytest.fixture(scope="module")
def existing(tools: Tools) -> list[dict[str, Any]]:
    return load_docs(helm_template(tools, "-f", EXISTING_SECRET))


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = doc["spec"]["template"]["spec"]
    return pod


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(doc)["containers"]
    return container


def _secret_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e}


def _env_from_secrets(container: dict[str, Any]) -> list[str]:
    return [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]


def _egress_ports(policy: dict[str, Any]) -> set[int | str]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


def test_provider_keys_go_to_the_data_plane_only(full: list[dict[str, Any]]) -> None:
    values = yaml.safe_load(ALL_FEATURES.read_text())["secrets"]["providerKeys"]
    secrets = by_kind(full, "Secret")
    keys_secret = secrets[PREFIX + "provider-keys"]
    assert "helm.sh/hook" not in keys_secret["metadata"].get("annotations", {})
    decoded = {k: base64.b64decode(v).decode() for k, v in keys_secret["data"].items()}
    assert decoded == values
    deployments = by_kind(full, "Deployment")
    dataplane = deployments[PREFIX + "dataplane"]
    assert PREFIX + "provider-keys" in _env_from_secrets(_container(dataplane))
    # The pods roll when a key changes: env is read at start.
    assert "checksum/provider-keys" in dataplane["spec"]["template"]["metadata"]["annotations"]
    for tier in ("controlplane", "ingest"):
        assert PREFIX + "provider-keys" not in _env_from_secrets(_container(deployments[PREFIX + tier]))
    assert "provider-keys" not in str(by_kind(full, "Job"))


def test_existing_provider_keys_secret_wins(
    existing: list[dict[str, Any]], defaults: list[dict[str, Any]]
) -> None:
    assert "Secret" not in {d["kind"] for d in existing}
    dataplane = by_kind(existing, "Deployment")[PREFIX + "dataplane"]
    assert _env_from_secrets(_container(dataplane)) == ["provider-keys"]
    assert "checksum/provider-keys" not in dataplane["spec"]["template"]["metadata"]["annotations"]
    # Without provider keys the data plane reads no extra Secret.
    plain = by_kind(defaults, "Deployment")[PREFIX + "dataplane"]
    assert _env_from_secrets(_container(plain)) == []


def test_provider_key_names_must_be_environment_variables(tools: Tools) -> None:
    result = run(tools.helm, "template", "switchyard", CHART, "--set", "secrets.providerKeys.bad-name=x")
    assert result.returncode != 0
    assert "is not an environment variable name" in result.stderr


def test_redis_is_shared_by_data_plane_and_control_plane(
    defaults: list[dict[str, Any]], full: list[dict[str, Any]]
) -> None:
    deployments = by_kind(defaults, "Deployment")
    for tier in ("controlplane", "dataplane"):
        ref = _secret_env(_container(deployments[PREFIX + tier]))["SWITCHYARD_REDIS_URL"]
        assert ref["key"] == "SWITCHYARD_REDIS_URL"
    assert "SWITCHYARD_REDIS_URL" not in _secret_env(_container(deployments[PREFIX + "ingest"]))
    (config,) = by_kind(defaults, "ConfigMap").values()
    assert config["data"]["SWITCHYARD_REDIS_PREFIX"] == "sy:"
    policies = by_kind(full, "NetworkPolicy")
    assert 6379 in _egress_ports(policies[PREFIX + "controlplane"])
    assert 6379 in _egress_ports(policies[PREFIX + "dataplane"])


def test_tracing_endpoint_reaches_every_tier(
    full: list[dict[str, Any]], defaults: list[dict[str, Any]]
) -> None:
    config = by_kind(full, "ConfigMap")[PREFIX.rstrip("-")]
    endpoint = yaml.safe_load(ALL_FEATURES.read_text())["tracing"]["otlpEndpoint"]
    assert config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    assert config["data"]["SWITCHYARD_TIMESERIES_URL"] == "http://victoriametrics:8428"
    policies = by_kind(full, "NetworkPolicy")
    for tier in TIERS:
        assert 4318 in _egress_ports(policies[PREFIX + tier]), tier
    assert 4318 not in _egress_ports(policies[PREFIX + "migrate"])
    (default_config,) = by_kind(defaults, "ConfigMap").values()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in default_config["data"]


def test_hpa_takes_extra_metrics_and_behavior(full: list[dict[str, Any]]) -> None:
    hpas = by_kind(full, "HorizontalPodAutoscaler")
    dataplane, ingest = hpas[PREFIX + "dataplane"], hpas[PREFIX + "ingest"]
    assert [m["type"] for m in dataplane["spec"]["metrics"]] == ["Resource", "Resource", "Pods"]
    assert dataplane["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert dataplane["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    external = ingest["spec"]["metrics"][-1]["external"]
    assert external["metric"]["name"] == "switchyard_ingest_pending_events"


def test_migration_job_reads_only_the_database_url(defaults: list[dict[str, Any]]) -> None:
    (job,) = by_kind(defaults, "Job").values()
    container = _container(job)
    assert "envFrom" not in container
    assert set(_secret_env(container)) == {"SWITCHYARD_DATABASE_URL"}


def test_every_pod_is_hardened_with_resources(full: list[dict[str, Any]]) -> None:
    workloads = [d for d in full if d["kind"] in ("Deployment", "Job")]
    assert len(workloads) == 4
    for doc in workloads:
        pod = _pod(doc)
        name = doc["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        container = _container(doc)
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
        # Writable paths are emptyDirs (or the data plane's state volume source).
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in container["volumeMounts"]:
            assert "emptyDir" in volumes[mount["name"]], (name, mount)
        if doc["kind"] == "Deployment":
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/var/lib/switchyard"}


def test_all_features_values_set_every_optional_value() -> None:
    """Every value whose default is off or empty is set by some ci/*-values.yaml, so the
    rendered-manifest checks cover every template branch."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    covered: set[str] = set()
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        covered |= set(_leaves(yaml.safe_load(path.read_text())))
    # Overrides that only rename objects, and hardening that is off by design.
    exempt = {
        "nameOverride",
        "fullnameOverride",
        "serviceAccount.name",
        "securityContext.allowPrivilegeEscalation",
    }
    optional = {path for path, value in _leaves(defaults).items() if value in ("", [], {}, False, None)}
    missing = sorted(
        p for p in optional - exempt if not any(c == p or c.startswith(p + ".") for c in covered)
    )
    assert not missing, f"no ci values file sets: {missing}"


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_leaves(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}


def test_chart_readme_documents_every_top_level_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    undocumented = [key for key in values if f"`{key}" not in readme]
    assert not undocumented, undocumented


def test_prometheus_rule_alerts_on_real_metrics_as_documented(full: list[dict[str, Any]]) -> None:
    from .dashboard import metric_names
    from .test_dashboard import defined_metrics

    (rule,) = by_kind(full, "PrometheusRule").values()
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    (group,) = rule["spec"]["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    for name, body in rules.items():
        assert body["labels"]["severity"] in {"critical", "warning", "info"}, name
        if name != "SwitchyardLimiterRefusals":  # the values file's extra rule
            assert body["annotations"]["summary"], name
            # Every selector is scoped to the release namespace.
            selectors = re.findall(r"\{([^}]*)\}", body["expr"].replace("{{", "").replace("}}", ""))
            assert selectors and all('namespace="switchyard"' in s for s in selectors), (name, body["expr"])
    names = metric_names([r["expr"] for r in rules.values()])
    assert not names - defined_metrics() - {"up"}, sorted(names - defined_metrics() - {"up"})
    assert "0.05" in rules["SwitchyardDataPlaneErrors"]["expr"]
    # The alerts docs/operations.md lists are exactly the chart's.
    operations = (ROOT / "docs" / "operations.md").read_text()
    section = operations[operations.index("## What to alert on") :]
    documented = set(re.findall(r"^\| `(Switchyard\w+)` \|", section, flags=re.MULTILINE))
    assert documented == set(rules) - {"SwitchyardLimiterRefusals"}


def test_grafana_dashboard_configmap_ships_the_compose_dashboard(full: list[dict[str, Any]]) -> None:
    maps = by_kind(full, "ConfigMap")
    dashboards = maps[PREFIX + "dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboards["metadata"]["annotations"] == {"grafana_folder": "Switchyard"}
    compose_copy = ROOT / "deploy" / "compose" / "grafana" / "dashboards"
    shipped = {name: json.loads(text) for name, text in dashboards["data"].items()}
    expected = {p.name: json.loads(p.read_text()) for p in compose_copy.glob("*.json")}
    assert shipped == expected, "deploy/helm/switchyard/dashboards must equal the compose dashboards"
    assert (CHART / "dashboards" / "switchyard-overview.json").read_bytes() == (
        compose_copy / "switchyard-overview.json"
    ).read_bytes()


def test_monitoring_objects_are_off_by_default(defaults: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in defaults}
    assert "PrometheusRule" not in kinds
    assert set(by_kind(defaults, "ConfigMap")) == {PREFIX.rstrip("-")}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dataplane.replicas=3", "Additional property replicas is not allowed"),
        ("networkPolicy.enable=true", "Additional property enable is not allowed"),
        ("database.url=mysql://db/switchyard", "database.url: Does not match pattern"),
        ("dataplane.service.type=Ingress", "dataplane.service.type"),
    ],
)
def test_values_schema_rejects_typos_and_wrong_values(tools: Tools, setting: str, message: str) -> None:
    result = run(tools.helm, "template", "switchyard", CHART, "--set", setting)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
