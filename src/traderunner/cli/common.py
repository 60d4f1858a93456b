"""What every CLI command shares: the per-run state, the store, progress, JSON and parsing.

Heavy modules (pandas, the engine, the store, numba) are imported inside functions so that
``traderunner --help`` stays fast.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from traderunner.errors import (
    ConfigError,
    DataRangeError,
    OptionError,
    ParameterError,
    UserInputError,
)

if TYPE_CHECKING:
    from traderunner.config import Settings
    from traderunner.domain.candles import CandleArrays
    from traderunner.domain.period import Period
    from traderunner.domain.timeframe import Timeframe
    from traderunner.store import Store
    from traderunner.strategies import Strategy

SYNTHETIC = "synthetic"
#: The timeframe of stored data when --timeframe is not given (a --data file's is told from it).
DEFAULT_TIMEFRAME = "M5"


@dataclass(slots=True)
class State:
    """Built once per invocation by the root callback and handed to every command."""

    settings: Settings
    _strategies_loaded: bool = field(default=False, repr=False)

    def strategy(self, name: str) -> type[Strategy]:
        """The strategy class for ``name``; user strategies are loaded first (once)."""
        from traderunner.strategies import get_strategy

        self.load_strategies()
        return get_strategy(name)

    def load_strategies(self) -> None:
        """Register user strategies from ``settings.strategy_dirs`` and entry points, once."""
        if self._strategies_loaded:
            return
        from traderunner.strategies import load_user_strategies

        load_user_strategies(self.settings.strategy_dirs, entry_points=True)
        self._strategies_loaded = True


def get_state(ctx: typer.Context) -> State:
    """The State the root callback stored on the click context."""
    state = ctx.find_object(State)
    if state is None:  # only when a command is invoked without the root group
        from traderunner.config import load_settings

        state = State(load_settings())
        ctx.obj = state
    return state


def out_console() -> Console:
    """Rich console on stdout (tables); resolved at call time so redirection is honoured.

    Piped or redirected output gets a wide fixed width instead of Rich's 80 columns, so
    tables written to a file are not cut.
    """
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def err_console() -> Console:
    """Rich console on stderr (progress, notes)."""
    return Console(stderr=True, highlight=False)


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """Connect to the configured store (creating the data directory for the default SQLite)."""
    from traderunner.store import Store

    if not settings.store_url:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the data directory {settings.data_dir}: {exc.strerror}; "
                "set TRADERUNNER_DATA_DIR or --data-dir to a writable folder"
            ) from None
    store = Store.from_settings(settings)
    try:
        yield store
    finally:
        store.close()


def split_symbols(values: Sequence[str] | None) -> list[str]:
    """``["A,B", "C"]`` -> ``["A", "B", "C"]``: upper-cased, blanks and repeats dropped."""
    out: list[str] = []
    for value in values or ():
        for part in value.split(","):
            symbol = part.strip().upper()
            if symbol and symbol not in out:
                out.append(symbol)
    return out


def parse_assignments(values: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``["fast=10", "slow=50"]`` -> ``{"fast": "10", "slow": "50"}``; ParameterError if bad."""
    out: dict[str, str] = {}
    for raw in values or ():
        name, sep, value = raw.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise ParameterError(f"{flag} {raw!r} must be name=value, e.g. {flag} fast=10")
        if name in out:
            raise ParameterError(f"{flag} {name} is given twice: give each parameter once")
        out[name] = value.strip()
    return out


def print_json(payload: Mapping[str, Any]) -> None:
    """Write exactly one JSON object and a newline to stdout (through the one converter,
    :func:`traderunner.domain.jsonsafe.json_safe`)."""
    from traderunner.domain.jsonsafe import json_safe

    sys.stdout.write(json.dumps(json_safe(payload, "output"), allow_nan=False) + "\n")
    sys.stdout.flush()


