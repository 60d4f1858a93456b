"""What a job asks for, and the complete check made before anything is written or enqueued.

A spec is a frozen value that round-trips through JSON (it is what the store's ``jobs.spec``
column and the Celery message carry). :func:`validate` checks everything a worker would trip
over — strategy, parameters, options, timeframe, period, symbols and their data in the store,
the sweep grid — and raises a :class:`~traderunner.errors.UserInputError` subclass with one
clear line. Only a spec that passed is ever written or enqueued.

The checks are the engine's own pure ones — ``Strategy.make_params``,
``engine.options.BacktestOptions`` and ``strategies.grid.expand_grid`` (with the one sweep-size
limit) — so a spec is refused here exactly as a run in process would be, and this module (and
the client above it) imports neither the engine's kernels nor numba.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from traderunner.domain.adjust import parse_adjust
from traderunner.domain.jobs import JobKind
from traderunner.domain.live import LiveStrategy
from traderunner.domain.period import Period
from traderunner.domain.timeframe import Timeframe
from traderunner.engine.options import BacktestOptions
from traderunner.errors import DataRangeError, ParameterError, UserInputError
from traderunner.store import Store
from traderunner.strategies import get_strategy
from traderunner.strategies.grid import expand_grid

#: A chunk of a sweep should take seconds: about this many bar-evaluations per chunk.
CHUNK_BAR_EVALUATIONS = 50_000_000
#: ... but a sweep is split into at least this many chunks so several workers share it.
MIN_CHUNKS = 8


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    """A backtest over stored candles: the guide's run name, strategy, symbols, timeframe,
    period and config params, plus engine options (see ``engine.options``)."""

    strategy: str
    symbols: tuple[str, ...]
    timeframe: str = "M5"
    start: str | None = None
    end: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    # Daily prices: "all" (split- and dividend-adjusted), "splits" or "none" (marketdata.adjust)
    adjust: str = "all"
    # A provider ("eodhd", "synthetic") the worker fetches missing data from first; None: the
    # store must already hold the data
    fetch: str | None = None

    kind = JobKind.BACKTEST

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "strategy": self.strategy,
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
            "start": self.start,
            "end": self.end,
            "params": dict(self.params),
            "options": dict(self.options),
            "name": self.name,
            "adjust": self.adjust,
            "fetch": self.fetch,
        }


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A parameter sweep: every combination of ``grid`` (name -> list of values)."""

    strategy: str
    symbols: tuple[str, ...]
    grid: Mapping[str, Sequence[Any]]
    timeframe: str = "M5"
    start: str | None = None
    end: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    chunk_size: int | None = None  # combinations per chunk; None = sized automatically
    adjust: str = "all"  # as BacktestSpec.adjust
    fetch: str | None = None  # as BacktestSpec.fetch: fetched once for all chunks

    kind = JobKind.SWEEP

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "strategy": self.strategy,
            "symbols": list(self.symbols),
            "grid": {k: list(v) for k, v in self.grid.items()},
            "timeframe": self.timeframe,
            "start": self.start,
            "end": self.end,
            "options": dict(self.options),
            "name": self.name,
            "chunk_size": self.chunk_size,
            "adjust": self.adjust,
            "fetch": self.fetch,
        }


@dataclass(frozen=True, slots=True)
class NoopSpec:
    """A trivial job (health canary, overhead benchmark); optionally sleeps or fails."""

    sleep_s: float = 0.0
    fail: str = ""

    kind = JobKind.NOOP

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "sleep_s": self.sleep_s, "fail": self.fail}


Spec = BacktestSpec | SweepSpec | NoopSpec


