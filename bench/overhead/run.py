#!/usr/bin/env python3
"""Data-plane overhead benchmark (`make bench`).

Starts a fast mock upstream (OpenAI Chat Completions and Anthropic Messages), a control
plane (SQLite) with a config applied through `switchyard apply` (model `mock-gpt` on an
OpenAI-format provider, `mock-claude` on an Anthropic-format one), and ONE data plane
process pinned to its own CPU, then measures calling the mock directly versus through
the data plane, for each scenario (caller protocol -> upstream protocol):

  chat                openai -> openai          passthrough
  messages            anthropic -> anthropic    passthrough
  chat_to_anthropic   openai -> anthropic       translation
  messages_to_openai  anthropic -> openai       translation
  <name>_stream       the same, streamed (SSE)
  chat_limits         `chat` on a key with rpm + tpm + budget (Redis admission + settlement)
  chat_lowest_cost    `chat` on a model with 3 targets, lowest_cost routing
  chat_least_latency  `chat` on a model with 3 targets, least_latency routing

The governance scenarios are also read against `chat` through the same data plane
(the per-request cost of limits and routing); they run against Redis
(redis://127.0.0.1:6379/0 unless --redis-url says otherwise) under a key prefix unique
to the run, deleted at the end.

Non-streaming with wrk (p50 / p99 at concurrency 1, req/s at 32), streams with
loadgen.py (TTFB p50 / p99 at 1, streams/s at 32). Each scenario's baseline is the
mock called directly in the protocol its upstream speaks, measured in the same run.
When Portkey's gateway is installed (`/work/shared/bench/setup.sh` puts it in
/tmp/portkey), it is measured in the same scenarios as the throughput reference.
Layout: mock upstream + load generator on --upstream-cpu, the gateway under test alone
on --proxy-cpu. Results: a table on stdout and bench/results/<timestamp>/results.{json,md}.
Every process started here is stopped (process groups), Ctrl-C included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from measure import Settings, Target, measure
from procs import BenchError, Processes
from report import (
    Results,
    error_lines,
    governance_rows,
    protocol_rows,
    render_checks,
    render_text,
    table_rows,
    target_checks,
    write_results,
)
from scenarios import GOVERNANCE_BASELINE, SCENARIOS, Scenario
from stack import (
    ROOT,
    Layout,
    Stack,
    apply_config,
    delete_nats_stream,
    delete_redis_prefix,
    direct_target,
    portkey_script,
    probe,
    start_controlplane,
    start_dataplane,
    start_mock,
    start_portkey,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=6.0, help="recorded seconds per measurement (6)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unrecorded warm-up seconds before each (1)"
    )
    parser.add_argument("--concurrency", default="1,32", help="comma-separated concurrencies (1,32)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement, 1 s warm-up")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of: {','.join(SCENARIOS)}"
    )
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per mock stream (20)")
    parser.add_argument(
        "--upstream-cpu", default="0", help="taskset CPU list of the mock and load generators"
    )
    parser.add_argument("--proxy-cpu", default="1", help="taskset CPU list of the gateway under test")
    parser.add_argument("--portkey-dir", default=os.environ.get("PORTKEY_DIR", "/tmp/portkey"))
    parser.add_argument("--no-portkey", action="store_true", help="leave the Portkey column out")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument(
        "--redis-url",
        default=None,
        help=f"data plane counters (default: {DEFAULT_REDIS_URL} when a governance scenario runs, "
        "else in memory; '' = in memory)",
    )
    parser.add_argument("--out", default="", help="results folder (bench/results/<timestamp>)")
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="record the data plane with py-spy during each measurement at the highest "
        "concurrency (<out>/profiles/*.raw; summary: profile_summary.py)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    args.scenarios = [s.strip() for s in str(args.scenarios).split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    governed = [s for s in args.scenarios if SCENARIOS[s].governance]
    if governed and GOVERNANCE_BASELINE not in args.scenarios:
        # Their figures are read against `chat` through the same data plane.
        args.scenarios.insert(0, GOVERNANCE_BASELINE)
    if args.redis_url is None:
        args.redis_url = DEFAULT_REDIS_URL if governed else ""
    if not shutil.which("wrk") and any(not SCENARIOS[s].stream for s in args.scenarios):
        parser.error("wrk is not installed (apt-get install wrk)")
    return args


def _command_output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_meta(args: argparse.Namespace, portkey_dir: Path | None, started: dt.datetime) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC") + " (start of the run)",
        "host": f"{os.cpu_count()} CPUs ({cpu_model}), {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": _command_output(["git", "rev-parse", "--short", "HEAD"]) or "unknown",
        "layout": f"mock upstream + load generators on cpu {args.upstream_cpu}, "
        f"gateway alone on cpu {args.proxy_cpu}",
        "per measurement": f"{args.warmup:g} s warm-up, {args.duration:g} s recorded",
        "mock stream": f"no delay; OpenAI: role chunk, {args.chunks} content chunks, finish chunk, "
        f"usage chunk, [DONE]; Anthropic: message_start, content_block_start, {args.chunks} "
        "text_delta, content_block_stop, message_delta, message_stop",
        "baseline": "each scenario's `direct` is the mock called directly in the protocol its "
        "upstream speaks, same streaming mode, measured once per concurrency in this run",
        "wrk": _command_output(["wrk", "--version"]).split(" [")[0] or "unknown",
        "data plane": "one `switchyard serve dataplane` process, NATS usage stream, "
        + (
            f"Redis counters ({args.redis_url}, a key prefix unique to the run)"
            if args.redis_url
            else "in-memory counters"
        ),
    }
    governed = [SCENARIOS[s] for s in args.scenarios if SCENARIOS[s].governance]
    if governed:
        meta["governance"] = (
            f"each against `{GOVERNANCE_BASELINE}` through the same data plane: "
            + "; ".join(f"{s.name}: {s.adds}" for s in governed)
        )
    if portkey_dir is not None:
        package = portkey_dir / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
        try:
            version = json.loads(package.read_text()).get("version", "?")
        except (OSError, ValueError):
            version = "?"
        meta["portkey"] = f"@portkey-ai/gateway {version}, node {_command_output(['node', '--version'])}"
    return meta


def py_spy_bin() -> str:
    candidate = Path(sys.executable).parent / "py-spy"
    found = str(candidate) if candidate.exists() else shutil.which("py-spy")
    if found is None:
        raise BenchError("--py-spy: py-spy is not installed (pip install py-spy)")
    return found


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM / SIGHUP into an exception so the finally blocks stop everything.
    raise SystemExit(128 + signum)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, out_dir: Path, work: Path) -> int:
    started = dt.datetime.now(dt.UTC)
    layout = Layout(upstream_cpu=args.upstream_cpu, loadgen_cpu=args.upstream_cpu, proxy_cpu=args.proxy_cpu)
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = Processes(logs)
    stack = Stack(work=work, nats_url=args.nats_url, redis_url=args.redis_url)
    portkey_dir = None if args.no_portkey else Path(args.portkey_dir)
    if portkey_dir is not None and portkey_script(portkey_dir) is None:
        log(f"Portkey not installed under {portkey_dir}: no Portkey column (see /work/shared/bench/setup.sh)")
        portkey_dir = None
    try:
        mock, mock_port = start_mock(procs, layout, args.chunks)
        log(f"mock upstream pid={mock.pid} port={mock_port} (cpu {layout.upstream_cpu})")
        cp, cp_port, grpc_port = start_controlplane(procs, stack, layout)
        log(f"control plane pid={cp.pid} http={cp_port} grpc={grpc_port}")
        apply_config(stack, cp_port, mock_port)
        log("config applied with `switchyard apply -f`")
        dp, dp_target = start_dataplane(procs, stack, layout, grpc_port)
        log(f"data plane pid={dp.pid} ({dp_target.base_url}, cpu {layout.proxy_cpu}) ready")
        direct = direct_target(mock_port)
        gateways = [dp_target]
        if portkey_dir is not None:
            pk, pk_target = start_portkey(procs, layout, portkey_dir, mock_port)
            log(f"portkey pid={pk.pid} ({pk_target.base_url}, cpu {layout.proxy_cpu}) ready")
            gateways.append(pk_target)
        plan = probe_all(direct, gateways, [SCENARIOS[name] for name in args.scenarios])
        settings = Settings(duration=args.duration, warmup=args.warmup, loadgen_cpu=layout.loadgen_cpu)
        if args.py_spy:
            settings.py_spy = py_spy_bin()
            settings.profile_dir = out_dir / "profiles"
            settings.profile_dir.mkdir(exist_ok=True)
            settings.profile_concurrency = max(args.concurrency)
        results = measure_all(direct, plan, args.concurrency, settings)
        if not dp.alive():
            raise BenchError(f"the data plane exited during the run; log {dp.log}:\n{dp.log_tail()}")
    finally:
        procs.stop_all()
        delete_nats_stream(stack.nats_url, stack.nats_stream)
        delete_redis_prefix(stack.redis_url, stack.redis_prefix)
    names = [t.name for t in gateways]
    meta = machine_meta(args, portkey_dir, started)
    write_results(out_dir, meta, results, names)
    header, rows = table_rows(results, names)
    print()
    print(render_text(header, rows))
    print()
    print(render_text(*protocol_rows(results)))
    print()
    governance = governance_rows(results)
    if governance[1]:
        print(render_text(*governance))
        print()
    print(render_checks(target_checks(results)))
    for line in error_lines(results):
        print(f"warning: {line}")
    print(f"\nresults: {out_dir}/results.md (+ results.json, logs/)")
    return 0


def probe_all(
    direct: Target, gateways: list[Target], scenarios: list[Scenario]
) -> list[tuple[Scenario, list[Target]]]:
    """Which gateways to measure in each scenario. The direct baseline and Switchyard
    must answer every scenario (else the run fails: it would measure nothing); Portkey
    is left out of a scenario it cannot serve, with a warning."""
    baselines = {SCENARIOS[s.baseline] for s in scenarios}
    for baseline in sorted(baselines, key=lambda s: s.name):
        failure = probe(direct, baseline)
        if failure is not None:
            raise BenchError(failure)
    plan: list[tuple[Scenario, list[Target]]] = []
    for scenario in scenarios:
        serving = []
        for target in gateways:
            if scenario.governance and target.name != "switchyard":
                continue  # a Switchyard feature: compared with Switchyard's own `chat`
            failure = probe(target, scenario)
            if failure is None:
                serving.append(target)
            elif target.name == "switchyard":
                raise BenchError(failure)
            else:
                log(f"warning: {failure}; {target.name} left out of {scenario.name}")
        plan.append((scenario, serving))
    return plan


def measure_all(
    direct: Target,
    plan: list[tuple[Scenario, list[Target]]],
    concurrencies: list[int],
    settings: Settings,
) -> Results:
    """Each gateway in each scenario at each concurrency, one under load at a time. A
    baseline (the mock direct in one protocol and streaming mode) is measured once per
    concurrency, right before the first scenario that uses it."""
    results: Results = {}
    baselines: dict[tuple[str, int], dict[str, Any]] = {}
    for scenario, gateways in plan:
        for concurrency in concurrencies:
            by_target = results.setdefault(scenario.name, {}).setdefault(concurrency, {})
            key = (scenario.baseline, concurrency)
            if key not in baselines:
                baselines[key] = measure(direct, SCENARIOS[scenario.baseline], concurrency, settings)
                log(_summary(scenario.baseline, concurrency, direct.name, baselines[key]))
            by_target[direct.name] = baselines[key]
            for target in gateways:
                result = measure(target, scenario, concurrency, settings)
                by_target[target.name] = result
                log(_summary(scenario.name, concurrency, target.name, result))
    return results


def _summary(scenario: str, concurrency: int, name: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{scenario} c={concurrency} {name}: ERROR {result['error']}"
    ttfb = f" ttfb p50 {result['ttfb_p50_ms']} ms" if "ttfb_p50_ms" in result else ""
    if result.get("spool_bytes_after"):
        ttfb += f", usage spool {result['spool_bytes_after'] / 1e6:.1f} MB"
    return (
        f"{scenario} c={concurrency} {name}: {result.get('rps')} /s, p50 {result.get('lat_p50_ms')} ms, "
        f"p99 {result.get('lat_p99_ms')} ms{ttfb}, errors {result.get('errors')}, "
        f"cpu {result.get('cpu_pct')}%"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out) if args.out else ROOT / "bench" / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    # Explicitly: a shell starting us in the background hands down SIGINT as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    work = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    try:
        return run(args, out_dir, work)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every started process was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