def default_owner() -> str:
    """Who a CLI run or job is recorded for when ``--owner`` is not given: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def short_ns(ns: int | None) -> str:
    """int64 UTC nanoseconds -> ``2024-01-02 14:30`` for tables (empty for None)."""
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def iso_ns(ns: int | None) -> str:
    """int64 UTC nanoseconds -> ``2024-01-02T14:30:00+00:00`` (empty for None)."""
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).isoformat()


def parse_timeframe(text: str) -> Timeframe:
    from traderunner.domain.timeframe import Timeframe

    return Timeframe.parse(text)


def file_stem(path: Path) -> str:
    """``prices/acme.csv.gz`` -> ``acme``: the default symbol of a candle file."""
    name = path.name
    for suffix in (".gz", ".csv", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or path.stem


def load_market_data(
    state: State,
    *,
    data_file: Path | None,
    symbols: Sequence[str] | None,
    timeframe: Timeframe | None,
    period: Period,
) -> dict[str, CandleArrays]:
    """Candles for a backtest or sweep: from ``--data FILE`` or from the store.

    ``timeframe`` None: told from the file's bar times (``meta["timeframe_inferred"]``), or
    :data:`DEFAULT_TIMEFRAME` for the store; a given one must agree with the file. With the
    store and no ``--symbols``, every symbol stored for the timeframe is used. With
    ``--data FILE``, ``--symbol`` (the same option) names the file's one symbol (default: the
    file name). Empty data -> DataRangeError saying what exists.
    """
    if data_file is not None:
        from traderunner.marketdata import read_candle_file

        named = split_symbols(symbols)
        if len(named) > 1:
            raise OptionError(
                f"--data FILE holds one symbol, got {len(named)} ({', '.join(named)}): name "
                "it with one --symbol, or drop --data to use stored series"
            )
        symbol = named[0] if named else file_stem(data_file).strip().upper()
        candles = read_candle_file(data_file, symbol, timeframe)
        if len(candles) == 0:
            raise DataRangeError(f"{data_file} has no candles: add rows or pick another file")
        window = candles.between(period.start_ns, period.end_ns)
        if len(window) == 0:
            raise DataRangeError(
                f"{data_file} has no candles in {period.describe()}; it covers "
                f"{iso_ns(int(candles.ts[0]))} .. {iso_ns(int(candles.ts[-1]))}"
            )
        return {symbol: window}

    from traderunner.marketdata import load_candles

    timeframe = timeframe or parse_timeframe(DEFAULT_TIMEFRAME)
    with open_store(state.settings) as store:
        wanted = split_symbols(symbols)
        if not wanted:
            wanted = [s.symbol for s in store.candles.list_series() if s.timeframe == timeframe]
            if not wanted:
                raise DataRangeError(
                    f"no candles stored for timeframe {timeframe.value}: run "
                    "'traderunner data demo' or 'traderunner data import FILE', or pass --data FILE"
                )
        data = load_candles(store, wanted, timeframe, period.start, period.end)
    empty = [s for s, c in data.items() if len(c) == 0]
    if empty or not data:
        raise DataRangeError(
            f"no candles for {', '.join(empty or wanted)} {timeframe.value} in "
            f"{period.describe()}: widen --from/--to or check 'traderunner data list'"
        )
    return data


def synthetic_symbols(sources: Mapping[str, str]) -> list[str]:
    return [s for s, src in sources.items() if str(src).lower().startswith(SYNTHETIC)]


def warn_synthetic(symbols: Sequence[str], *, console: Console) -> None:
    """The loud label every report on generated data carries."""
    if symbols:
        console.print(
            f"[bold black on yellow] SYNTHETIC data [/] {', '.join(symbols)}: "
            "generated prices, not market data",
        )


@contextmanager
def progress_bar(enabled: bool, description: str) -> Iterator[Callable[..., None] | None]:
    """A transient Rich progress bar on stderr; yields the engine callback or None if off."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None, item="")

        def update(done: int, total: int, item: str = "") -> None:
            bar.update(task, completed=done, total=total, item=item)

        yield update


def show_progress(json_output: bool) -> bool:
    """Progress only for people: not with --json and not when stderr is not a terminal."""
    return not json_output and sys.stderr.isatty()


@contextmanager
def stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C asks the engine to stop between units of work; a second one kills."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop.is_set
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it into place.

    A failure (or Ctrl-C) half way leaves no partial file at ``path``.
    """
    target = path.expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(
            f"cannot write {target}: folder {parent} does not exist; create it or pick another path"
        )
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise UserInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
