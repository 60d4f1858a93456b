"""``traderunner deploy systemd``: the units say what a safe deployment needs, and systemd's
own checker (``systemd-analyze verify``) accepts every one of them without a warning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clihelpers import run_here
from traderunner.redisdb.embedded import server_binary

ANALYZE = shutil.which("systemd-analyze")


def _units(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "units"
    ran = run_here(
        ["deploy", "systemd", "--out", str(out), "--redis-server", str(server_binary()), *extra],
        {"TRADERUNNER_DATA_DIR": str(tmp_path / "data"), "TRADERUNNER_JOB_TIME_LIMIT": "7200"},
    )
    assert ran.code == 0, ran.err
    return out


def _fields(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_units_restart_stop_and_harden_as_they_should(tmp_path: Path) -> None:
    out = _units(tmp_path)
    services = sorted(out.glob("*.service"))
    names = {p.stem for p in services}
    assert {"traderunner-redis-durable", "traderunner-redis-cache", "traderunner-worker",
            "traderunner-dashboard", "traderunner-flower"} <= names  # fmt: skip
    for path in services:
        f = _fields(path)
        assert f["Type"] == ["simple"], path  # never forking/--detach
        assert f["Restart"] == ["always"] and f["StartLimitBurst"] == ["5"]
        assert f["KillSignal"] == ["SIGTERM"]
        for option in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
            assert f[option] == ["yes"], (path, option)
        assert f["ProtectSystem"] == ["strict"]
        assert "MemoryDenyWriteExecute" not in f  # numba writes machine code at run time
        if "redis" not in path.stem:
            assert f["EnvironmentFile"][0] == "/etc/traderunner/traderunner.env"
            assert f["EnvironmentFile"][1].endswith(".env")
            assert "PASSWORD" not in path.read_text() and "redis://" not in path.read_text()
    worker = _fields(out / "traderunner-worker.service")
    assert int(worker["TimeoutStopSec"][0]) > 7200  # longer than the job time limit
    assert worker["KillMode"] == ["mixed"]  # SIGTERM to the main process: warm shutdown
    assert worker["EnvironmentFile"][1] == "/etc/traderunner/worker.env"
    target = (out / "traderunner.target").read_text()
    assert all(f"{n}.service" in target for n in names)
    assert (out / "traderunner.env").stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed here (Debian package systemd); the units' "
    "content is still checked by the test above",
)
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    assert ANALYZE is not None
    out = _units(tmp_path)
    files = [str(p) for p in sorted(out.glob("*.service"))] + [str(out / "traderunner.target")]
    ran = subprocess.run([ANALYZE, "verify", *files], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.strip() == "", ran.stderr  # it reports bad lines as warnings only
    # The check can fail: a bad value is reported.
    bad = tmp_path / "bad" / "traderunner-worker.service"
    bad.parent.mkdir()
    bad.write_text(
        (out / "traderunner-worker.service").read_text().replace("Restart=always", "Restart=alwayz")
    )
    ran = subprocess.run([ANALYZE, "verify", str(bad)], capture_output=True, text=True)
    assert "alwayz" in ran.stderr
