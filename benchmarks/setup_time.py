"""First install on a fresh clone: ``make lint`` (create .venv, install, ruff) timed for two refs.

``python benchmarks/setup_time.py BEFORE_REF AFTER_REF`` clones this repository twice into a
temporary folder, checks out each ref and times ``make lint`` there, one after the other (the
two share the machine's pip/uv caches, as a user's second project would). Writes
``results/setup_time.md``. Slow (minutes) and noisy on a shared machine: read it as a rough
figure, not a race.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def timed(ref: str, where: Path) -> float:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "checkout", "-q", ref], check=True)
    started = time.monotonic()
    subprocess.run(["make", "lint"], cwd=where, check=True, capture_output=True)
    return time.monotonic() - started


def main() -> int:
    before, after = sys.argv[1:3] if len(sys.argv) >= 3 else ("main", "HEAD")
    with tempfile.TemporaryDirectory() as tmp:
        a = timed(before, Path(tmp) / "before")
        b = timed(after, Path(tmp) / "after")
    text = (
        "# First install on a fresh clone (`make lint`: venv, install, ruff)\n\n"
        f"| ref | seconds |\n|---|---|\n| {before} (pip install -e .[dev]) | {a:.1f} |\n"
        f"| {after} (uv pip sync requirements.lock) | {b:.1f} |\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "setup_time.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
