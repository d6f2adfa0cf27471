"""`switchyard usage`: the control plane's usage and billing API from the command line.

    switchyard usage [--group-by model,key] [--since 24h | --start T --end T]   totals
    switchyard usage --granularity hour [--group-by model]                      time series
    switchyard usage billing --org acme [--period 2026-11]                      billing summary

Every form takes `--output table|json|csv`; json and csv are the API's own answers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .client import ControlPlaneClient
from .commands import _parse_time, parse_since
from .output import print_json, print_table

__all__ = ["add_parser", "cmd_usage", "cmd_usage_billing"]

OUTPUTS = ("table", "json", "csv")
FILTERS = ("org", "key", "model", "provider", "capability")
_GROUP_COLUMNS = {"key": ["key_id", "key_name"]}
_COUNTS = ["requests", "errors", "input_tokens", "output_tokens", "cost", "currency"]


def add_parser(sub: Any, output_flag: Callable[[argparse.ArgumentParser, tuple[str, ...]], None]) -> Any:
    """Adds `usage` and its `billing` subcommand; returns the subcommands of `usage`
    (other commands add theirs: `usage budget`)."""
    usage = sub.add_parser(
        "usage",
        help="usage totals, time series (--granularity) and billing summaries (usage billing)",
        description="Usage totals over a time range, a time series with --granularity, or "
        "`usage billing --org ORG` for a billing summary. Options of `billing` go after it.",
    )
    usage.add_argument("--since", default="24h", help="duration before --end (default 24h)")
    usage.add_argument("--start", help="ISO 8601 start (overrides --since)")
    usage.add_argument("--end", help="ISO 8601 end (default now)")
    usage.add_argument(
        "--group-by",
        help="comma-separated groups: org, key, model, provider, capability "
        "(totals default to model; a time series to none)",
    )
    usage.add_argument(
        "--granularity", choices=("minute", "hour", "day"), help="a time series with buckets of this size"
    )
    for name in FILTERS:
        usage.add_argument(f"--{name}", help=f"only this {name}" + (" (id)" if name == "key" else ""))
    output_flag(usage, OUTPUTS)
    usage_sub = usage.add_subparsers(dest="usage_command")
    billing = usage_sub.add_parser("billing", help="billing summary of one organization for a period")
    billing.add_argument("--org", required=True, help="organization name")
    billing.add_argument("--period", help="YYYY-MM (a month) or YYYY-MM-DD (a day), UTC; default this month")
    billing.add_argument("--start", help="ISO 8601 start (instead of --period)")
    billing.add_argument("--end", help="ISO 8601 end (instead of --period)")
    output_flag(billing, OUTPUTS)
    return usage_sub


def _fetch(client: ControlPlaneClient, path: str, params: dict[str, str], output: str) -> Any:
    if output == "csv":
        sys.stdout.write(
            client.request_text("GET", path, accept="text/csv", params={**params, "format": "csv"})
        )
        return None
    return client.request("GET", path, params=params)


def _group_columns(group_by: str) -> list[str]:
    columns: list[str] = []
    for name in (part.strip() for part in group_by.split(",")):
        if name:
            columns.extend(_GROUP_COLUMNS.get(name, [name]))
    return columns


def cmd_usage_billing(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    params = {"org": args.org}
    if args.period:
        params["period"] = args.period
    if args.start:
        params["start"] = _parse_time(args.start).isoformat()
    if args.end:
        params["end"] = _parse_time(args.end).isoformat()
    result = _fetch(client, "/api/v1/billing/summary", params, args.output)
    if result is None:
        return 0
    if args.output == "json":
        print_json(result)
        return 0
    print(f"billing of {result['org']} from {result['start']} to {result['end']}")
    print_table(
        result.get("lines", []),
        ("model", "currency", "requests", "input_tokens", "output_tokens", "unpriced_requests", "cost"),
    )
    print()
    print_table(result.get("totals", []), ("currency", "requests", "unpriced_requests", "cost"))
    return 0


def cmd_usage(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    end = _parse_time(args.end) if args.end else datetime.now(UTC)
    start = _parse_time(args.start) if args.start else end - parse_since(args.since)
    params = {"start": start.isoformat(), "end": end.isoformat()}
    if args.group_by is not None:
        params["group_by"] = args.group_by
    params.update({name: getattr(args, name) for name in FILTERS if getattr(args, name)})
    series = args.granularity is not None
    if series:
        params["granularity"] = args.granularity
    path = "/api/v1/usage/timeseries" if series else "/api/v1/usage"
    result = _fetch(client, path, params, args.output)
    if result is None:
        return 0
    if args.output == "json":
        print_json(result)
        return 0
    groups = _group_columns(result.get("group_by", ""))
    what = f"usage per {args.granularity}" if series else "usage"
    print(f"{what} from {start.isoformat(timespec='seconds')} to {end.isoformat(timespec='seconds')}")
    print_table(result.get("rows", []), (*(["bucket"] if series else []), *groups, *_COUNTS))
    return 0
