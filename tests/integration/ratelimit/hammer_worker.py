"""One hammering process for the concurrency test (run with ``python -m``; not a test module).

argv[1] is a JSON spec: url, prefix, name, quotas ([limit, window_s, name] each), duration,
seed. Prints ``ready``, waits for a line on stdin, then takes random costs (1..3) for
``duration`` seconds, half the time with ``try_acquire`` (falling back to ``acquire`` when
refused), half with ``acquire`` and a deadline at the end of the run. Prints one JSON line: the
grants as ``[wall time just after the grant returned, cost]`` and counters.
"""

from __future__ import annotations

import json
import random
import sys
import time

from traderunner.errors import RateLimitedError
from traderunner.ratelimit import Quota, RateLimiter


def main() -> None:
    spec = json.loads(sys.argv[1])
    quotas = [Quota(int(limit), int(window), str(name)) for limit, window, name in spec["quotas"]]
    limiter = RateLimiter(spec["url"], name=spec["name"], quotas=quotas, prefix=spec["prefix"])
    rng = random.Random(spec["seed"])
    limiter.usage()  # connect before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    grants: list[tuple[float, int]] = []
    refused = 0
    deadline_errors = 0
    end = time.monotonic() + float(spec["duration"])
    while (left := end - time.monotonic()) > 0:
        cost = rng.randint(1, 3)
        if rng.random() < 0.5:
            if limiter.try_acquire(cost):
                grants.append((time.time(), cost))
                continue
            refused += 1
        try:
            limiter.acquire(cost, deadline=left)
        except RateLimitedError:
            deadline_errors += 1
            break
        grants.append((time.time(), cost))
    print(
        json.dumps({"grants": grants, "refused": refused, "deadline_errors": deadline_errors}),
        flush=True,
    )


if __name__ == "__main__":
    main()
