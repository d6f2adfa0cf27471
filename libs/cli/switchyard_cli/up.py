"""`switchyard up`: the three tiers in one process on embedded defaults.

Same code paths as split mode: the data plane pulls its snapshot from the control
plane over gRPC and publishes usage events; only the bus (in-process instead of NATS),
the database (SQLite) and the counters (in memory) differ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path

from switchyard_common.bus import InProcessBus
from switchyard_common.config_schema import ConfigDocument, load_config_file
from switchyard_common.db import make_engine
from switchyard_common.errors import ConfigError
from switchyard_common.tracing import configure_tracing

from .bootstrap import QUICKSTART_MODEL, default_document, merge_documents
from .client import CliError, config_error
from .state import AdminCredentials, StateDir


def _load_document(args: argparse.Namespace, state: StateDir, environ: dict[str, str]) -> ConfigDocument:
    """The built-in defaults with the user's file on top; the file may refer to what the
    defaults define (organization `default`, model `mock-chat`)."""
    defaults = default_document(state.quickstart_key(), environ)
    if not args.config:
        return defaults
    try:
        extra = load_config_file(args.config, environ=environ, check_references=False)
    except ConfigError as exc:
        raise config_error(exc.issues) from None
    issues = extra.reference_issues(
        known_orgs={o.name for o in defaults.organizations},
        known_providers={p.slug for p in defaults.providers},
        known_models={m.name for m in defaults.models},
    )
    for issue in issues:
        issue.file = args.config
    if issues:
        raise config_error(issues)
    return merge_documents(defaults, extra)


def _banner(
    *, dataplane: str, controlplane: str, creds: AdminCredentials, key: str, created: list[dict[str, str]]
) -> str:
    curl = (
        f"curl -s {dataplane}/v1/chat/completions \\\n"
        f"  -H 'Authorization: Bearer {key}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f'  -d \'{{"model": "{QUICKSTART_MODEL}", '
        '"messages": [{"role": "user", "content": "Hello, Switchyard!"}]}\''
    )
    lines = [
        "",
        "Switchyard is up (embedded mode: SQLite, in-process bus, in-memory counters).",
        "",
        f"  data plane     {dataplane}/v1        (OpenAI SDK base_url; Anthropic SDK: {dataplane})",
        f"  control plane  {controlplane}/api/v1  (docs: {controlplane}/docs)",
        f"  admin login    {creds.email} / {creds.password}",
        f"  API key        {key}",
        "",
        "Try it:",
        "",
        curl,
        "",
        "Then see the call:  .venv/bin/switchyard usage",
        "",
    ]
    for item in created:
        lines.insert(-1, f"New key {item['org']}/{item['name']} (shown once): {item['key']}")
    return "\n".join(lines)


async def run_up(args: argparse.Namespace) -> int:
    from switchyard_controlplane.migrate import upgrade_database
    from switchyard_controlplane.server import apply_document
    from switchyard_controlplane.server import serve as serve_controlplane
    from switchyard_controlplane.settings import ControlPlaneSettings
    from switchyard_dataplane.server import serve as serve_dataplane
    from switchyard_dataplane.settings import DataPlaneSettings
    from switchyard_ingest.server import serve as serve_ingest
    from switchyard_ingest.settings import IngestSettings

    environ = dict(os.environ)
    state = StateDir(Path(args.state_dir))
    state.ensure()
    secret_key = state.secret_key(environ.get("SWITCHYARD_SECRET_KEY"))
    creds = state.admin_credentials(
        environ.get("SWITCHYARD_ADMIN_EMAIL"), environ.get("SWITCHYARD_ADMIN_PASSWORD")
    )
    document = _load_document(args, state, environ)

    cp_settings = ControlPlaneSettings(
        database_url=state.database_url,
        secret_key=secret_key,
        admin_email=creds.email,
        admin_password=creds.password,
        controlplane_host=args.host,
        controlplane_port=args.controlplane_port,
        grpc_host="127.0.0.1",
        grpc_port=args.grpc_port,
    )
    dp_settings = DataPlaneSettings(
        dataplane_host=args.host,
        dataplane_port=args.dataplane_port,
        controlplane_grpc=f"127.0.0.1:{args.grpc_port}",
        secret_key=secret_key,
        state_dir=state.root,
    )
    ingest_settings = IngestSettings(
        database_url=state.database_url, ingest_host=args.host, ingest_port=args.ingest_port
    )

    # Migrate and apply before serving, so keys minted for the config can be shown once.
    await asyncio.to_thread(upgrade_database, state.database_url)
    engine = make_engine(state.database_url)
    try:
        result = await asyncio.to_thread(apply_document, engine, cp_settings, document)
    except ConfigError as exc:
        raise config_error(exc.issues) from None
    finally:
        engine.dispose()
    # The quickstart key has a fixed value, so only keys of the --config file can appear.
    created = [key.as_dict() for key in result.created_keys]

    # One process for three tiers: one tracer provider, configured once (each tier's own
    # configure_tracing call then keeps this decision).
    configure_tracing("switchyard")
    bus = InProcessBus()
    cp_ready, dp_ready, ingest_ready = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(serve_controlplane(cp_settings, ready=cp_ready), name="controlplane"),
        asyncio.create_task(serve_ingest(ingest_settings, bus=bus, ready=ingest_ready), name="ingest"),
    ]
    await _wait_ready(cp_ready, tasks)
    tasks.append(
        asyncio.create_task(serve_dataplane(dp_settings, publisher=bus, ready=dp_ready), name="dataplane")
    )
    await _wait_ready(dp_ready, tasks)
    await _wait_ready(ingest_ready, tasks)
    print(
        _banner(
            dataplane=f"http://{args.host}:{args.dataplane_port}",
            controlplane=f"http://{args.host}:{args.controlplane_port}",
            creds=creds,
            key=state.quickstart_key(),
            created=created,
        ),
        flush=True,
    )
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise CliError(f"{task.get_name()} stopped: {task.exception()!r}")
            raise CliError(f"{task.get_name()} stopped unexpectedly")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return 0


async def _wait_ready(event: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a tier to listen, failing fast if any tier dies first."""
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED, timeout=60)
    if waiter in done:
        return
    waiter.cancel()
    for task in tasks:
        if task in done:
            exc = task.exception()
            raise CliError(
                f"{task.get_name()} failed to start: {exc!r}" if exc else f"{task.get_name()} exited"
            )
    raise CliError("timed out waiting for the stack to start")
