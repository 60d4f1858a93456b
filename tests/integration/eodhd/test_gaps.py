"""find_gaps: every deleted bar is found, as a gap or as a missing session, and nothing else."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderunner.domain.candles import CandleArrays
from traderunner.domain.sessions import session_ids
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata.gaps import GapReport, find_gaps
from traderunner.marketdata.providers import synthetic_candles

NS = 1_000_000_000
# Two weeks across the US switch to daylight saving time (10 March 2024).
FULL = {
    tf: synthetic_candles(
        "GAP", tf, datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 15, 23, tzinfo=UTC)
    )
    for tf in (Timeframe.M5, Timeframe.M15, Timeframe.H1)
}


def keep(c: CandleArrays, mask: np.ndarray) -> CandleArrays:
    return CandleArrays(
        c.ts[mask], c.open[mask], c.high[mask], c.low[mask], c.close[mask], c.volume[mask],
        c.symbol, c.timeframe, c.source,
    )  # fmt: skip


def reported_missing(report: GapReport, full: CandleArrays) -> set[int]:
    """Every bar open time the report says is missing, gaps and whole sessions together."""
    step = report.timeframe.seconds * NS
    out: set[int] = set()
    for gap in report.gaps:
        found = range(gap.start_ns, gap.end_ns + 1, step)
        assert len(found) == gap.bars
        out.update(found)
    days = {(d - date(1970, 1, 1)).days for d in report.missing_sessions}
    sessions = session_ids(full.ts)
    out.update(int(t) for t, s in zip(full.ts, sessions, strict=True) if int(s) in days)
    return out


@given(
    tf=st.sampled_from(sorted(FULL)),
    drop=st.sets(st.integers(0, 1_000_000), max_size=40),
    whole_days=st.sets(st.integers(0, 9), max_size=3),
)
def test_every_deleted_bar_is_reported_and_nothing_else(
    tf: Timeframe, drop: set[int], whole_days: set[int]
) -> None:
    full = FULL[tf]
    sessions = session_ids(full.ts)
    days = np.unique(sessions)
    mask = np.ones(len(full), dtype=bool)
    mask[[i % len(full) for i in drop]] = False
    for k in whole_days:
        mask[sessions == days[k]] = False
    report = find_gaps(keep(full, mask), start_ns=int(full.ts[0]), end_ns=int(full.ts[-1]))
    assert reported_missing(report, full) == {int(t) for t in full.ts[~mask]}
    gone = {int(d) for d in days if not mask[sessions == d].any()}
    assert {(d - date(1970, 1, 1)).days for d in report.missing_sessions} == gone
    assert report.duplicates == () and report.outside_session == 0
    assert report.clean == bool(mask.all())


def test_complete_data_is_clean_for_every_timeframe() -> None:
    for tf in (*FULL, Timeframe.M1, Timeframe.M30, Timeframe.H4, Timeframe.D1):
        c = synthetic_candles(
            "GAP", tf, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, tzinfo=UTC)
        )
        report = find_gaps(c)
        assert report.clean, (tf, report.missing_sessions[:3], report.gaps[:3])
        assert report.sessions_checked == int(np.busday_count("2024-01-01", "2025-01-01"))


def test_duplicates_and_disorder_are_reported_not_trusted() -> None:
    c = FULL[Timeframe.H1]
    order = np.r_[np.arange(len(c))[::-1], [3, 3, 10]]
    shuffled = CandleArrays(
        c.ts[order], c.open[order], c.high[order], c.low[order], c.close[order], c.volume[order],
        "GAP", Timeframe.H1,
    )  # fmt: skip
    report = find_gaps(shuffled)
    assert report.duplicates == (int(c.ts[3]), int(c.ts[10]))
    assert report.missing_sessions == () and report.gaps == ()


def test_bars_outside_the_session_are_counted_not_judged() -> None:
    c = FULL[Timeframe.M5]
    premarket = int(c.ts[0]) - 90 * 60 * NS  # 08:00 New York on the first day
    ts = np.r_[premarket, c.ts]
    extra = CandleArrays(
        ts, np.r_[1.0, c.open], np.r_[1.0, c.high], np.r_[1.0, c.low], np.r_[1.0, c.close],
        np.r_[0.0, c.volume], "GAP", Timeframe.M5,
    )  # fmt: skip
    report = find_gaps(extra)
    assert report.outside_session == 1 and report.clean


def test_daily_bars_miss_weekdays_only_and_runs_cross_weekends() -> None:
    c = synthetic_candles(
        "GAP", Timeframe.D1, datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 22, tzinfo=UTC)
    )
    days = [datetime.fromtimestamp(int(t) // NS, tz=UTC).date() for t in c.ts]
    drop = {date(2024, 3, 8), date(2024, 3, 11), date(2024, 3, 20)}  # Fri + Mon, then a Wed
    report = find_gaps(keep(c, np.array([d not in drop for d in days])))
    assert set(report.missing_sessions) == drop
    assert report.missing_runs() == (
        (date(2024, 3, 8), date(2024, 3, 11)),
        (date(2024, 3, 20), date(2024, 3, 20)),
    )


def test_a_wider_range_counts_sessions_before_and_after_the_bars() -> None:
    c = FULL[Timeframe.H1]
    start = int(datetime(2024, 2, 29, tzinfo=UTC).timestamp()) * NS  # Thursday
    end = int(datetime(2024, 3, 19, 12, tzinfo=UTC).timestamp()) * NS  # Tuesday, before open
    report = find_gaps(c, start_ns=start, end_ns=end)
    assert report.missing_sessions == (
        date(2024, 2, 29),
        date(2024, 3, 1),
        date(2024, 3, 18),
    )


def test_an_empty_series_without_a_range_is_clean() -> None:
    empty = FULL[Timeframe.M5].slice(0, 0)
    assert find_gaps(empty).clean
    with pytest.raises(DataRangeError, match="needs a timeframe"):
        find_gaps(CandleArrays(empty.ts, *(empty.open,) * 5))
