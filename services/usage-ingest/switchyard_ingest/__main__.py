"""`python -m switchyard_ingest`: the ingest tier alone (split mode), configured from
SWITCHYARD_* environment variables."""

from __future__ import annotations

import asyncio
import logging
import signal

from .server import serve
from .settings import IngestSettings


async def _main() -> None:
    settings = IngestSettings()
    task = asyncio.create_task(serve(settings))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        logging.getLogger("switchyard_ingest").info("usage ingest stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main())


if __name__ == "__main__":
    main()
