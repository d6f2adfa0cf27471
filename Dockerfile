# syntax=docker/dockerfile:1
# One image for every tier: the command picks the tier, e.g.
#   docker run IMAGE serve dataplane | serve controlplane | serve ingest | migrate
# Built and validated without a Docker engine by scripts/deploy_check.sh (hadolint and
# deploy/tools/check_docker_context.py); see docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its dependencies into a self-contained venv ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# README.m[d] is a glob so the build does not depend on the README existing;
# pyproject.toml always matches, which keeps COPY from failing.
COPY pyproject.toml README.m[d] ./
COPY libs ./libs
COPY services ./services
# Every dependency ships manylinux wheels, so no compiler is needed even here. The
# installer itself leaves the venv afterwards: the runtime image gets no pip.
RUN pip install . \
    && pip uninstall --yes pip setuptools

# ---- runtime: the venv only, no build context, no installer, unprivileged user ----
FROM ${PYTHON_IMAGE} AS runtime

ARG UID=10001
ARG GID=10001

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SWITCHYARD_CONTROLPLANE_HOST=0.0.0.0 \
    SWITCHYARD_GRPC_HOST=0.0.0.0 \
    SWITCHYARD_DATAPLANE_HOST=0.0.0.0 \
    SWITCHYARD_INGEST_HOST=0.0.0.0 \
    SWITCHYARD_STATE_DIR=/var/lib/switchyard

# The base image's pip/setuptools/wheel are build tools the gateway never uses.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && groupadd --system --gid "${GID}" switchyard \
    && useradd --system --uid "${UID}" --gid switchyard --home-dir /var/lib/switchyard \
       --no-create-home --shell /usr/sbin/nologin switchyard \
    && mkdir -p /var/lib/switchyard \
    && chown switchyard:switchyard /var/lib/switchyard

COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 deploy/docker/healthcheck.py /usr/local/bin/switchyard-healthcheck

WORKDIR /var/lib/switchyard
USER ${UID}:${GID}

# data plane, control plane HTTP, ingest health/metrics, control plane gRPC
EXPOSE 8080 8081 8082 50051
VOLUME ["/var/lib/switchyard"]

# Probes /readyz of whichever tier PID 1 serves; containers that run `migrate` or
# another one-shot command report healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["switchyard-healthcheck"]

ENTRYPOINT ["switchyard"]
CMD ["--help"]
