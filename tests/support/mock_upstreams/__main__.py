from __future__ import annotations

import argparse

import uvicorn

from .app import app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.mock_upstreams")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
