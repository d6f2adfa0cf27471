"""`python -m switchyard_dataplane`: the data plane alone, under uvloop (benchmarks, containers)."""

from __future__ import annotations

import contextlib
import logging

import uvloop

from .server import serve
from .settings import DataPlaneSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = DataPlaneSettings()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
