"""`traderunner flower` serves Celery's monitor on 127.0.0.1 behind a generated login, and sees
the jobs a worker runs (workers send task events only once Flower turns them on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.redishelpers import embedded_env, free_port

SUBMIT = """
from traderunner.config import load_settings
from traderunner.jobs import JobClient, NoopSpec
with JobClient.open(load_settings()) as c:
    job = c.submit(NoopSpec())
    print(c.wait(job.id, timeout=60).id)
"""


def _group_cmdlines(pgid: int) -> dict[int, str]:
    """pid -> command line of every live process in the process group ``pgid``."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, ProcessLookupError):
            continue
        found[int(entry)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return found


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_flower_requires_the_generated_login(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "traderunner", "flower", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                first = httpx.get(url + "/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "flower did not answer in 60 s"
                time.sleep(0.2)
        assert first.status_code == 401
        login = (tmp_path / "flower.password").read_text().strip()
        assert (tmp_path / "flower.password").stat().st_mode & 0o777 == 0o600
        user, password = login.split(":", 1)
        assert len(password) >= 16
        ok = httpx.get(url + "/workers", auth=(user, password), timeout=5)
        assert ok.status_code == 200
        wrong = httpx.get(url + "/workers", auth=(user, password + "x"), timeout=5)
        assert wrong.status_code == 401
        # No process of the group (ours, then Celery's Flower) carries it on its command line,
        # which every user's `ps` can read.
        group = _group_cmdlines(proc.pid)
        assert any("flower" in line for line in group.values()), group
        assert not [pid for pid, line in group.items() if password in line]

        worker = subprocess.Popen(
            [sys.executable, "-m", "traderunner", "worker", "-c", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            # Flower enables events every 5 s; a job run after that shows up in its task list.
            deadline = time.monotonic() + 90
            seen: dict[str, object] = {}
            while not seen:
                assert time.monotonic() < deadline, "flower never saw a job's task events"
                job_id = subprocess.run(
                    [sys.executable, "-c", SUBMIT],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                ).stdout.split()[-1]
                info = httpx.get(f"{url}/api/task/info/{job_id}", auth=(user, password), timeout=5)
                # A job that ran while Flower was switching events on may show only its last
                # events (no name): take one whose whole life it saw.
                if info.status_code == 200 and info.json().get("received"):
                    seen = info.json()
                else:
                    time.sleep(1.0)
            assert seen["state"] == "SUCCESS" and seen["name"] == "traderunner.run_job", seen
        finally:
            _stop_group(worker)
    finally:
        _stop_group(proc)
        subprocess.run(
            [sys.executable, "-m", "traderunner", "redis", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
