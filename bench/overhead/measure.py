"""One measurement: a load generator against one target at one concurrency, with the
CPU use of the gateway process sampled from /proc over the recorded window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import cpu_seconds, pinned
from scenarios import Scenario

HERE = Path(__file__).resolve().parent


@dataclass
class Target:
    """Something to send load to: the mock itself or a gateway. Headers are chosen per
    scenario: by the protocol the caller speaks (the key header's name differs) and,
    for gateways configured per request like Portkey, by the upstream's protocol."""

    name: str
    base_url: str  # ends with /v1
    headers: dict[str, str] = field(default_factory=dict)
    caller_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    upstream_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # By the scenario's key role (scenarios.LIMITED_KEY): the other key's credential.
    key_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # The mock called directly: only passthrough scenarios, as the others' baseline.
    direct: bool = False
    pid: int | None = None  # gateway process whose CPU is sampled
    # The data plane's usage-event spool: empty in steady state, so bytes left in it after
    # a run mean usage publishing fell behind and events took the disk path.
    spool_dir: Path | None = None

    def url(self, scenario: Scenario) -> str:
        return self.base_url.rstrip("/") + scenario.path

    def headers_for(self, scenario: Scenario) -> dict[str, str]:
        return {
            **self.headers,
            **self.caller_headers.get(scenario.caller, {}),
            **self.upstream_headers.get(scenario.upstream, {}),
            **self.key_headers.get(scenario.key, {}),
        }


@dataclass
class Settings:
    duration: float
    warmup: float
    loadgen_cpu: str | None
    python: str = sys.executable
    # py-spy executable and folder: record the gateway during measurements at
    # `profile_concurrency` (collapsed stacks, `<scenario>-c<N>-<target>.raw`).
    py_spy: str | None = None
    profile_dir: Path | None = None
    profile_concurrency: int = 32


def _start_profiler(
    target: Target, scenario: Scenario, concurrency: int, settings: Settings
) -> subprocess.Popen[bytes] | None:
    """py-spy on the gateway over the recorded window, pinned with the load generator
    so that sampling takes no time from the gateway's core."""
    if (
        settings.py_spy is None
        or settings.profile_dir is None
        or target.pid is None
        or concurrency != settings.profile_concurrency
    ):
        return None
    out = settings.profile_dir / f"{scenario.name}-c{concurrency}-{target.name}.raw"
    argv = [settings.py_spy, "record", "-p", str(target.pid), "-r", "200", "--format", "raw"]
    argv += ["-d", str(max(1, int(settings.duration) - 1)), "-o", str(out)]
    return subprocess.Popen(
        pinned(settings.loadgen_cpu, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cpu_pct(pid: int | None, before: float | None, wall: float) -> float | None:
    if pid is None or before is None or wall <= 0:
        return None
    return round(100.0 * (cpu_seconds(pid) - before) / wall, 1)


def run_wrk(target: Target, scenario: Scenario, concurrency: int, settings: Settings) -> dict[str, Any]:
    env = dict(os.environ)
    env["BENCH_BODY"] = scenario.body()
    env["BENCH_HEADERS"] = "|".join(f"{k}: {v}" for k, v in target.headers_for(scenario).items())
    url = target.url(scenario)
    base = pinned(
        settings.loadgen_cpu,
        ["wrk", "-t1", f"-c{concurrency}", "--timeout", "30s", "-s", str(HERE / "wrk_post.lua")],
    )
    timeout = settings.warmup + settings.duration + 60
    if settings.warmup > 0:
        warm = max(1, round(settings.warmup))
        subprocess.run([*base, f"-d{warm}s", url], env=env, capture_output=True, timeout=timeout)
    before = cpu_seconds(target.pid) if target.pid else None
    profiler = _start_profiler(target, scenario, concurrency, settings)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [*base, f"-d{max(1, round(settings.duration))}s", url],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - started
    finally:
        _stop_profiler(profiler)
    cpu = _cpu_pct(target.pid, before, wall)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        return {"error": f"wrk failed (rc={done.returncode}): {done.stdout[-300:]} {done.stderr[-300:]}"}
    w = json.loads(line.removeprefix("WRKJSON "))
    seconds = w["duration_us"] / 1e6
    errors = sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    ok = w["requests"] - w["err_status"]
    return {
        "tool": "wrk",
        "duration_s": round(seconds, 3),
        "ok": ok,
        "errors": errors,
        "rps": round(ok / seconds, 1) if seconds else 0.0,
        "lat_mean_ms": round(w["mean_us"] / 1000, 3),
        "lat_p50_ms": round(w["p50_us"] / 1000, 3),
        "lat_p90_ms": round(w["p90_us"] / 1000, 3),
        "lat_p99_ms": round(w["p99_us"] / 1000, 3),
        "lat_max_ms": round(w["max_us"] / 1000, 3),
        "cpu_pct": cpu,
    }


def run_loadgen(target: Target, scenario: Scenario, concurrency: int, settings: Settings) -> dict[str, Any]:
    argv = [
        settings.python,
        str(HERE / "loadgen.py"),
        "--url",
        target.url(scenario),
        "--body",
        scenario.body(),
        "--end-marker",
        scenario.end_marker,
        "-c",
        str(concurrency),
        "-d",
        str(settings.duration),
        "-w",
        str(settings.warmup),
    ]
    for name, value in target.headers_for(scenario).items():
        argv += ["-H", f"{name}: {value}"]
    if scenario.stream:
        argv.append("--stream")
    proc = subprocess.Popen(
        pinned(settings.loadgen_cpu, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    profiler = None
    try:
        # The load generator's start-up plus warm-up; CPU is sampled over the recorded part.
        time.sleep(settings.warmup + 0.3)
        before = cpu_seconds(target.pid) if target.pid else None
        profiler = _start_profiler(target, scenario, concurrency, settings)
        started = time.perf_counter()
        out, err = proc.communicate(timeout=settings.duration + 60)
        wall = time.perf_counter() - started
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        _stop_profiler(profiler)
    cpu = _cpu_pct(target.pid, before, wall)
    line = next((ln for ln in out.splitlines() if ln.startswith("LOADGEN_JSON ")), None)
    if line is None:
        return {"error": f"loadgen failed (rc={proc.returncode}): {out[-300:]} {err[-300:]}"}
    result: dict[str, Any] = json.loads(line.removeprefix("LOADGEN_JSON "))
    result["cpu_pct"] = cpu
    return result


def spool_bytes(directory: Path) -> int:
    try:
        return sum(p.stat().st_size for p in directory.iterdir() if p.suffix == ".log")
    except OSError:
        return 0


def measure(target: Target, scenario: Scenario, concurrency: int, settings: Settings) -> dict[str, Any]:
    """Non-streaming calls with wrk (the cheapest client, so the baseline is the mock's
    own cost), streams with loadgen.py (which reads each stream to its end marker)."""
    if scenario.stream:
        result = run_loadgen(target, scenario, concurrency, settings)
    else:
        result = run_wrk(target, scenario, concurrency, settings)
    if target.spool_dir is not None:
        result["spool_bytes_after"] = spool_bytes(target.spool_dir)
    return result
