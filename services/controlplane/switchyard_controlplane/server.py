"""Run the control plane: migrations, bootstrap, snapshot hub, gRPC and the admin API,
all inside the caller's event loop until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn
from switchyard_common.config_schema import ConfigDocument
from switchyard_common.db import make_engine
from switchyard_common.serving import QuietServer, bind_socket
from switchyard_common.tracing import configure_tracing, flush_tracing

from .app import create_app
from .audit_purge import AuditPurger
from .bootstrap import bootstrap_admin
from .config_apply import ApplyResult, apply_document
from .grpc_server import start_grpc_server
from .migrate import upgrade_database
from .settings import ControlPlaneSettings
from .snapshot_hub import SnapshotHub

__all__ = ["apply_document", "serve"]

log = logging.getLogger(__name__)

_GRPC_GRACE_SECONDS = 2.0


async def serve(
    settings: ControlPlaneSettings,
    *,
    bootstrap: ConfigDocument | None = None,
    ready: asyncio.Event | None = None,
    on_bootstrap: Callable[[ApplyResult], None] | None = None,
) -> None:
    """Run until cancelled. `bootstrap` is applied like `POST /config/apply` (its result,
    including generated key values, goes to `on_bootstrap`); `ready` is set once both
    the admin API and gRPC are listening."""
    if not settings.secret_key:
        raise ValueError("SWITCHYARD_SECRET_KEY must be set: it encrypts provider credentials")
    configure_tracing("switchyard-controlplane")
    if settings.auto_migrate:
        await asyncio.to_thread(upgrade_database, settings.database_url)
    engine = make_engine(settings.database_url)
    hub: SnapshotHub | None = None
    purger: AuditPurger | None = None
    grpc_server = None
    try:
        await asyncio.to_thread(bootstrap_admin, engine, settings)
        if bootstrap is not None:
            result = await asyncio.to_thread(apply_document, engine, settings, bootstrap)
            log.info("bootstrap config applied: changed=%s version=%d", result.changed, result.version)
            for warning in result.warnings:
                log.warning("price check: %s", warning.message)
            if on_bootstrap is not None:
                on_bootstrap(result)
        hub = SnapshotHub(engine, poll_interval=settings.snapshot_poll_interval)
        await hub.start()
        if settings.audit_purge_interval > 0:
            purger = AuditPurger(engine, settings.audit_purge_interval)
            purger.start()
        grpc_server = await start_grpc_server(hub, host=settings.grpc_host, port=settings.grpc_port)
        sock = bind_socket(settings.controlplane_host, settings.controlplane_port)
        config = uvicorn.Config(
            create_app(settings, engine, hub),
            loop="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
        server = QuietServer(config)
        http_task = asyncio.create_task(server.serve(sockets=[sock]), name="controlplane-http")
        try:
            while not server.started and not http_task.done():
                await asyncio.sleep(0.02)
            if http_task.done():
                http_task.result()
                raise RuntimeError("admin API server stopped during start-up")
            log.info(
                "control plane listening: http %s:%d, grpc %s:%d",
                settings.controlplane_host,
                settings.controlplane_port,
                settings.grpc_host,
                settings.grpc_port,
            )
            if ready is not None:
                ready.set()
            # asyncio.wait does not cancel http_task when we are cancelled.
            await asyncio.wait([http_task])
            http_task.result()
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait([http_task], timeout=10)
            sock.close()
    finally:
        if purger is not None:
            await purger.stop()
        if hub is not None:
            await hub.stop()
        if grpc_server is not None:
            await grpc_server.stop(_GRPC_GRACE_SECONDS)
        engine.dispose()
        await asyncio.to_thread(flush_tracing)
