"""Eight real processes hammer one limiter; no window of a quota's length ever exceeds it.

Each worker (``hammer_worker.py``, a separate interpreter) records the wall time just after
every grant returned. The limiter stamps a grant a little before that (the time of its final
Redis call), so a window is checked with a tolerance: grants less than ``W - TOL`` apart are
certainly less than ``W`` apart by the limiter's own stamps. The test also requires the limit
to have been reached, so a limiter that grants too little fails as well as one that grants too
much.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.redishelpers import RedisPair
from traderunner.ratelimit import Quota, RateLimiter

ROOT = Path(__file__).resolve().parents[3]
TOL = 0.1  # seconds: covers the gap between the limiter's stamp and the worker's clock read
MAX_COST = 3

Grant = tuple[float, int]


def _run_workers(
    url: str,
    prefix: str,
    name: str,
    quotas: Sequence[Quota],
    n: int,
    duration: float,
    limiter: RateLimiter,
) -> tuple[list[Grant], list[dict[str, int]], int]:
    """Start ``n`` workers, release them together, poll usage() meanwhile; their results."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for seed in range(n):
        spec = {
            "url": url,
            "prefix": prefix,
            "name": name,
            "quotas": [[q.limit, q.window_s, q.name] for q in quotas],
            "duration": duration,
            "seed": seed,
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.ratelimit.hammer_worker",
                    json.dumps(spec),
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        polls = 0
        end = time.monotonic() + duration
        while time.monotonic() < end:
            for use in limiter.usage():
                assert use.used + use.remaining == use.limit
                assert 0 <= use.used <= use.limit
                assert 0.0 <= use.reset_in_s <= use.window_s
            polls += 1
            time.sleep(0.05)
        grants: list[Grant] = []
        stats = []
        for proc in procs:
            out, err = proc.communicate(timeout=duration + 60)
            assert proc.returncode == 0, err[-2000:]
            result = json.loads(out.strip().splitlines()[-1])
            grants.extend((float(t), int(c)) for t, c in result["grants"])
            stats.append({k: v for k, v in result.items() if k != "grants"})
        return sorted(grants), stats, polls
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _max_in_window(grants: Sequence[Grant], span: float) -> int:
    """The largest total cost of grants whose times lie within ``span`` of each other."""
    best = total = lo = 0
    for hi, (t, cost) in enumerate(grants):
        total += cost
        while grants[lo][0] <= t - span:
            total -= grants[lo][1]
            lo += 1
        assert lo <= hi
        best = max(best, total)
    return best


def _check_quota(grants: Sequence[Grant], quota: Quota) -> None:
    certain = _max_in_window(grants, quota.window_s - TOL)
    assert certain <= quota.limit, f"{quota.name}: {certain} granted within one window"
    possible = _max_in_window(grants, quota.window_s + TOL)
    assert possible >= quota.limit - (MAX_COST - 1), f"{quota.name}: limit never reached"


def test_eight_processes_never_exceed_one_limit(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = redis_pair.settings(tmp_path)
    quota = Quota(50, 2, "burst")
    limiter = RateLimiter(
        redis_pair.durable.url, name="hammer", quotas=[quota], prefix=settings.redis_prefix
    )
    grants, stats, polls = _run_workers(
        redis_pair.durable.url, settings.redis_prefix, "hammer", [quota], 8, 6.5, limiter
    )
    _check_quota(grants, quota)
    # Three full windows and a bit: at least two windows' worth was granted, and the
    # processes were refused or made to wait along the way (the limit did bite).
    assert sum(c for _, c in grants) >= 2 * quota.limit
    assert sum(s["refused"] + s["deadline_errors"] for s in stats) > 0
    assert polls > 0


def test_two_quotas_hold_together_under_concurrency(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = redis_pair.settings(tmp_path)
    short, long = Quota(30, 1, "second"), Quota(70, 4, "four")
    limiter = RateLimiter(
        redis_pair.durable.url, name="two", quotas=[short, long], prefix=settings.redis_prefix
    )
    grants, _, _ = _run_workers(
        redis_pair.durable.url, settings.redis_prefix, "two", [short, long], 4, 5.0, limiter
    )
    _check_quota(grants, short)
    _check_quota(grants, long)
