"""`traderunner flower` serves Celery's monitor on 127.0.0.1 behind a generated login."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.redishelpers import embedded_env, free_port


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
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        subprocess.run(
            [sys.executable, "-m", "traderunner", "redis", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
