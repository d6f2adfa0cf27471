#!/usr/bin/env bash
# Install VictoriaMetrics from Debian's packages if it is missing (the time-series store
# the usage-ingest tests and bench write to). Tests start their own instance on a spare
# port with a throwaway -storageDataPath; nothing is started here.
set -euo pipefail

if command -v victoria-metrics >/dev/null 2>&1; then
    victoria-metrics -version 2>/dev/null | head -n 1 || true
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install_victoria_metrics: victoria-metrics is missing; run as root (apt-get install victoria-metrics)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics >/dev/null
# The package's service is not wanted: tests and the bench start their own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet victoria-metrics 2>/dev/null; then
    systemctl stop victoria-metrics || true
fi
victoria-metrics -version 2>/dev/null | head -n 1 || true
