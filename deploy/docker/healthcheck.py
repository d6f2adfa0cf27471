#!/usr/local/bin/python3
"""Container healthcheck for every Switchyard tier (the image's HEALTHCHECK).

One image runs any tier, so the check first works out which tier this container
runs: `--tier`, else `SWITCHYARD_HEALTHCHECK_TIER`, else the `serve <tier>` words of
PID 1's command line. It then GETs `/readyz` (or `/healthz` with `--live`) on that
tier's port (`SWITCHYARD_<TIER>_PORT`, default 8081 / 8080 / 8082) and exits 0 on a
2xx answer, 1 otherwise. A container that runs no server (`migrate`, `--help`, CLI
commands) has nothing to probe and is reported healthy.

Standard library only: it runs with the base image's interpreter, outside the venv,
in well under a second.

Usage: switchyard-healthcheck [--live] [--tier controlplane|dataplane|ingest]
       [--timeout SECONDS] [--cmdline-file PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_PORTS = {"controlplane": 8081, "dataplane": 8080, "ingest": 8082}
# A bind address a client cannot dial: probe loopback instead.
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def tier_from_cmdline(argv: Sequence[str]) -> str | None:
    """The tier of a `... serve <tier>` command line (any launcher or init before it)."""
    for i, word in enumerate(argv[:-1]):
        if word == "serve" and argv[i + 1] in DEFAULT_PORTS:
            return argv[i + 1]
    return None


def read_cmdline(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def probe_url(tier: str, env: Mapping[str, str], *, live: bool) -> str:
    name = tier.upper()
    port = env.get(f"SWITCHYARD_{name}_PORT") or str(DEFAULT_PORTS[tier])
    host = env.get(f"SWITCHYARD_{name}_HOST", "").strip()
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{'/healthz' if live else '/readyz'}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only, built above)
            return 200 <= response.status < 300, f"{response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {exc.read(300).decode(errors='replace')}"
    except (OSError, ValueError) as exc:
        return False, repr(exc)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchyard-healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--live", action="store_true", help="probe /healthz (alive) instead of /readyz")
    parser.add_argument("--tier", choices=sorted(DEFAULT_PORTS))
    parser.add_argument("--timeout", type=float, default=4.0)
    parser.add_argument("--cmdline-file", type=Path, default=Path("/proc/1/cmdline"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = os.environ if env is None else env

    tier = (
        args.tier
        or env.get("SWITCHYARD_HEALTHCHECK_TIER")
        or tier_from_cmdline(read_cmdline(args.cmdline_file))
    )
    if tier is None:
        print("no Switchyard server runs in this container: nothing to probe")
        return 0
    if tier not in DEFAULT_PORTS:
        print(f"unknown tier {tier!r}", file=sys.stderr)
        return 1
    url = probe_url(tier, env, live=args.live)
    ok, detail = check(url, args.timeout)
    print(f"{tier} {url}: {'ok' if ok else 'FAIL'} {detail}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
