# syntax=docker/dockerfile:1
# One image for every tier: the command picks the tier, e.g.
#   docker run IMAGE serve dataplane | serve controlplane | serve ingest | migrate

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
RUN pip install .

# ---- runtime: the venv only, no build context, run as an unprivileged user ----
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

RUN groupadd --system --gid "${GID}" switchyard \
    && useradd --system --uid "${UID}" --gid switchyard --home-dir /var/lib/switchyard \
       --no-create-home --shell /usr/sbin/nologin switchyard \
    && mkdir -p /var/lib/switchyard \
    && chown switchyard:switchyard /var/lib/switchyard

COPY --from=build /opt/venv /opt/venv

WORKDIR /var/lib/switchyard
USER ${UID}:${GID}

# data plane, control plane HTTP, ingest health/metrics, control plane gRPC
EXPOSE 8080 8081 8082 50051
VOLUME ["/var/lib/switchyard"]

ENTRYPOINT ["switchyard"]
CMD ["--help"]
