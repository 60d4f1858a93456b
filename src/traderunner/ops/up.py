"""``traderunner up``: every process of a one-machine deployment, supervised, until Ctrl-C.

1. Refuse when another ``up`` of this data directory runs; stop embedded Redis servers that run
   unsupervised (``traderunner redis start``) so the supervisor owns them (their data stays).
2. First run: migrate the store, load the demo candles, add the demo live strategies, create
   the admin (``firstrun.py``).
3. Start supervisord with the Redis servers; once both answer PING start the rest; wait until
   each child is healthy (its probe), then print the URLs and the login.
4. Watch: a child that exits is reported with its log's last lines. supervisord restarts it
   (with increasing back-off while it keeps dying during its first ``start_secs``, FATAL after
   3 tries); a child that exits ``GIVE_UP_EXITS`` times within ``GIVE_UP_WINDOW`` seconds even
   after running a while is stopped too. Either way it is given up with one clear line and the
   rest keep running.
5. SIGINT/SIGTERM: supervisord stops the children, highest priority number first (the worker's
   warm shutdown gives its running jobs back to the queue; Redis last, flushing its AOF).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from types import FrameType

from traderunner.config import Settings
from traderunner.errors import TraderunnerError
from traderunner.ops.children import Child, UpOptions, default_children
from traderunner.ops.firstrun import ADMIN, first_run_in_child
from traderunner.ops.health import Prober
from traderunner.ops.supervisor import ChildState, Supervisor, tail

GIVE_UP_EXITS = 5
GIVE_UP_WINDOW = 120.0
HEALTH_TIMEOUT = 240.0  # a fresh clone's first worker compiles the numba kernels
POLL = 0.5

Report = Callable[[str], None]


class UpError(TraderunnerError):
    """``up`` cannot start (another ``up`` runs, a child never became healthy ...)."""


@dataclass
class _Watch:
    """What ``up`` remembers of one child between two polls."""

    child: Child
    state: str = "STOPPED"
    exits: collections.deque[float] = field(default_factory=collections.deque)
    given_up: bool = False
    healthy: bool = False
    seen_start: int = 0
    dead_reported: bool = False
    restarting: bool = False


def up_dir(settings: Settings) -> str:
    return str(settings.data_dir / "up")


def run_up(
    settings: Settings,
    options: UpOptions,
    commands: Collection[str],
    report: Report,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Run everything until ``stop`` is set or SIGINT/SIGTERM; returns the exit code."""
    from pathlib import Path

    stop = stop or threading.Event()
    children, notes = default_children(settings, options, commands)
    supervisor = Supervisor(Path(up_dir(settings)), children)
    other = supervisor.running_elsewhere()
    if other is not None:
        raise UpError(
            f"traderunner up is already running for {settings.data_dir} (supervisord pid "
            f"{other}): use that one, or stop it with Ctrl-C (or kill -TERM {other})"
        )
    if settings.embedded_redis:
        _adopt_embedded(settings, report)
    env = _child_env(settings, options)
    done = first_run_in_child(env)
    for note in notes:
        report(f"not started: {note}")

    previous = _install_signals(stop)
    prober = Prober(settings)
    try:
        supervisor.start(env)
        watches = {c.name: _Watch(c) for c in children}
        early = [c for c in children if c.early]
        _wait_healthy(supervisor, prober, early, watches, stop, report)
        for child in children:
            if not child.early:
                supervisor.start_child(child.name)
        _wait_healthy(
            supervisor, prober, [c for c in children if not c.early], watches, stop, report
        )
        if not stop.is_set():
            _print_ready(settings, children, done, report, supervisor)
        while not stop.wait(POLL):
            _poll(supervisor, watches, report)
        return 0
    finally:
        report("stopping: workers finish or give back their jobs, Redis flushes its data ...")
        wait = max((c.stop_wait for c in children), default=10) * 2 + 30
        code = supervisor.shutdown(timeout=wait)
        prober.close()
        _restore_signals(previous)
        if code is None:
            report(f"supervisord did not stop within {wait}s and was killed")
        else:
            report("stopped")


def _adopt_embedded(settings: Settings, report: Report) -> None:
    from traderunner.redisdb.embedded import embedded_servers

    for server in embedded_servers(settings):
        if server.ping() == "ok":
            report(
                f"the embedded {server.role} server runs outside up (traderunner redis start): "
                "stopping it so up supervises it (its data stays)"
            )
            server.stop()


def _child_env(settings: Settings, options: UpOptions) -> dict[str, str]:
    env = dict(os.environ)
    env["TRADERUNNER_DATA_DIR"] = str(settings.data_dir)
    if settings.config is not None:
        env["TRADERUNNER_CONFIG"] = str(settings.config)
    env["TRADERUNNER_DASHBOARD_FLOWER_URL"] = f"http://127.0.0.1:{options.flower_port}"
    if settings.embedded_redis:
        # The children get the supervised servers' URLs, as for external servers: a child that
        # (re)starts while Redis is restarting must wait for it, never start a server of its
        # own beside the supervised one ("commands start the embedded servers" otherwise).
        # The environment, like FLOWER_BASIC_AUTH, is readable by this user only.
        from traderunner.redisdb.embedded import embedded_servers

        durable, cache = embedded_servers(settings)
        env["TRADERUNNER_REDIS_URL"] = durable.url
        env["TRADERUNNER_CACHE_URL"] = cache.url
    env["PYTHONUNBUFFERED"] = "1"  # child logs show up as they are written
    env.update(options.extra_env)
    return env


