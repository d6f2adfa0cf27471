"""`switchyard rotate-secret-key`: re-encrypt stored provider credentials with a new
SWITCHYARD_SECRET_KEY, directly in the database (docs/operations.md, "Rotating
SWITCHYARD_SECRET_KEY")."""

from __future__ import annotations

import argparse
import json
import os
import sys

OLD_KEY_ENV = "SWITCHYARD_OLD_SECRET_KEY"
NEW_KEY_ENV = "SWITCHYARD_SECRET_KEY"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rotate = sub.add_parser(
        "rotate-secret-key",
        help="re-encrypt stored provider credentials with a new secret key (SWITCHYARD_DATABASE_URL)",
        description=(
            f"Reads the old key from ${OLD_KEY_ENV} and the new one from ${NEW_KEY_ENV} "
            "(--old/--new override them, but put the keys in the process list and shell history)."
        ),
    )
    rotate.add_argument("--old", help=f"old secret key (default: ${OLD_KEY_ENV})")
    rotate.add_argument("--new", help=f"new secret key (default: ${NEW_KEY_ENV})")
    rotate.add_argument("--dry-run", action="store_true", help="report what would be re-encrypted")
    rotate.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")


def run_rotate_secret_key(args: argparse.Namespace) -> int:
    from switchyard_controlplane.secret_rotation import RotationError, rotate_secret_key
    from switchyard_controlplane.settings import ControlPlaneSettings

    old = args.old or os.environ.get(OLD_KEY_ENV, "")
    new = args.new or os.environ.get(NEW_KEY_ENV, "")
    try:
        result = rotate_secret_key(ControlPlaneSettings().database_url, old, new, dry_run=args.dry_run)
    except RotationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        payload = {
            "rotated": result.rotated,
            "already_new": result.already_new,
            "version": result.version,
            "dry_run": args.dry_run,
        }
        print(json.dumps(payload, indent=2))
        return 0
    verb = "would re-encrypt" if args.dry_run else "re-encrypted"
    print(f"{verb} {len(result.rotated)} provider credential(s): {', '.join(result.rotated) or '-'}")
    if result.already_new:
        print(f"already under the new key: {', '.join(result.already_new)}")
    if result.version is not None:
        print(f"snapshot version is now {result.version}")
    return 0
