"""Entry point of the `switchyard` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from switchyard_common.logs import LogFormat
from switchyard_common.serving import configure_logging, run_until_signalled

from . import commands, rotate, usage_cmd
from .budget_command import add_budget_parser, cmd_usage_budget
from .client import CliError, ControlPlaneClient
from .settings import CliSettings


def _output_flag(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json")) -> None:
    parser.add_argument("--output", "-o", choices=choices, default=choices[0], help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description="Switchyard AI gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run all three tiers on embedded defaults")
    up.add_argument("--config", "-c", help="config file (YAML) applied at start")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--dataplane-port", type=int, default=8080)
    up.add_argument("--controlplane-port", type=int, default=8081)
    up.add_argument("--grpc-port", type=int, default=50051)
    up.add_argument("--ingest-port", type=int, default=8082)
    up.add_argument("--state-dir", default=".switchyard", help="where embedded state is kept")

    serve = sub.add_parser("serve", help="run one tier (split mode, settings from SWITCHYARD_* env)")
    serve.add_argument("tier", choices=("controlplane", "dataplane", "ingest"))

    sub.add_parser("migrate", help="upgrade the database schema (SWITCHYARD_DATABASE_URL)")
    rotate.add_parser(sub)

    apply = sub.add_parser("apply", help="apply a config file (idempotent upsert)")
    apply.add_argument("-f", "--file", required=True)
    apply.add_argument("--dry-run", action="store_true", help="show what would change")
    _output_flag(apply)

    diff = sub.add_parser("diff", help="show what applying a config file would change")
    diff.add_argument("-f", "--file", required=True)
    _output_flag(diff)

    export = sub.add_parser("export", help="print the stored config (secrets redacted)")
    _output_flag(export, ("yaml", "json"))

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (its value is shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--org", required=True)
    create.add_argument("--model", action="append", help="allowed public model (repeatable; default all)")
    create.add_argument("--scope", action="append", help="capability scope (repeatable; default llm)")
    _output_flag(create)
    _output_flag(keys_sub.add_parser("list", help="list keys (values are never shown)"))
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id, name or org/name")
    revoke.add_argument("key")
    _output_flag(revoke)

    # `switchyard usage` alone is the totals / time-series report; `billing` and
    # `budget` are its subcommands.
    usage_sub = usage_cmd.add_parser(sub, _output_flag)
    add_budget_parser(usage_sub)
    return parser


ClientCommand = Callable[[ControlPlaneClient, argparse.Namespace], int]

CLIENT_COMMANDS: dict[str, ClientCommand] = {
    "apply": commands.cmd_apply,
    "diff": commands.cmd_diff,
    "export": commands.cmd_export,
    "keys create": commands.cmd_keys_create,
    "keys list": commands.cmd_keys_list,
    "keys revoke": commands.cmd_keys_revoke,
    "usage": usage_cmd.cmd_usage,
    "usage billing": usage_cmd.cmd_usage_billing,
    "usage budget": cmd_usage_budget,
}


def _run_async(main: Coroutine[Any, Any, int], *, log_level: int, log_format: LogFormat) -> int:
    configure_logging(log_level, log_format)
    result = run_until_signalled(main)
    return 0 if result is None else result


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "up":
        from .up import run_up

        # Quiet text by default: the banner is what a developer needs to see.
        return _run_async(run_up(args), log_level=logging.WARNING, log_format="text")
    if args.command == "serve":
        from .serve import run_serve

        # JSON by default: split mode runs under log shippers (docs/settings.md).
        return _run_async(run_serve(args), log_level=logging.INFO, log_format="json")
    if args.command == "migrate":
        from .serve import run_migrate

        return run_migrate(args)
    if args.command == "rotate-secret-key":
        return rotate.run_rotate_secret_key(args)
    name = args.command
    if args.command in ("keys", "usage") and getattr(args, f"{args.command}_command", None):
        name = f"{args.command} {getattr(args, f'{args.command}_command')}"
    client = ControlPlaneClient(CliSettings())
    try:
        return CLIENT_COMMANDS[name](client, args)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except CliError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
