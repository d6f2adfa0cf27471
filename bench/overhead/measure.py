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

HERE = Path(__file__).resolve().parent
CHAT_BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 32}


@dataclass
class Target:
    """Something OpenAI-compatible to send load to: the mock itself or a gateway."""

    name: str
    base_url: str  # ends with /v1
    model: str = "mock-gpt"
    headers: dict[str, str] = field(default_factory=dict)
    pid: int | None = None  # gateway process whose CPU is sampled
    # The data plane's usage-event spool: empty in steady state, so bytes left in it after
    # a run mean usage publishing fell behind and events took the disk path.
    spool_dir: Path | None = None

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def body(self, stream: bool) -> str:
        body = {"model": self.model, **CHAT_BODY}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return json.dumps(body, separators=(",", ":"))


@dataclass
class Settings:
    duration: float
    warmup: float
    loadgen_cpu: str | None
    python: str = sys.executable


def _cpu_pct(pid: int | None, before: float | None, wall: float) -> float | None:
    if pid is None or before is None or wall <= 0:
        return None
    return round(100.0 * (cpu_seconds(pid) - before) / wall, 1)


def run_wrk(target: Target, concurrency: int, settings: Settings) -> dict[str, Any]:
    env = dict(os.environ)
    env["BENCH_BODY"] = target.body(stream=False)
    env["BENCH_HEADERS"] = "|".join(f"{k}: {v}" for k, v in target.headers.items())
    base = pinned(
        settings.loadgen_cpu,
        ["wrk", "-t1", f"-c{concurrency}", "--timeout", "30s", "-s", str(HERE / "wrk_post.lua")],
    )
    timeout = settings.warmup + settings.duration + 60
    if settings.warmup > 0:
        warm = max(1, round(settings.warmup))
        subprocess.run([*base, f"-d{warm}s", target.chat_url], env=env, capture_output=True, timeout=timeout)
    before = cpu_seconds(target.pid) if target.pid else None
    started = time.perf_counter()
    done = subprocess.run(
        [*base, f"-d{max(1, round(settings.duration))}s", target.chat_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - started
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


def run_loadgen(target: Target, concurrency: int, settings: Settings, *, stream: bool) -> dict[str, Any]:
    argv = [
        settings.python,
        str(HERE / "loadgen.py"),
        "--url",
        target.chat_url,
        "--body",
        target.body(stream),
        "-c",
        str(concurrency),
        "-d",
        str(settings.duration),
        "-w",
        str(settings.warmup),
    ]
    for name, value in target.headers.items():
        argv += ["-H", f"{name}: {value}"]
    if stream:
        argv.append("--stream")
    proc = subprocess.Popen(
        pinned(settings.loadgen_cpu, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # The load generator's start-up plus warm-up; CPU is sampled over the recorded part.
        time.sleep(settings.warmup + 0.3)
        before = cpu_seconds(target.pid) if target.pid else None
        started = time.perf_counter()
        out, err = proc.communicate(timeout=settings.duration + 60)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    wall = time.perf_counter() - started
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


def measure(target: Target, scenario: str, concurrency: int, settings: Settings) -> dict[str, Any]:
    if scenario == "chat":
        result = run_wrk(target, concurrency, settings)
    elif scenario == "chat_stream":
        result = run_loadgen(target, concurrency, settings, stream=True)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    if target.spool_dir is not None:
        result["spool_bytes_after"] = spool_bytes(target.spool_dir)
    return result
