"""`switchyard usage budget`: budget use of a key and/or an organization, via the REST API.

switchyard usage budget --key billing-service --org acme   # the key's and the org's budgets
switchyard usage budget --key <id or org/name>             # the key's budgets
switchyard usage budget --org acme                         # the organization's budgets
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from .client import CliError, ControlPlaneClient
from .commands import find_key_id
from .output import print_json, print_table

__all__ = ["add_budget_parser", "cmd_usage_budget"]

COLUMNS = ("scope", "owner", "period", "period_start", "amount", "currency", "spent", "reserved", "remaining")


def add_budget_parser(usage_sub: Any) -> None:
    """Adds `budget` to the subcommands of `switchyard usage`."""
    budget = usage_sub.add_parser("budget", help="budget use (spent, reserved, remaining) per period")
    budget.add_argument("--key", help="key id, name or org/name")
    budget.add_argument("--org", help="organization (with --key: the key's org, whose budgets are shown too)")
    budget.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")


def _rows(scope: str, owner: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for usage in result.get("budgets", []):
        row = {"scope": scope + (" (shadow)" if result.get("shadow") else ""), "owner": owner} | usage
        row["period_start"] = (usage.get("period_start") or "")[:10] or "-"
        rows.append(row)
    return rows


def cmd_usage_budget(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    if not args.key and not args.org:
        raise CliError("give --key, --org or both", exit_code=2)
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    if args.key:
        ref = f"{args.org}/{args.key}" if args.org and "/" not in args.key else args.key
        key_id = find_key_id(client, ref)
        key = client.request("GET", f"/api/v1/keys/{quote(key_id, safe='')}/budget")
        results["key"] = key
        rows += _rows("key", f"{key['org']}/{key['key']}", key)
    if args.org:
        org = client.request("GET", f"/api/v1/organizations/{quote(args.org, safe='')}/budget")
        results["org"] = org
        rows += _rows("org", org["org"], org)
    if args.output == "json":
        print_json(results)
        return 0
    if not rows:
        print("no budgets configured")
        return 0
    print_table(rows, COLUMNS)
    return 0
