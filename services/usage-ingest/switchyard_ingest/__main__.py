"""`python -m switchyard_ingest`: the ingest tier alone (split mode), configured from
SWITCHYARD_* environment variables; SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

from switchyard_common.serving import configure_logging, run_until_signalled

from .server import serve
from .settings import IngestSettings


def main() -> None:
    configure_logging()
    run_until_signalled(serve(IngestSettings()))


if __name__ == "__main__":
    main()
