"""The Helm chart: helm lint / template, kubernetes-validate, yamllint, and what the
rendered manifests must contain (probes, hook Job, HPA, PDB, wiring between objects)."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .tooling import CHART, YAMLLINT_CONFIG, Tools, by_kind, check, find_tools, helm_template, load_docs, run

ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
EXISTING_SECRET = CHART / "ci" / "existing-secret-values.yaml"
TIERS = ("controlplane", "dataplane", "ingest")
PREFIX = "switchyard-"  # release "switchyard" + chart "switchyard" collapse to one word


@pytest.fixture(scope="module")
def tools() -> Tools:
    return find_tools()


@pytest.fixture(scope="module")
def rendered(tools: Tools) -> dict[str, str]:
    return {
        "defaults": helm_template(tools),
        "all-features": helm_template(tools, "-f", ALL_FEATURES),
        "existing-secret": helm_template(tools, "-f", EXISTING_SECRET),
    }


@pytest.fixture(scope="module")
def default_docs(rendered: dict[str, str]) -> list[dict[str, Any]]:
    return load_docs(rendered["defaults"])


@pytest.fixture(scope="module")
def full_docs(rendered: dict[str, str]) -> list[dict[str, Any]]:
    return load_docs(rendered["all-features"])


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e}


# ---- validators ------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, ALL_FEATURES, EXISTING_SECRET], ids=["defaults", "all", "existing"])
def test_helm_lint_strict(tools: Tools, values: Path | None) -> None:
    extra: list[str | Path] = ["-f", values] if values else []
    check(tools.helm, "lint", "--strict", CHART, *extra)


@pytest.mark.parametrize("case", ["defaults", "all-features", "existing-secret"])
def test_rendered_manifests_pass_kubernetes_validate_and_yamllint(
    tools: Tools, rendered: dict[str, str], case: str, tmp_path: Path
) -> None:
    manifest = tmp_path / f"{case}.yaml"
    manifest.write_text(rendered[case])
    for version in ("1.25.0", "1.37.0"):
        output = check(tools.kubernetes_validate, "--strict", "--quiet", "-k", version, manifest)
        assert unvalidated_kinds(output) <= OPERATOR_KINDS, output
    check(tools.yamllint, "--strict", "-c", YAMLLINT_CONFIG, manifest)


# kubernetes-validate knows the core API only; it warns and exits 0 on any other kind
# or apiVersion (a typo too), so only the Prometheus Operator's CRDs may go unvalidated.
OPERATOR_KINDS = {
    ("ServiceMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
}


def unvalidated_kinds(output: str) -> set[tuple[str, str]]:
    return set(re.findall(r"Couldn't find schema for kind (\S+) with api version (\S+)", output))


def test_kubernetes_validate_only_warns_on_an_unknown_api_version(tools: Tools, tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("apiVersion: autoscaling/v3\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n")
    output = check(tools.kubernetes_validate, "--strict", "--quiet", typo)
    assert unvalidated_kinds(output) == {("HorizontalPodAutoscaler", "autoscaling/v3")}


def test_kubernetes_validate_rejects_an_unknown_field(tools: Tools, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  portz: []\n")
    result = run(tools.kubernetes_validate, "--strict", "--quiet", broken)
    assert result.returncode != 0


def test_helm_lint_fails_on_a_broken_template(tools: Tools, tmp_path: Path) -> None:
    chart = tmp_path / "switchyard"
    shutil.copytree(CHART, chart)
    hpa = chart / "templates" / "hpa.yaml"
    hpa.write_text(hpa.read_text().replace("{{- end }}\n{{- end }}", "{{- end }}", 1))
    assert run(tools.helm, "lint", "--strict", chart).returncode != 0


def test_database_url_is_required_without_existing_secret(tools: Tools) -> None:
    result = run(tools.helm, "template", "switchyard", CHART, "--set", "database.url=")
    assert result.returncode != 0
    assert "database.url is required" in result.stderr


# ---- what the default render contains ------------------------------------------------------


def test_one_deployment_per_tier_running_its_command(default_docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(default_docs, "Deployment")
    assert set(deployments) == {PREFIX + t for t in TIERS}
    for tier in TIERS:
        container = _container(deployments[PREFIX + tier])
        assert container["args"] == ["serve", tier]
    assert deployments[PREFIX + "controlplane"]["spec"]["replicas"] == 2
    # HPA owns the replica count of autoscaled tiers.
    assert "replicas" not in deployments[PREFIX + "dataplane"]["spec"]
    assert "replicas" not in deployments[PREFIX + "ingest"]["spec"]


def test_probes_hit_healthz_and_readyz_on_a_declared_port(default_docs: list[dict[str, Any]]) -> None:
    for name, deployment in by_kind(default_docs, "Deployment").items():
        container = _container(deployment)
        ports = {p["name"] for p in container["ports"]}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ports, (name, probe)


def test_pods_run_as_non_root_with_read_only_root(default_docs: list[dict[str, Any]]) -> None:
    pods = [d["spec"]["template"]["spec"] for d in default_docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 4
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(default_docs: list[dict[str, Any]]) -> None:
    (job,) = by_kind(default_docs, "Job").values()
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"] == ["migrate"]
    # Hook Jobs run before regular resources exist: the Secret they read must be a hook
    # created earlier (lower weight), not a regular resource.
    (secret_name,) = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
    secret = by_kind(default_docs, "Secret")[secret_name]
    secret_hooks = set(secret["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks <= secret_hooks
    job_weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < job_weight
    assert "SWITCHYARD_DATABASE_URL" in secret["data"]
    assert "serviceAccountName" not in pod, "the release ServiceAccount does not exist yet at pre-install"


def test_hpa_for_dataplane_and_ingest_only(default_docs: list[dict[str, Any]]) -> None:
    hpas = by_kind(default_docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {PREFIX + "dataplane", PREFIX + "ingest"}
    deployments = by_kind(default_docs, "Deployment")
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert name in deployments
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_pdb_and_service_selectors_match_their_pods(default_docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(default_docs, "Deployment")
    pdbs = by_kind(default_docs, "PodDisruptionBudget")
    services = by_kind(default_docs, "Service")
    assert set(pdbs) == set(deployments) == set(services)
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert services[name]["spec"]["selector"].items() <= labels.items()
        port_names = {p["name"] for p in _container(deployment)["ports"]}
        for port in services[name]["spec"]["ports"]:
            assert port["targetPort"] in port_names, (name, port)


def test_config_points_tiers_at_each_other(default_docs: list[dict[str, Any]]) -> None:
    (config,) = by_kind(default_docs, "ConfigMap").values()
    data = config["data"]
    for var in ("CONTROLPLANE_HOST", "GRPC_HOST", "DATAPLANE_HOST", "INGEST_HOST"):
        assert data[f"SWITCHYARD_{var}"] == "0.0.0.0"
    host, port = data["SWITCHYARD_CONTROLPLANE_GRPC"].split(":")
    grpc = {p["name"]: p["port"] for p in by_kind(default_docs, "Service")[host]["spec"]["ports"]}
    assert grpc["grpc"] == int(port)
    assert data["SWITCHYARD_AUTO_MIGRATE"] == "false", "the hook Job migrates, not every replica"
    assert data["SWITCHYARD_NATS_URL"].startswith("nats://")


def test_each_tier_mounts_only_the_secret_keys_it_needs(default_docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(default_docs, "Deployment")
    secret = next(iter(by_kind(default_docs, "Secret").values()))
    refs = {tier: _secret_refs(_container(deployments[PREFIX + tier])) for tier in TIERS}
    assert {"SWITCHYARD_SECRET_KEY", "SWITCHYARD_DATABASE_URL", "SWITCHYARD_ADMIN_PASSWORD"} <= set(
        refs["controlplane"]
    )
    assert "SWITCHYARD_SECRET_KEY" in refs["dataplane"]
    assert "SWITCHYARD_DATABASE_URL" not in refs["dataplane"]
    assert set(refs["ingest"]) == {"SWITCHYARD_DATABASE_URL"}
    for tier_refs in refs.values():
        for ref in tier_refs.values():
            assert ref["name"] == secret["metadata"]["name"]
            assert ref.get("optional") or ref["key"] in secret["data"], ref
    url = base64.b64decode(secret["data"]["SWITCHYARD_DATABASE_URL"]).decode()
    assert url.startswith("postgresql://")


def test_optional_features_are_off_by_default(default_docs: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in default_docs}
    assert "ServiceMonitor" not in kinds
    assert "NetworkPolicy" not in kinds


# ---- optional features -----------------------------------------------------------------------


def test_service_monitors_scrape_metrics_of_every_tier(full_docs: list[dict[str, Any]]) -> None:
    monitors = by_kind(full_docs, "ServiceMonitor")
    services = by_kind(full_docs, "Service")
    assert set(monitors) == {PREFIX + t for t in TIERS}
    for name, monitor in monitors.items():
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in services[name]["spec"]["ports"]}
        service_labels = services[name]["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


def _egress_ports(policy: dict[str, Any]) -> set[int | str]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}


def test_network_policies_allow_only_what_each_tier_needs(full_docs: list[dict[str, Any]]) -> None:
    policies = by_kind(full_docs, "NetworkPolicy")
    assert set(policies) == {PREFIX + t for t in (*TIERS, "migrate")}
    dataplane, ingest = policies[PREFIX + "dataplane"], policies[PREFIX + "ingest"]
    controlplane_pod = by_kind(full_docs, "Deployment")[PREFIX + "controlplane"]["spec"]["template"]
    cp_labels = controlplane_pod["metadata"]["labels"]

    assert {50051, 4222, 6379, 443, 8000, 53} <= _egress_ports(dataplane)
    assert 5432 not in _egress_ports(dataplane), "the data plane never reaches Postgres"
    grpc_rule = next(r for r in dataplane["spec"]["egress"] if r["ports"][0]["port"] == 50051)
    assert grpc_rule["to"][0]["podSelector"]["matchLabels"].items() <= cp_labels.items()

    assert {4222, 5432, 8428, 53} <= _egress_ports(ingest)
    assert 6379 not in _egress_ports(ingest)
    assert 443 not in _egress_ports(ingest)

    controlplane = policies[PREFIX + "controlplane"]
    grpc_in = next(r for r in controlplane["spec"]["ingress"] if r["ports"][0]["port"] == "grpc")
    (peer,) = grpc_in["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "dataplane"
    assert _egress_ports(policies[PREFIX + "migrate"]) == {53, 5432}


def test_network_policy_defaults_open_the_data_plane_and_keep_grpc_to_data_planes(tools: Tools) -> None:
    """networkPolicy.enabled with no peer lists: the data plane API (and the control-plane
    admin API) answer anyone in the cluster; gRPC answers only the release's data planes."""
    docs = load_docs(helm_template(tools, "--set", "networkPolicy.enabled=true"))
    policies = by_kind(docs, "NetworkPolicy")
    deployments = by_kind(docs, "Deployment")
    (dp_http,) = policies[PREFIX + "dataplane"]["spec"]["ingress"]
    assert dp_http["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert "from" not in dp_http, "no `from`: every source may call the data plane"
    rules = policies[PREFIX + "controlplane"]["spec"]["ingress"]
    http_in = next(r for r in rules if r["ports"][0]["port"] == "http")
    grpc_in = next(r for r in rules if r["ports"][0]["port"] == "grpc")
    assert "from" not in http_in
    (peer,) = grpc_in["from"]
    assert set(peer) == {"podSelector"}, "same namespace only: no namespaceSelector or ipBlock"
    selector = peer["podSelector"]["matchLabels"]
    for tier, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert (selector.items() <= labels.items()) == (tier == PREFIX + "dataplane"), tier
    # The gRPC port the rule names is the one the control plane's container listens on.
    cp_ports = {
        p["name"]: p["containerPort"] for p in _container(deployments[PREFIX + "controlplane"])["ports"]
    }
    grpc_out = next(
        r
        for r in policies[PREFIX + "dataplane"]["spec"]["egress"]
        if r["ports"][0]["port"] == cp_ports["grpc"]
    )
    (to,) = grpc_out["to"]
    cp_labels = deployments[PREFIX + "controlplane"]["spec"]["template"]["metadata"]["labels"]
    assert set(to) == {"podSelector"} and to["podSelector"]["matchLabels"].items() <= cp_labels.items()


def test_existing_secret_replaces_the_chart_secret(rendered: dict[str, str]) -> None:
    docs = load_docs(rendered["existing-secret"])
    kinds = {d["kind"] for d in docs}
    assert "Secret" not in kinds
    assert "Job" not in kinds, "migration.enabled=false drops the hook"
    assert "HorizontalPodAutoscaler" not in kinds
    deployments = by_kind(docs, "Deployment")
    assert deployments[PREFIX + "dataplane"]["spec"]["replicas"] == 3
    for deployment in deployments.values():
        for ref in _secret_refs(_container(deployment)).values():
            assert ref["name"] == "switchyard-credentials"
    (config,) = by_kind(docs, "ConfigMap").values()
    assert config["data"]["SWITCHYARD_AUTO_MIGRATE"] == "true"
