"""``traderunner backup`` and ``traderunner backup restore``: the store and the durable Redis.

A backup folder holds:

* the store: SQLite through SQLite's online backup API (a consistent copy while the store is in
  use, WAL included) as ``store.db``; PostgreSQL through ``pg_dump --format=custom`` as
  ``store.pgdump`` (``pg_dump`` must be installed, in a version not older than the server);
* the durable Redis, logically: every key under the deployment's prefix with its TTL, as
  ``DUMP`` payloads in ``redis.jsonl`` (works against any server, external ones included, and
  restores into a running one with ``RESTORE ... REPLACE``). Keys are read one SCAN page at a
  time, so a backup taken while workers run is a fuzzy snapshot: the store is the record and
  the reconciler re-enqueues what the broker lacks after a restore;
* for the embedded server also its own files after a ``BGSAVE``: ``durable/dump.rdb`` (an
  exact point-in-time snapshot, for a server restored from files);
* ``manifest.json``: what is there, when it was taken, by which version.

The cache server is never backed up: everything in it is rebuilt from the store.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import redis

from traderunner import __version__
from traderunner.config import Settings
from traderunner.errors import StoreError, TraderunnerError, UserInputError
from traderunner.redisdb.connection import connect, ping, resolve_urls
from traderunner.redisdb.keys import Keys

MANIFEST = "manifest.json"
SCAN_COUNT = 500


class BackupError(TraderunnerError):
    """A backup or a restore could not be completed (what, and what to do)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    folder: Path
    store_file: str
    redis_keys: int
    rdb_file: str


def _store_url(settings: Settings) -> Any:
    from traderunner.store.store import normalize_url

    return normalize_url(settings.resolved_store_url)


def _pg_dsn(url: Any) -> str:
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def backup_store(settings: Settings, folder: Path) -> str:
    url = _store_url(settings)
    if url.get_backend_name() == "sqlite":
        source = Path(url.database or "")
        if not source.exists():
            raise BackupError(f"no store at {source}: nothing to back up")
        target = folder / "store.db"
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return target.name
    if url.get_backend_name() == "postgresql":
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is not installed: install PostgreSQL's client tools")
        target = folder / "store.pgdump"
        ran = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _pg_dsn(url)],
            capture_output=True,
            text=True,
            check=False,
        )
        if ran.returncode != 0:
            raise BackupError(f"pg_dump failed: {ran.stderr.strip().splitlines()[-1:]}")
        return target.name
    raise BackupError(f"cannot back up a {url.get_backend_name()} store")


def backup_redis(client: redis.Redis, keys: Keys, folder: Path) -> int:
    """Every key under the prefix: DUMP payload and TTL (ms, -1 none), one JSON line each."""
    count = 0
    with open(folder / "redis.jsonl", "w") as fh:
        cursor = 0
        while True:
            cursor, found = cast(
                tuple[int, list[bytes]],
                client.scan(cursor=cursor, match=keys.everything(), count=SCAN_COUNT),
            )
            if found:
                pipe = client.pipeline(transaction=False)
                for key in found:
                    pipe.dump(key)
                    pipe.pttl(key)
                replies = pipe.execute()
                for i, key in enumerate(found):
                    payload, ttl = replies[2 * i], replies[2 * i + 1]
                    if payload is None:  # gone between SCAN and DUMP
                        continue
                    fh.write(
                        json.dumps(
                            {
                                "key": base64.b64encode(key).decode(),
                                "ttl": int(ttl),
                                "dump": base64.b64encode(payload).decode(),
                            }
                        )
                        + "\n"
                    )
                    count += 1
            if cursor == 0:
                return count


def _bgsave_copy(settings: Settings, client: redis.Redis, folder: Path) -> str:
    """BGSAVE on the embedded durable server, then copy its fresh dump.rdb."""
    from traderunner.redisdb.embedded import embedded_servers

    durable, _ = embedded_servers(settings)
    before = int(cast(datetime, client.lastsave()).timestamp())
    with contextlib.suppress(redis.ResponseError):  # "already in progress": wait for that one
        client.bgsave()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = cast(dict[str, Any], client.info("persistence"))
        done = not int(info.get("rdb_bgsave_in_progress", 0))
        if done and int(info.get("rdb_last_save_time", 0)) >= before:
            break
        time.sleep(0.1)
    else:
        raise BackupError("the durable server's BGSAVE did not finish within 120s")
    target = folder / "durable"
    target.mkdir()
    shutil.copy2(durable.directory / "dump.rdb", target / "dump.rdb")
    return "durable/dump.rdb"


def backup(settings: Settings, folder: Path) -> BackupResult:
    """Back up the store and the durable Redis into ``folder`` (new or empty)."""
    if folder.exists() and any(folder.iterdir()):
        raise UserInputError(f"{folder} is not empty: give a new folder for the backup")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    urls = resolve_urls(settings)
    client = connect(urls.durable, name="traderunner-backup", decode=False)
    try:
        ping(client, urls.durable)
        store_file = backup_store(settings, folder)
        n = backup_redis(client, Keys(settings.redis_prefix), folder)
        rdb = _bgsave_copy(settings, client, folder) if urls.embedded else ""
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # never a half backup that looks whole
        raise
    finally:
        client.close()
    manifest = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "traderunner": __version__,
        "store": store_file,
        "redis": "redis.jsonl",
        "redis_keys": n,
        "redis_prefix": settings.redis_prefix,
        "rdb": rdb,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BackupResult(folder, store_file, n, rdb)


def restore(settings: Settings, folder: Path) -> BackupResult:
    """Put a backup back: the store file (or pg_restore) and every Redis key (REPLACE).

    Stop the workers, the dashboard and ``up`` first: the store is replaced underneath them.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise UserInputError(f"{folder} holds no traderunner backup ({MANIFEST} missing)") from None
    url = _store_url(settings)
    store_file = str(manifest["store"])
    if store_file == "store.db":
        if url.get_backend_name() != "sqlite":
            raise UserInputError("the backup holds a SQLite store; this deployment's is not")
        target = Path(url.database or "")
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(folder / store_file)
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)  # writes the whole database, WAL and all, under SQLite's lock
        finally:
            dst.close()
            src.close()
    else:
        if url.get_backend_name() != "postgresql":
            raise UserInputError("the backup holds a PostgreSQL dump; this store is not one")
        ran = subprocess.run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                f"--dbname={_pg_dsn(url)}",
                str(folder / store_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if ran.returncode != 0:
            raise StoreError(f"pg_restore failed: {ran.stderr.strip().splitlines()[-1:]}")
    urls = resolve_urls(settings)
    client = connect(urls.durable, name="traderunner-restore", decode=False)
    n = 0
    try:
        ping(client, urls.durable)
        with open(folder / str(manifest["redis"])) as fh:
            pipe = client.pipeline(transaction=False)
            for line in fh:
                entry = json.loads(line)
                ttl = max(int(entry["ttl"]), 0)  # -1: no expiry
                pipe.restore(
                    base64.b64decode(entry["key"]),
                    ttl,
                    base64.b64decode(entry["dump"]),
                    replace=True,
                )
                n += 1
                if n % 500 == 0:
                    pipe.execute()
            pipe.execute()
    finally:
        client.close()
    return BackupResult(folder, store_file, n, str(manifest.get("rdb", "")))
