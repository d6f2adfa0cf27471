"""Config-as-code and automation commands that talk to a running control plane."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from switchyard_common.config_schema import load_config_file
from switchyard_common.errors import ConfigError

from .client import CliError, ControlPlaneClient, config_error
from .output import print_json, print_table


def _apply(client: ControlPlaneClient, args: argparse.Namespace, *, dry_run: bool) -> int:
    try:
        doc = load_config_file(args.file, environ=dict(os.environ))
    except ConfigError as exc:
        raise config_error(exc.issues) from None
    try:
        result = client.request(
            "POST",
            "/api/v1/config/apply",
            json={"document": doc.model_dump(mode="json"), "dry_run": dry_run},
        )
    except CliError as exc:
        issues = (exc.details or {}).get("issues") if isinstance(exc.details, dict) else None
        if issues:
            lines = [f"{args.file}: {i.get('path') or '<root>'}: {i.get('message')}" for i in issues]
            raise config_error(lines) from None
        raise
    if args.output == "json":
        print_json(result)
        return 0
    changes = [c for c in result.get("changes", []) if c.get("action") != "unchanged"]
    verb = "would change" if dry_run else "changed"
    if not changes:
        print("no changes")
    for change in changes:
        print(f"{change['action']:>8}  {change['kind']}/{change['name']}")
    for key in result.get("created_keys", []):
        print(f"\nnew key {key['org']}/{key['name']} (shown once): {key['key']}")
    if changes:
        print(f"\n{len(changes)} {verb}" + ("" if dry_run else f", snapshot version {result.get('version')}"))
    # Price-table check: models whose calls would be billed at 0.
    for warning in result.get("warnings", []):
        print(f"warning: {warning.get('message')}", file=sys.stderr)
    return 0


def cmd_apply(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    return _apply(client, args, dry_run=args.dry_run)


def cmd_diff(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    return _apply(client, args, dry_run=True)


def cmd_export(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    document = client.request("GET", "/api/v1/config/export")
    if args.output == "json":
        print_json(document)
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False))
    return 0


KEY_COLUMNS = ("id", "name", "org", "prefix", "models", "revoked", "created_at")


def cmd_keys_create(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "org": args.org, "models": args.model or []}
    if args.scope:
        body["scopes"] = args.scope
    created = client.request("POST", "/api/v1/keys", json=body)
    if args.output == "json":
        print_json(created)
    else:
        print(f"created key {created.get('org')}/{created.get('name')} (id {created.get('id')})")
        print(f"value (shown once): {created['key']}")
    return 0


def cmd_keys_list(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    items = _list_keys(client)
    if args.output == "json":
        print_json(items)
    else:
        print_table(items, KEY_COLUMNS)
    return 0


def _list_keys(client: ControlPlaneClient) -> list[dict[str, Any]]:
    return list(client.request("GET", "/api/v1/keys")["data"])


def find_key_id(client: ControlPlaneClient, ref: str) -> str:
    """The id of the key named by `ref`: its id, its name (when unique) or org/name."""
    items = _list_keys(client)
    matches = [k for k in items if ref in (k.get("id"), k.get("name"), f"{k.get('org')}/{k.get('name')}")]
    if not matches:
        raise CliError(f"no key {ref!r}")
    if len(matches) > 1:
        raise CliError(f"{ref!r} names several keys; use the id or org/name")
    return str(matches[0]["id"])


def cmd_keys_revoke(client: ControlPlaneClient, args: argparse.Namespace) -> int:
    key_id = find_key_id(client, args.key)
    revoked = client.request("POST", f"/api/v1/keys/{key_id}/revoke")
    if args.output == "json":
        print_json(revoked)
    else:
        print(f"revoked key {key_id}")
    return 0


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise CliError(f"--since expects a duration like 30m, 24h or 7d, not {value!r}", exit_code=2)
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"not an ISO 8601 time: {value!r}", exit_code=2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
