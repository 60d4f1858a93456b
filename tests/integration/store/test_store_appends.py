"""The series row kept incrementally: appends, rewrites, inserts and identical writes, on SQLite
and PostgreSQL, checked against a recount of the candles table after every write."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from traderunner.domain import CandleArrays, Timeframe
from traderunner.errors import DataRangeError
from traderunner.store import SeriesInfo, Store

from .store_helpers import NS, T0, assert_same_bars, make_candles

M5 = Timeframe.M5


def recount(store: Store, symbol: str = "AAPL") -> tuple[int, int, int]:
    """COUNT/MIN/MAX straight from the candles table, as the old code computed them."""
    with store.engine.connect() as conn:
        count, first, last = conn.execute(
            sa.text(
                "SELECT COUNT(*), MIN(ts), MAX(ts) FROM candles "
                "WHERE symbol = :s AND timeframe = 'M5'"
            ),
            {"s": symbol},
        ).one()
    return int(count), int(first) * NS, int(last) * NS


def info_of(store: Store, symbol: str = "AAPL") -> SeriesInfo:
    info = store.candles.series(symbol, M5)
    assert info is not None
    return info


def bar(i: int, price: float = 100.0, seed: int = 0) -> CandleArrays:
    """Bar number ``i`` of the M5 clock that starts at T0 (one bar)."""
    return make_candles(1, start=T0 + 300 * i, price=price, seed=seed)


def test_an_append_keeps_the_generation_and_bumps_the_version(store: Store) -> None:
    first = store.candles.upsert(make_candles(100)).series
    assert first is not None
    added = make_candles(3, start=T0 + 100 * 300, seed=7)
    write = store.candles.upsert(added)
    assert (write.kind, write.inserted, write.changed, write.appended) == ("append", 3, 0, 3)
    assert write.previous == first
    info = info_of(store)
    assert write.series == info
    assert (
        (info.count, info.first_ns, info.last_ns)
        == recount(store)
        == (
            103,
            first.first_ns,
            int(added.ts[-1]),
        )
    )
    assert (info.version, info.generation) == (2, first.generation)
    loaded = store.candles.load("AAPL", M5)
    assert_same_bars(loaded.slice(100, 103), added)
    assert loaded.meta == {"version": 2, "generation": first.generation}


def test_an_append_that_resends_the_last_bars_unchanged_is_still_an_append(store: Store) -> None:
    walk = make_candles(51, seed=1)
    gen = store.candles.upsert(walk.slice(0, 50)).series.generation  # type: ignore[union-attr]
    # The feed repeats its last two bars, identical, and adds one.
    again = walk.slice(48, 51)
    write = store.candles.upsert(again)
    assert (write.kind, write.inserted, write.changed) == ("append", 1, 0)
    assert info_of(store).generation == gen
    assert recount(store)[0] == 51


def overlapping_end() -> CandleArrays:
    """Bars 90..109 at other prices: 90..100 replace stored ones, 101..109 are new."""
    return make_candles(20, start=T0 + 90 * 300, price=9.0)


@pytest.mark.parametrize(
    ("name", "write_bars", "count_after"),
    [
        ("a stored bar gets new values", lambda: bar(40, price=500.0), 100),
        ("a missing bar in the middle is filled", lambda: bar(50, seed=3), 101),
        ("a bar before the first one", lambda: bar(-5, seed=4), 101),
        ("new values and new bars at the end", overlapping_end, 109),
    ],
)
def test_writes_before_the_end_are_rewrites_with_a_new_generation(
    store: Store, name: str, write_bars: Any, count_after: int
) -> None:
    # 100 bars with bar 50 missing: 0..49, 51..100.
    walk = make_candles(101)
    keep = np.ones(101, dtype=bool)
    keep[50] = False
    holey = CandleArrays(
        **{c: getattr(walk, c)[keep] for c in ("ts", "open", "high", "low", "close", "volume")},
        symbol="AAPL", timeframe=M5, source="test",
    )  # fmt: skip
    before = store.candles.upsert(holey).series
    assert before is not None and before.count == 100
    bars = write_bars()
    write = store.candles.upsert(bars)
    assert write.kind == "rewrite", name
    info = info_of(store)
    assert info.generation != before.generation
    assert info.version == before.version + 1
    assert (info.count, info.first_ns, info.last_ns) == recount(store)
    assert info.count == count_after
    got = store.candles.load("AAPL", M5)
    assert_same_bars(got.between(int(bars.ts[0]), int(bars.ts[-1])), bars)


def test_identical_bars_change_nothing_not_even_updated_at(store: Store) -> None:
    bars = make_candles(300, source="csv")
    store.candles.upsert(bars)
    with store.engine.connect() as conn:
        stamp = conn.exec_driver_sql("SELECT updated_at FROM series").scalar()
    before = info_of(store)
    for again in (bars, bars.slice(100, 200), bars.slice(299, 300)):
        write = store.candles.upsert(again)
        assert (write.kind, write.inserted, write.changed) == ("unchanged", 0, 0)
        assert write.series == before
    assert info_of(store) == before
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT updated_at FROM series").scalar() == stamp


def test_an_append_from_another_source_mixes_the_label_but_keeps_the_generation(
    store: Store,
) -> None:
    gen = store.candles.upsert(make_candles(10, source="csv")).series.generation  # type: ignore[union-attr]
    store.candles.upsert(make_candles(2, start=T0 + 10 * 300, source="stream"))
    info = info_of(store)
    assert (info.source, info.generation, info.count) == ("csv+stream", gen, 12)


def test_random_writes_keep_the_row_equal_to_a_recount(store: Store) -> None:
    """40 writes of every kind; after each one the row equals a recount, the version grows by
    one exactly when a bar changed, and within a generation the stored prefix never moves."""
    rng = np.random.default_rng(42)
    truth: dict[int, float] = {}  # ts -> close
    info: SeriesInfo | None = None
    prefix = np.empty(0)
    for step in range(40):
        kind = rng.choice(["append", "gap", "rewrite", "same", "before"])
        last = max(truth) // NS if truth else T0
        if kind == "append" or not truth:
            start, n = last + 300 * int(rng.integers(1, 3)), int(rng.integers(1, 30))
        elif kind == "gap":
            start, n = last - 300 * int(rng.integers(5, 50)), int(rng.integers(1, 10))
        elif kind == "before":
            start, n = min(truth) // NS - 300 * int(rng.integers(1, 20)), 3
        else:
            start, n = last - 300 * int(rng.integers(0, 20)), int(rng.integers(1, 25))
        bars = make_candles(n, start=start, seed=step, price=float(rng.uniform(50, 150)))
        if kind == "same" and truth:  # exactly what is stored, where it is stored
            stored = store.candles.load("AAPL", M5)
            lo = int(rng.integers(0, len(stored)))
            bars = stored.slice(lo, min(lo + n, len(stored)))
        old = dict(truth)
        write = store.candles.upsert(bars)
        truth.update(zip(bars.ts.tolist(), bars.close.tolist(), strict=True))
        new_ts = set(truth) - set(old)
        changed = {t for t in old if old[t] != truth[t]}
        assert (write.inserted, write.changed) == (len(new_ts), len(changed)), (step, kind)
        now = info_of(store)
        assert (
            (now.count, now.first_ns, now.last_ns)
            == recount(store)
            == (
                len(truth),
                min(truth),
                max(truth),
            )
        )
        if info is not None:
            grew_at_end = not changed and all(t > info.last_ns for t in new_ts)
            assert now.version == info.version + (1 if new_ts or changed else 0)
            assert (now.generation == info.generation) == grew_at_end, (step, kind)
            if now.generation == info.generation:
                loaded = store.candles.load("AAPL", M5)
                np.testing.assert_array_equal(loaded.close[: len(prefix)], prefix)
        info = now
        prefix = store.candles.load("AAPL", M5).close


def test_an_append_does_not_read_the_series(tmp_path: Any) -> None:
    (tmp_path / "s").mkdir()
    store = Store.connect(f"sqlite:///{tmp_path / 's' / 'x.db'}")
    store.candles.upsert(make_candles(2000))
    statements: list[str] = []
    sa.event.listen(store.engine, "connect", lambda c, _r: c.set_trace_callback(statements.append))
    store.engine.dispose()
    store.candles.upsert(make_candles(1, start=T0 + 2000 * 300, seed=9))
    store.close()
    on_candles = [s for s in statements if "candles" in s]
    # One INSERT ... ON CONFLICT DO NOTHING of the new bar; no COUNT/MIN/MAX, no scan.
    assert len(on_candles) == 1 and on_candles[0].startswith("INSERT INTO candles"), on_candles
    assert not any("count(" in s.lower() for s in statements)


def test_concurrent_appenders_of_one_series_lose_no_bar(store: Store) -> None:
    store.candles.upsert(make_candles(10))
    errors: list[BaseException] = []

    def append(offset: int) -> None:
        try:
            for k in range(5):
                i = 10 + offset * 5 + k
                store.candles.upsert(bar(i, seed=i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(o,)) for o in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    info = info_of(store)
    assert (info.count, info.first_ns, info.last_ns) == recount(store)
    assert info.count == 30 and info.version == 21


def test_delete_removes_the_bars_and_the_row_and_a_new_import_gets_a_new_generation(
    store: Store,
) -> None:
    store.candles.upsert(make_candles(20, symbol="KEEP"))
    old = store.candles.upsert(make_candles(30)).series
    assert old is not None
    gone = store.candles.delete("AAPL", M5)
    assert gone == old
    assert store.candles.series("AAPL", M5) is None
    assert [s.symbol for s in store.candles.list_series()] == ["KEEP"]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM candles").scalar() == 20
    with pytest.raises(DataRangeError, match=r"no M5 candles for 'AAPL'.*available: KEEP \(M5\)"):
        store.candles.delete("AAPL", M5)
    again = store.candles.upsert(make_candles(30)).series
    assert again is not None
    assert again.version == 1 and again.generation != old.generation
