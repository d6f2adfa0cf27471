"""`python -m switchyard_dataplane`: the data plane alone, under uvloop (benchmarks,
containers); SIGINT/SIGTERM stop it gracefully."""

from __future__ import annotations

from switchyard_common.serving import configure_logging, run_until_signalled

from .server import serve
from .settings import DataPlaneSettings


def main() -> None:
    configure_logging()
    run_until_signalled(serve(DataPlaneSettings()))


if __name__ == "__main__":
    main()