def _wait_healthy(
    supervisor: Supervisor,
    prober: Prober,
    children: list[Child],
    watches: dict[str, _Watch],
    stop: threading.Event,
    report: Report,
) -> None:
    pending = {c.name: c for c in children}
    deadline = time.monotonic() + HEALTH_TIMEOUT
    reason: dict[str, str] = {}
    while pending and not stop.is_set():
        states = _poll(supervisor, watches, report)
        for name, child in list(pending.items()):
            watch = watches[name]
            if watch.given_up:
                del pending[name]
                continue
            state = states[name].state if name in states else "UNKNOWN"
            why = prober.check(child.probe, supervisor_state=state)
            if why is None:
                watch.healthy = True
                report(f"{name}: healthy{f' ({child.note})' if child.note else ''}")
                del pending[name]
            else:
                reason[name] = why
        if pending and time.monotonic() > deadline:
            lines = "; ".join(
                f"{n}: {reason.get(n, '?')} (log {supervisor.log_path(n)})" for n in pending
            )
            raise UpError(f"not healthy after {HEALTH_TIMEOUT:.0f}s: {lines}")
        if pending:
            stop.wait(POLL)
    required = [c.name for c in children if c.early and watches[c.name].given_up]
    if required:
        raise UpError(
            f"{', '.join(required)} could not be started, and everything else needs it: "
            f"see {supervisor.log_path(required[0])}"
        )


def _poll(
    supervisor: Supervisor, watches: dict[str, _Watch], report: Report
) -> dict[str, ChildState]:
    try:
        states = supervisor.states()
    except Exception as exc:
        raise UpError(f"supervisord stopped answering ({exc}); see {supervisor.log_dir}") from None
    now = time.monotonic()
    for name, st in states.items():
        watch = watches.get(name)
        if watch is None or watch.given_up:
            continue
        watch.state = st.state
        # A death shows as a new spawn time (supervisord restarted it between two polls) or as
        # a dead state; each instance's death is counted once.
        respawned = bool(watch.seen_start) and bool(st.start) and st.start != watch.seen_start
        if respawned and not watch.dead_reported:
            _died(supervisor, watch, st, now, report)
        if respawned:
            watch.seen_start, watch.dead_reported = st.start, False
        elif not watch.seen_start and st.start:
            watch.seen_start = st.start
        if watch.given_up:
            continue
        if st.state in ("EXITED", "BACKOFF", "FATAL") and not watch.dead_reported:
            watch.dead_reported = True
            _died(supervisor, watch, st, now, report)
        if st.state == "FATAL" and not watch.given_up:
            watch.given_up = True
            report(
                f"{name} keeps dying while starting: given up after 3 tries, the rest keep "
                f"running; see {st.log}"
            )
        elif st.state == "RUNNING" and watch.restarting:
            watch.restarting = False
            report(f"{name} is running again (pid {st.pid})")
    return states


def _died(
    supervisor: Supervisor, watch: _Watch, st: ChildState, now: float, report: Report
) -> None:
    exits = watch.exits
    exits.append(now)
    while exits and now - exits[0] > GIVE_UP_WINDOW:
        exits.popleft()
    watch.restarting = True
    report(
        f"{st.name} died (exit status {st.exit_status}); restarting ({len(exits)} exit(s) "
        f"within {GIVE_UP_WINDOW:.0f}s); last log lines: {tail(st.log)}"
    )
    if len(exits) >= GIVE_UP_EXITS:
        supervisor.stop_child(st.name)
        watch.given_up = True
        report(
            f"{st.name} keeps dying ({len(exits)} exits within {GIVE_UP_WINDOW:.0f}s): given "
            f"up, the rest keep running; see {st.log}"
        )


def _print_ready(
    settings: Settings,
    children: list[Child],
    done: object,
    report: Report,
    supervisor: Supervisor,
) -> None:
    from traderunner.ops.firstrun import FirstRun

    assert isinstance(done, FirstRun)
    if done.demo_loaded:
        report(f"loaded SYNTHETIC demo candles: {', '.join(done.demo_loaded)}")
    if done.demo_live:
        report(
            f"added demo live strategies (paper account demo): {', '.join(done.demo_live)}; "
            "'traderunner live list' shows them, 'traderunner orders' what they traded"
        )
    for child in children:
        if child.url:
            report(f"{child.name:<14} {child.url}")
    if done.admin_password is not None:
        report(
            f"dashboard login: {ADMIN} / {done.admin_password}   (shown once; kept in "
            f"{done.password_file}, mode 0600)"
        )
    elif done.password_file.exists():
        report(f"dashboard login: {ADMIN}, password in {done.password_file}")
    else:
        report(f"dashboard login: one of the {done.users} existing user(s) (traderunner user list)")
    flower_file = settings.data_dir / "flower.password"
    if any(c.name == "flower" for c in children) and flower_file.exists():
        user, _, password = flower_file.read_text().strip().partition(":")
        report(f"flower login: {user} / {password}   (kept in {flower_file})")
    report(f"logs: {supervisor.log_dir}   Ctrl-C stops everything")


def _install_signals(stop: threading.Event) -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, object] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        with contextlib.suppress(Exception):
            signal.signal(sig, handler)  # type: ignore[arg-type]