def spec_from_dict(data: Mapping[str, Any]) -> Spec:
    """Rebuild a spec from its JSON form; UserInputError when it is not one."""
    if not isinstance(data, Mapping):
        raise UserInputError(f"a job spec must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind", "backtest")
    try:
        if kind == JobKind.BACKTEST:
            return BacktestSpec(
                strategy=str(data["strategy"]),
                symbols=_symbols(data.get("symbols")),
                timeframe=str(data.get("timeframe") or "M5"),
                start=data.get("start"),
                end=data.get("end"),
                params=dict(data.get("params") or {}),
                options=dict(data.get("options") or {}),
                name=str(data.get("name") or ""),
                adjust=parse_adjust(data.get("adjust")),
                fetch=_fetch(data.get("fetch")),
            )
        if kind == JobKind.SWEEP:
            grid = data.get("grid")
            if not isinstance(grid, Mapping) or not grid:
                raise UserInputError("a sweep needs a grid: {name: [values...]}")
            return SweepSpec(
                strategy=str(data["strategy"]),
                symbols=_symbols(data.get("symbols")),
                grid={str(k): list(v) if _is_seq(v) else [v] for k, v in grid.items()},
                timeframe=str(data.get("timeframe") or "M5"),
                start=data.get("start"),
                end=data.get("end"),
                options=dict(data.get("options") or {}),
                name=str(data.get("name") or ""),
                chunk_size=data.get("chunk_size"),
                adjust=parse_adjust(data.get("adjust")),
                fetch=_fetch(data.get("fetch")),
            )
        if kind == JobKind.NOOP:
            return NoopSpec(
                sleep_s=float(data.get("sleep_s") or 0.0), fail=str(data.get("fail") or "")
            )
    except KeyError as exc:
        raise UserInputError(f"the job spec is missing {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"the job spec is malformed: {exc}") from None
    raise UserInputError(f"unknown job kind {kind!r}: use backtest, sweep or noop")


FETCH_PROVIDERS = ("eodhd", "synthetic")


def _fetch(value: Any) -> str | None:
    """The ``fetch`` of a spec: None (no fetch), eodhd or synthetic; UserInputError otherwise."""
    if value is None or value == "" or value is False:
        return None
    text = str(value).strip().lower()
    if text not in FETCH_PROVIDERS:
        raise UserInputError(
            f"fetch {value!r} is not a provider: use eodhd (or synthetic for generated data), "
            "or leave it out to use the stored data"
        )
    return text


def _estimated_bars(timeframe: Timeframe, period: Period) -> int:
    """Bars a fetch will bring for ``period``: weekdays times one US session's bars."""
    assert period.start_ns is not None and period.end_ns is not None
    days = max(1, (period.end_ns - period.start_ns) // (86_400 * 10**9) + 1)
    per_day = 1 if timeframe is Timeframe.D1 else max(1, 390 * 60 // timeframe.seconds)
    return int(days * 5 // 7 + 1) * per_day


def _is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _symbols(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = raw.split(",")
    if not _is_seq(raw):
        raise UserInputError("symbols must be a list of symbol names, e.g. ['AAPL', 'MSFT']")
    out = tuple(dict.fromkeys(str(s).strip() for s in raw if str(s).strip()))
    if not out:
        raise UserInputError("no symbols given: name at least one, e.g. --symbols AAPL")
    return out


@dataclass(frozen=True, slots=True)
class Checked:
    """What validation learnt: the resolved period, bar counts and (sweeps) the combinations."""

    spec: Spec
    period: Period | None = None
    bars: int = 0
    combos: tuple[dict[str, Any], ...] = ()
    skipped: int = 0
    chunks: tuple[tuple[dict[str, Any], ...], ...] = ()


def validate(spec: Spec, store: Store) -> Checked:
    """Check ``spec`` completely against the registry and the store; raise one clear error.

    Nothing is written. For sweeps the grid is expanded and split into chunks here, so the
    job tree written afterwards is exactly what was checked.
    """
    if isinstance(spec, NoopSpec):
        if not 0 <= spec.sleep_s <= 3600 or math.isnan(spec.sleep_s):
            raise ParameterError("sleep_s must be between 0 and 3600 seconds")
        return Checked(spec)
    strategy = get_strategy(spec.strategy)
    BacktestOptions.from_kwargs(**dict(spec.options))
    parse_adjust(spec.adjust)
    timeframe = Timeframe.parse(spec.timeframe)
    period = Period.parse(spec.start, spec.end)
    bars = 0
    fetching = _fetch(spec.fetch)
    if fetching is not None:
        # The worker fetches the data first: nothing to find in the store yet.
        if not spec.symbols:
            raise DataRangeError("fetch needs the symbols to fetch: pass --symbols, e.g. AAPL.US")
        if period.start_ns is None:
            raise DataRangeError(
                "fetch needs the first day to fetch: pass --from, e.g. --from 2024-01-02"
            )
        if period.end_ns is None:
            period = Period.parse(spec.start, _today())
        bars = _estimated_bars(timeframe, period)
    for symbol in spec.symbols if fetching is None else ():
        info = store.candles.series(symbol, timeframe)
        if info is None:
            known = sorted({s.symbol for s in store.candles.list_series()})
            raise DataRangeError(
                f"no {timeframe.value} candles for {symbol!r} in the store"
                f"{'; available: ' + ', '.join(known) if known else ''} — import or fetch "
                "data first (traderunner data import / data demo)"
            )
        lo = period.start_ns if period.start_ns is not None else info.first_ns
        hi = period.end_ns if period.end_ns is not None else info.last_ns
        if hi < info.first_ns or lo > info.last_ns:
            raise DataRangeError(
                f"{symbol} {timeframe.value} has data from {info.first:%Y-%m-%d} to "
                f"{info.last:%Y-%m-%d}; the period {period.describe()} holds none of it"
            )
        bars = max(bars, info.count)
    if isinstance(spec, BacktestSpec):
        strategy.make_params(dict(spec.params))
        return Checked(spec, period, bars)
    combos, skipped = expand_grid(strategy, {k: list(v) for k, v in spec.grid.items()})
    size = spec.chunk_size or auto_chunk_size(len(combos), bars * len(spec.symbols))
    if size < 1:
        raise ParameterError("chunk_size must be >= 1")
    chunks = tuple(tuple(combos[i : i + size]) for i in range(0, len(combos), size))
    return Checked(spec, period, bars, tuple(combos), skipped, chunks)


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).date().isoformat()


def auto_chunk_size(n_combos: int, bars: int) -> int:
    """Combinations per chunk: about CHUNK_BAR_EVALUATIONS bar-evaluations, >= MIN_CHUNKS chunks."""
    by_work = max(1, CHUNK_BAR_EVALUATIONS // max(bars, 1))
    by_spread = max(1, math.ceil(n_combos / MIN_CHUNKS))
    return max(1, min(by_work, by_spread))


def add_live(store: Store, live: LiveStrategy) -> LiveStrategy | None:
    """Check ``live`` as a backtest job's spec is checked (strategy, params, options,
    timeframe, every symbol with candles in the store) and add it; None when a live strategy
    of that name exists already. Nothing is written when a check fails.

    The one way a live strategy is added: ``traderunner live add`` and ``up``'s demo set-up
    both come here.
    """
    spec = BacktestSpec(
        live.strategy,
        tuple(live.symbols),
        live.timeframe,
        params=dict(live.params),
        options=dict(live.options),
    )
    validate(spec, store)
    return store.live.add(live)
