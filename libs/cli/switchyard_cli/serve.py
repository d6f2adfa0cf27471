"""`switchyard serve <tier>` (split mode) and `switchyard migrate`."""

from __future__ import annotations

import argparse


async def run_serve(args: argparse.Namespace) -> int:
    if args.tier == "controlplane":
        from switchyard_controlplane.server import serve as serve_controlplane
        from switchyard_controlplane.settings import ControlPlaneSettings

        await serve_controlplane(ControlPlaneSettings())
    elif args.tier == "dataplane":
        from switchyard_dataplane.server import serve as serve_dataplane
        from switchyard_dataplane.settings import DataPlaneSettings

        await serve_dataplane(DataPlaneSettings())
    else:
        from switchyard_ingest.server import serve as serve_ingest
        from switchyard_ingest.settings import IngestSettings

        await serve_ingest(IngestSettings())
    return 0


def run_migrate(_args: argparse.Namespace) -> int:
    from switchyard_controlplane.migrate import upgrade_database
    from switchyard_controlplane.settings import ControlPlaneSettings

    settings = ControlPlaneSettings()
    upgrade_database(settings.database_url)
    print("database is at the latest migration")
    return 0
